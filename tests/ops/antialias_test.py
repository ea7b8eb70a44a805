"""Anti-aliased downsampling against a full-resolution blur-then-subsample in PyTorch."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcc_jax import ops
from mcc_jax.ops.antialias import antialias_kernel


def _torch_blur_then_subsample(x, scale):
  """Blurs every pixel at full resolution, then keeps every s-th one (NHWC numpy in/out)."""
  sigma = (1 / scale - 1) / 2
  size = 2 * round(4 * sigma) + 1
  axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
  yy, xx = torch.meshgrid(axis, axis, indexing="ij")
  kernel = torch.exp(-(xx**2 + yy**2) / (2 * sigma**2))
  kernel = (kernel / kernel.sum()).float()
  channels = x.shape[-1]
  weight = kernel[None, None].repeat(channels, 1, 1, 1)
  image = torch.from_numpy(x).permute(0, 3, 1, 2)
  blurred = F.conv2d(F.pad(image, (size // 2,) * 4), weight, groups=channels)
  stride = int(1 / scale)
  return blurred[:, :, ::stride, ::stride].permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("scale,size", [(0.25, 32), (0.25, 30), (0.5, 17), (1 / 3, 24)])
def test_matches_blur_then_subsample(scale, size):
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (2, size, size + 4, 3)).astype(np.float32)
  got = np.asarray(ops.antialias_downsample(jnp.asarray(x), scale))
  expected = _torch_blur_then_subsample(x, scale)
  assert got.shape == expected.shape
  np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)


@pytest.mark.parametrize("scale,shape", [(0.25, (2, 32, 36, 3)), (0.125, (1, 64, 56, 2)),
                                         (0.5, (2, 9, 12, 5)), (1 / 3, (1, 24, 20, 3))])
def test_gradient_matches_torch_autograd(scale, shape):
  rng = np.random.default_rng(1)
  x = rng.uniform(-1, 1, shape).astype(np.float32)
  expected_out = _torch_blur_then_subsample(x, scale)
  cotangent = rng.normal(size=expected_out.shape).astype(np.float32)
  xt = torch.from_numpy(x).requires_grad_(True)
  sigma = (1 / scale - 1) / 2
  size = 2 * round(4 * sigma) + 1
  weight = torch.from_numpy(antialias_kernel(scale))[None, None].repeat(shape[-1], 1, 1, 1)
  blurred = F.conv2d(F.pad(xt.permute(0, 3, 1, 2), (size // 2,) * 4), weight, groups=shape[-1])
  stride = int(1 / scale)
  out = blurred[:, :, ::stride, ::stride].permute(0, 2, 3, 1)
  (out * torch.from_numpy(cotangent)).sum().backward()
  _, pullback = jax.vjp(lambda a: ops.antialias_downsample(a, scale), jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(pullback(jnp.asarray(cotangent))[0]), xt.grad.numpy(),
                             atol=2e-6, rtol=0)


def test_gradient_is_not_a_convolution_over_a_dilated_map():
  """The strided convolution's gradient dilates the small cotangent by the stride and
  convolves it with the whole kernel (seconds at 256x256 on CPU); the phase sum's
  gradient must not."""
  hlo = jax.jit(jax.grad(lambda a: jnp.sum(ops.antialias_downsample(a, 0.125)**2))).lower(
      jnp.ones((1, 64, 64, 3))).as_text()
  dilations = re.findall(r"lhs_dilate = \[(\d+), (\d+)\]", hlo)
  assert dilations and all(d == ("1", "1") for d in dilations), dilations


def test_output_size_rounds_up_like_slicing():
  x = jnp.zeros((1, 10, 13, 2))
  assert ops.antialias_downsample(x, 0.25).shape == (1, 3, 4, 2)
  assert ops.antialias_downsample(jnp.zeros((3, 256, 256, 3)), 0.25).shape == (3, 64, 64, 3)


def test_kernel_is_a_normalised_gaussian_of_the_documented_width():
  kernel = antialias_kernel(0.25)
  assert kernel.shape == (13, 13)  # sigma 1.5 -> 2 * round(6) + 1.
  np.testing.assert_allclose(kernel.sum(), 1.0, atol=1e-6)
  np.testing.assert_allclose(kernel, kernel.T, atol=0)
  # exp(-d^2 / (2 sigma^2)) between neighbours of the centre row.
  np.testing.assert_allclose(kernel[6, 7] / kernel[6, 6], np.exp(-1 / (2 * 1.5**2)), rtol=1e-6)
  assert antialias_kernel(0.5).shape == (5, 5)


def _torch_float32_kernel(scale):
  """FOMM's kernel as its float32 construction in torch computes it (exp, product, sum)."""
  sigma = (1 / scale - 1) / 2
  size = 2 * round(4 * sigma) + 1
  rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                              torch.arange(size, dtype=torch.float32), indexing="ij")
  kernel = torch.ones(size, size)
  for grid in (rows, cols):
    kernel = kernel * torch.exp(-((grid - (size - 1) / 2) ** 2) / (2 * sigma**2))
  return (kernel / torch.sum(kernel)).numpy()


# The kernels of the scales the model uses, as torch 2.13.0 builds them in float32 on an
# x86-64 CPU (AMD Zen 4) whose float32 sum of the taps is the correctly rounded one. Stored
# because that sum's order of additions depends on the CPU's vector width: on an Intel
# AVX-512 machine torch's sum differs in the last bit at scale 1/8, and 112 of the 841 taps
# with it.
_STORED_KERNELS = pathlib.Path(__file__).with_name("antialias_kernels_torch_float32.npz")
_GOLDENS = pathlib.Path(__file__).parents[1] / "goldens" / "official_forward.npz"


def _rounded_once_kernel(scale):
  """The plausible wrong construction: the whole kernel in float64, rounded to float32 once."""
  sigma = (1 / scale - 1) / 2
  axis = np.arange(2 * round(4 * sigma) + 1) - 2 * round(4 * sigma) / 2
  kernel = np.exp(-(axis[:, None]**2 + axis[None, :]**2) / (2 * sigma**2))
  return (kernel / kernel.sum()).astype(np.float32)


def test_kernel_equals_the_official_kernel_stored_in_the_goldens():
  # The official model's blur buffer at scale 1/4, as the golden outputs stored it.
  official = np.load(_GOLDENS)["fixed/motion_estimator/kp_detector.down.weight"][0, 0]
  got = antialias_kernel(0.25)
  assert got.dtype == np.float32
  assert np.array_equal(got, official), int((got != official).sum())
  # The check can fail: a kernel built in float64 and rounded once differs in 68 taps.
  assert int((_rounded_once_kernel(0.25) != official).sum()) == 68


@pytest.mark.parametrize("scale", [0.5, 0.25, 0.125])
def test_kernel_equals_the_stored_float32_construction_bit_for_bit(scale):
  # Our construction is exact float32 arithmetic and a correctly rounded sum, the same
  # bits on every CPU; the stored kernel is the official float32 construction.
  stored = np.load(_STORED_KERNELS)[f"scale_{scale}"]
  got = antialias_kernel(scale)
  assert got.dtype == np.float32
  assert np.array_equal(got, stored), int((got != stored).sum())
  assert not np.array_equal(_rounded_once_kernel(scale), stored)


@pytest.mark.parametrize("scale", [0.5, 0.25, 0.125, 1 / 3, 0.2, 0.1])
def test_kernel_is_within_rounding_of_torch_on_this_cpu(scale):
  # Torch on the running machine: the order of its float32 sum and its vectorised exp
  # depend on the CPU. On an Intel Xeon (AVX-512) the taps at scale 1/8 differ by up to
  # 4 ulp, all of them in the smallest taps (9e-13 at most, against a largest tap of
  # 0.013); on AMD Zen 4 they are equal. Bound: 2 ulp of each tap, or one float32 epsilon
  # of the largest tap, whichever is larger. A wrong sigma or size moves taps by 1e-3.
  got = np.asarray(antialias_kernel(scale))
  expected = _torch_float32_kernel(scale)
  eps = np.finfo(np.float32).eps
  np.testing.assert_allclose(got, expected, rtol=2 * eps, atol=eps * float(expected.max()))


def test_scale_one_is_the_identity_and_constants_survive_inside():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(1, 8, 8, 3)), jnp.float32)
  assert ops.antialias_downsample(x, 1.0) is x
  flat = ops.antialias_downsample(jnp.full((1, 64, 64, 1), 0.7), 0.25)
  # Away from the zero-padded border the blur preserves a constant.
  np.testing.assert_allclose(np.asarray(flat)[0, 2:-2, 2:-2, 0], 0.7, atol=1e-6)
  assert float(flat[0, 0, 0, 0]) < 0.7


def test_keeps_the_input_dtype():
  x = jnp.ones((1, 16, 16, 3), jnp.bfloat16)
  assert ops.antialias_downsample(x, 0.25).dtype == jnp.bfloat16


@pytest.mark.parametrize("scale", [0.0, -0.5, 1.5])
def test_rejects_scales_outside_the_unit_interval(scale):
  with pytest.raises(ValueError, match="scale"):
    ops.antialias_downsample(jnp.ones((1, 8, 8, 1)), scale)
