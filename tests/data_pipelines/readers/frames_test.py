"""Tests of image decoding and colour-format conversion."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mcc_jax.data_pipelines.readers import frames as frames_lib
from mcc_jax.data_pipelines.bad_files import BadVideoError


def _random_image(shape, dtype=np.uint8, seed=0):
  rng = np.random.default_rng(seed)
  high = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
  return (rng.uniform(0, high, shape)).astype(dtype)


def test_rgb_png_round_trips_exactly(tmp_path):
  image = _random_image((9, 7, 3))
  Image.fromarray(image).save(tmp_path / "x.png")
  np.testing.assert_array_equal(frames_lib.decode_image_file(str(tmp_path / "x.png")),
                                image)


def test_grayscale_png_becomes_three_equal_channels(tmp_path):
  gray = _random_image((8, 8))
  Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
  rgb = frames_lib.decode_image_file(str(tmp_path / "g.png"))
  assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
  for channel in range(3):
    np.testing.assert_array_equal(rgb[..., channel], gray)


def test_rgba_png_drops_alpha(tmp_path):
  rgba = _random_image((8, 8, 4))
  Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
  np.testing.assert_array_equal(frames_lib.decode_image_file(str(tmp_path / "a.png")),
                                rgba[..., :3])


def test_16_bit_grayscale_png_is_scaled_to_8_bits(tmp_path):
  gray16 = _random_image((8, 8, 1), np.uint16)
  (tmp_path / "g16.png").write_bytes(tf.io.encode_png(gray16).numpy())
  rgb = frames_lib.decode_image_file(str(tmp_path / "g16.png"))
  expected = np.round(gray16[..., 0] / 257.0).astype(np.uint8)
  assert rgb.dtype == np.uint8
  np.testing.assert_array_equal(rgb[..., 0], expected)
  np.testing.assert_array_equal(rgb[..., 2], expected)


def test_16_bit_rgb_png_is_converted_to_8_bits(tmp_path):
  rgb16 = _random_image((8, 8, 3), np.uint16)
  (tmp_path / "c16.png").write_bytes(tf.io.encode_png(rgb16).numpy())
  rgb = frames_lib.decode_image_file(str(tmp_path / "c16.png"))
  assert rgb.dtype == np.uint8 and rgb.shape == (8, 8, 3)
  # Within one 8-bit step of the exact rescaling, whichever rounding the decoder uses.
  assert np.max(np.abs(rgb.astype(int) - rgb16.astype(int) / 257.0)) <= 1.0


def test_palette_png_is_converted(tmp_path):
  image = Image.fromarray(_random_image((8, 8, 3))).convert("P")
  image.save(tmp_path / "p.png")
  np.testing.assert_array_equal(frames_lib.decode_image_file(str(tmp_path / "p.png")),
                                np.asarray(image.convert("RGB")))


@pytest.mark.parametrize("array, expected", [
    (np.array([[0.0, 1.0]]), np.array([[0, 255]])),
    (np.array([[True, False]]), np.array([[255, 0]])),
    (np.array([[65535, 0]], np.uint16), np.array([[255, 0]])),
])
def test_as_rgb8_converts_dtypes(array, expected):
  rgb = frames_lib.as_rgb8(array)
  assert rgb.shape == array.shape + (3,) and rgb.dtype == np.uint8
  np.testing.assert_array_equal(rgb[..., 1], expected)


def test_as_rgb8_rejects_unknown_layouts():
  with pytest.raises(ValueError, match="shape"):
    frames_lib.as_rgb8(np.zeros((4, 4, 5), np.uint8))


def test_corrupt_and_missing_images_name_the_file(tmp_path):
  good = tmp_path / "good.png"
  Image.fromarray(_random_image((32, 32, 3))).save(good)
  truncated = tmp_path / "truncated.png"
  truncated.write_bytes(good.read_bytes()[:200])
  noise = tmp_path / "noise.jpg"
  noise.write_bytes(b"not an image at all")
  for path in (truncated, noise, tmp_path / "missing.png"):
    with pytest.raises(BadVideoError, match=path.name):
      frames_lib.decode_image_file(str(path))


def test_resize_keeps_frames_of_the_right_size_and_resizes_others():
  frame = _random_image((16, 16, 3))
  assert frames_lib.resize_frame(frame, 16) is frame
  flat = np.full((20, 30, 3), 77, np.uint8)
  resized = frames_lib.resize_frame(flat, 8)
  assert resized.shape == (8, 8, 3)
  np.testing.assert_array_equal(resized, 77)
