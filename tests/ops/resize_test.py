"""resize_bilinear / upsample_nearest against torch.nn.functional.interpolate."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcc_jax import ops
from mcc_jax.ops import resize


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("in_size,size", [
    ((16, 12), (32, 32)), ((16, 12), (7, 5)), ((16, 12), (16, 40)), ((16, 12), (1, 3)),
    ((256, 256), (32, 32)), ((64, 64), (256, 256)), ((256, 256), (64, 64))])
def test_bilinear_matches_torch(align_corners, in_size, size):
  x = np.random.default_rng(0).normal(size=(2,) + in_size + (3,)).astype(np.float32)
  expected = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=size, mode="bilinear",
                           align_corners=align_corners).permute(0, 2, 3, 1).numpy()
  got = ops.resize_bilinear(jnp.asarray(x), size, align_corners=align_corners)
  assert got.shape == expected.shape
  # The blend weights are PyTorch's (float32 source positions); only the order of the
  # two 1-D blends differs: each side rounds about four times at values up to max|x|,
  # so they may differ by ~8 ulp of max|x| (the bound below is twice that, sized from
  # the arithmetic, not from one machine). A half-pixel or align_corners mistake costs
  # 0.1 to 1.
  atol = 16 * np.finfo(np.float32).eps * np.abs(x).max()
  np.testing.assert_allclose(np.asarray(got), expected, atol=atol)


def test_taps_blend_neighbouring_samples_with_weights_in_unit_interval():
  for align in (False, True):
    lo, hi, frac = resize.bilinear_taps(13, 29, align)
    assert np.all((hi - lo >= 0) & (hi - lo <= 1))
    assert np.all((frac >= 0) & (frac <= 1))
    assert lo[0] == 0 and hi[-1] == 12


def test_nearest_upsampling_matches_torch():
  x = np.random.default_rng(1).normal(size=(2, 5, 4, 3)).astype(np.float32)
  expected = F.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), scale_factor=2.0,
                           mode="nearest").permute(0, 2, 3, 1).numpy()
  np.testing.assert_array_equal(np.asarray(ops.upsample_nearest(jnp.asarray(x), 2)), expected)


def test_resize_rejects_non_nhwc_input():
  with pytest.raises(ValueError, match=r"expected \(B, H, W, C\)"):
    ops.resize_bilinear(jnp.zeros((4, 4, 3)), (8, 8), align_corners=True)
