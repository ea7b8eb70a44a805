"""Square crops and resizing."""

import numpy as np
import pytest
from PIL import Image

from mcc_jax import media


def test_center_square_box():
  assert media.center_square_box(144, 176) == (16, 0, 160, 144)
  assert media.center_square_box(201, 100) == (0, 50, 100, 150)


def test_crop_of_a_wide_frame_takes_its_middle():
  frame = np.zeros((10, 30, 3), np.uint8)
  frame[:, 10:20] = 255
  np.testing.assert_array_equal(media.crop_and_resize(frame, None, 10), frame[:, 10:20])


def test_resizing_is_pillow_bilinear():
  rng = np.random.default_rng(1)
  frame = rng.integers(0, 256, (50, 80, 3), dtype=np.uint8)
  expected = np.asarray(Image.fromarray(frame[:, 15:65]).resize((20, 20), Image.BILINEAR))
  np.testing.assert_array_equal(media.crop_and_resize(frame, None, 20), expected)


def test_boxes_past_the_edge_repeat_the_border():
  frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
  crop = media.crop_and_resize(frame, (-2, -1, 3, 4), 5)
  expected = np.pad(frame, ((1, 0), (2, 0), (0, 0)), mode="edge")[:5, :5]
  np.testing.assert_array_equal(crop, expected)
  with pytest.raises(ValueError, match="empty box"):
    media.crop_and_resize(frame, (3, 0, 3, 4), 5)
