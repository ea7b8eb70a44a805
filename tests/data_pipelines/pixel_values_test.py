"""`value_table` gives exactly the numbers the pipelines computed on the host before.

Until batches crossed to the device as uint8, the pipelines converted each frame with
TensorFlow: ``convert_image_dtype`` to [0, 1] float32, then ``x * (high - low) + low``.
Both are single IEEE float32 operations (a product, then a product and a sum), so the
numbers are the same on every CPU and are compared bit for bit here.
"""

import numpy as np
import pytest
import tensorflow as tf

from mcc_jax import data_pipelines


def _tensorflow_path(levels, value_range):
  # The conversion the pipelines ran before, written out as they ran it.
  low, high = float(value_range[0]), float(value_range[1])
  unit = tf.image.convert_image_dtype(tf.constant(levels), tf.float32)
  return (unit * (high - low) + low).numpy()


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0), (0.0, 255.0),
                                         (-0.5, 2.25)])
def test_every_level_maps_to_the_old_host_value_bit_for_bit(value_range):
  levels = np.arange(256, dtype=np.uint8)
  table = data_pipelines.value_table(value_range)
  assert table.dtype == np.float32 and table.shape == (256,)
  np.testing.assert_array_equal(table.view(np.uint32),
                                _tensorflow_path(levels, value_range).view(np.uint32))
  assert table[0] == np.float32(value_range[0])
  assert abs(table[255] - value_range[1]) <= 1e-6 * max(1.0, abs(value_range[1]))


def test_a_lookup_converts_a_frame():
  frame = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
  table = data_pipelines.value_table((-1.0, 1.0))
  np.testing.assert_array_equal(table[frame], _tensorflow_path(frame, (-1.0, 1.0)))
