"""resize_bilinear / upsample_nearest against torch.nn.functional.interpolate."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcc_jax import ops
from mcc_jax.ops import resize


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(32, 32), (7, 5), (16, 40), (1, 3)])
def test_bilinear_matches_torch(align_corners, size):
  x = np.random.default_rng(0).normal(size=(2, 16, 12, 3)).astype(np.float32)
  expected = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=size, mode="bilinear",
                           align_corners=align_corners).permute(0, 2, 3, 1).numpy()
  got = ops.resize_bilinear(jnp.asarray(x), size, align_corners=align_corners)
  assert got.shape == expected.shape
  np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_interpolation_matrix_rows_sum_to_one():
  for align in (False, True):
    matrix = resize.bilinear_matrix(13, 29, align)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)


def test_nearest_upsampling_matches_torch():
  x = np.random.default_rng(1).normal(size=(2, 5, 4, 3)).astype(np.float32)
  expected = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), scale_factor=2.0,
                           mode="nearest").permute(0, 2, 3, 1).numpy()
  np.testing.assert_array_equal(np.asarray(ops.upsample_nearest(jnp.asarray(x), 2)), expected)


def test_resize_rejects_non_nhwc_input():
  with pytest.raises(ValueError, match=r"expected \(B, H, W, C\)"):
    ops.resize_bilinear(jnp.zeros((4, 4, 3)), (8, 8), align_corners=True)
