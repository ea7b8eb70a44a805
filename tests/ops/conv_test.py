"""conv2d against torch.nn.functional.conv2d, on both of its routes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcc_jax import ops
from mcc_jax.ops import conv


def _torch_conv(x, kernel, stride, padding):
  """torch's conv2d on NHWC / HWIO tensors (explicit pairs by padding the input first)."""
  (top, bottom), (left, right) = padding
  return F.conv2d(F.pad(x.permute(0, 3, 1, 2), (left, right, top, bottom)),
                  kernel.permute(3, 2, 0, 1), stride=stride).permute(0, 2, 3, 1)


# (map size, kernel, stride, padding): maps smaller than the window (the matrix-product
# route), a strided layer whose output is smaller than the window, and ordinary maps.
GEOMETRIES = [
    ((2, 2), 3, 1, ((1, 1), (1, 1))),
    ((1, 1), 3, 1, ((1, 1), (1, 1))),
    ((1, 2), 3, 1, ((1, 1), (1, 1))),
    ((4, 4), 3, 2, ((1, 1), (1, 1))),
    ((3, 5), 4, 1, ((1, 2), (0, 1))),
    ((8, 8), 3, 1, ((1, 1), (1, 1))),
    ((9, 7), 4, 2, ((1, 1), (1, 1))),
    ((6, 6), 1, 1, ((0, 0), (0, 0))),
]


@pytest.mark.parametrize("size,k,stride,padding", GEOMETRIES)
def test_conv2d_and_its_gradients_match_torch(size, k, stride, padding):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3,) + size + (5,)).astype(np.float32)
  kernel = rng.normal(size=(k, k, 5, 7)).astype(np.float32)
  xt = torch.from_numpy(x).requires_grad_(True)
  kt = torch.from_numpy(kernel).requires_grad_(True)
  expected = _torch_conv(xt, kt, stride, padding)
  got = ops.conv2d(jnp.asarray(x), jnp.asarray(kernel), stride=stride, padding=padding)
  np.testing.assert_allclose(np.asarray(got), expected.detach().numpy(), rtol=1e-5, atol=1e-5)

  cotangent = rng.normal(size=expected.shape).astype(np.float32)
  (expected * torch.from_numpy(cotangent)).sum().backward()
  _, pullback = jax.vjp(lambda a, b: ops.conv2d(a, b, stride=stride, padding=padding),
                        jnp.asarray(x), jnp.asarray(kernel))
  dx, dk = pullback(jnp.asarray(cotangent))
  np.testing.assert_allclose(np.asarray(dx), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.asarray(dk), kt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_the_route_is_chosen_by_the_window_not_by_the_channels():
  assert conv.computes_by_patches((2, 2), 3, 1, 1)
  assert conv.computes_by_patches((1, 1), 3, 1, 1)
  assert conv.computes_by_patches((4, 4), 3, 2, 1)      # 2x2 output: its input gradient
  assert not conv.computes_by_patches((3, 3), 3, 1, 1)  # 9 positions, a 9-tap window
  assert not conv.computes_by_patches((8, 8), 3, 1, 1)
  assert not conv.computes_by_patches((1, 1), 1, 1, 0)  # a 1x1 kernel is never swapped


@pytest.mark.parametrize("integer_padding", [True, False])
def test_small_maps_compile_without_a_convolution(integer_padding):
  """The point of the route: neither the forward nor the gradients contain a convolution
  (XLA would swap its operands and run a generic loop on CPU)."""
  x = jnp.ones((2, 2, 2, 8))
  kernel = jnp.ones((3, 3, 8, 4))
  padding = 1 if integer_padding else ((1, 1), (1, 1))

  def loss(a, b):
    return jnp.sum(jnp.sin(ops.conv2d(a, b, padding=padding)))

  hlo = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, kernel).as_text()
  assert "convolution" not in hlo
  ordinary = jax.jit(jax.grad(loss)).lower(jnp.ones((2, 8, 8, 8)), kernel).as_text()
  assert "convolution" in ordinary


def test_both_routes_agree_in_bfloat16_and_keep_the_dtype():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 2, 2, 16)), jnp.bfloat16)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 16, 8)), jnp.bfloat16)
  by_patches = ops.conv2d(x, kernel, padding=1)
  direct = jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  assert by_patches.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(by_patches, np.float32), np.asarray(direct, np.float32),
                             rtol=2e-2, atol=2e-1)


@pytest.mark.parametrize("x_shape,kernel_shape,match", [
    ((2, 4, 4), (3, 3, 4, 4), "B, H, W, C"),
    ((1, 4, 4, 4), (3, 2, 4, 4), "square kernel"),
    ((1, 4, 4, 5), (3, 3, 4, 4), "5 channels"),
])
def test_bad_shapes_are_named(x_shape, kernel_shape, match):
  with pytest.raises(ValueError, match=match):
    ops.conv2d(jnp.ones(x_shape), jnp.ones(kernel_shape), padding=1)


def test_a_kernel_larger_than_the_padded_map_is_refused():
  with pytest.raises(ValueError, match="does not fit"):
    conv.conv2d_by_patches(jnp.ones((1, 1, 1, 2)), jnp.ones((3, 3, 2, 2)), padding=0)


# Kernel gradients by patches: asymmetric padding, a non-square map, 1x1 kernels with and
# without padding, an even kernel; chunk sizes that split images and leave a remainder.
KERNEL_GRADIENT_GEOMETRIES = [
    ((5, 7), 3, ((1, 2), (0, 1))),
    ((6, 6), 1, ((0, 0), (0, 0))),
    ((6, 5), 1, ((1, 0), (0, 1))),
    ((4, 9), 4, ((1, 2), (2, 1))),
]


@pytest.mark.parametrize("size,k,padding", KERNEL_GRADIENT_GEOMETRIES)
@pytest.mark.parametrize("rows", [1, 7, 512])
def test_kernel_gradient_by_patches_matches_torch(size, k, padding, rows):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(3,) + size + (5,)).astype(np.float32)
  kernel = rng.normal(size=(k, k, 5, 7)).astype(np.float32)
  kt = torch.from_numpy(kernel).requires_grad_(True)
  expected = _torch_conv(torch.from_numpy(x), kt, 1, padding)
  cotangent = rng.normal(size=expected.shape).astype(np.float32)
  (expected * torch.from_numpy(cotangent)).sum().backward()
  got = conv.kernel_gradient_by_patches(jnp.asarray(x), jnp.asarray(cotangent), k, padding,
                                        rows=rows)
  assert got.shape == kernel.shape
  np.testing.assert_allclose(np.asarray(got), kt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_large_maps_take_the_kernel_gradient_route_and_match_torch():
  """A 128x130 map (past KERNEL_GRADIENT_MIN_POSITIONS): both gradients against torch,
  and the compiled gradient holds two convolutions (forward, input gradient), not three."""
  size = (128, 130)
  assert conv.computes_kernel_gradient_by_patches(size, 3, 1, 1)
  rng = np.random.default_rng(2)
  x = rng.normal(size=(1,) + size + (4,)).astype(np.float32)
  kernel = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)

  def loss(a, b):
    return jnp.sum(jnp.sin(ops.conv2d(a, b, padding=1)))

  dx, dk = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(kernel))
  # Against torch in float64: torch's float32 kernel gradient is itself a sum of 16,640
  # terms whose rounding depends on the CPU and the thread count (it sits a third of the
  # way to the bound on its own); ours is 10-15x inside it, a wrong gradient is O(1).
  xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
  kt = torch.from_numpy(kernel.astype(np.float64)).requires_grad_(True)
  torch.sin(_torch_conv(xt, kt, 1, ((1, 1), (1, 1)))).sum().backward()
  np.testing.assert_allclose(np.asarray(dx), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
  scale = np.abs(kt.grad.numpy()).max()
  np.testing.assert_allclose(np.asarray(dk) / scale, kt.grad.numpy() / scale, atol=1e-5)

  compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(jnp.asarray(x), jnp.asarray(kernel))
  assert compiled.compile().as_text().count("convolution(") == 2
  small = jnp.ones((1, 64, 64, 4))
  lax_route = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(small, jnp.asarray(kernel))
  assert lax_route.compile().as_text().count("convolution(") == 3


def test_the_kernel_gradient_route_is_chosen_by_the_output_size_and_stride():
  assert conv.computes_kernel_gradient_by_patches((128, 128), 3, 1, 1)
  assert conv.computes_kernel_gradient_by_patches((128, 128), 1, 1, 0)
  assert not conv.computes_kernel_gradient_by_patches((128, 128), 3, 1, 0)  # 126x126 output
  assert not conv.computes_kernel_gradient_by_patches((127, 128), 1, 1, 0)
  assert not conv.computes_kernel_gradient_by_patches((256, 256), 3, 2, 1)  # strided


def test_kernel_gradient_by_patches_keeps_bfloat16():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2, 9, 8, 6)).astype(np.float32)
  cotangent = rng.normal(size=(2, 9, 8, 5)).astype(np.float32)
  exact = conv.kernel_gradient_by_patches(jnp.asarray(x), jnp.asarray(cotangent), 3, 1)
  low = conv.kernel_gradient_by_patches(jnp.asarray(x, jnp.bfloat16),
                                        jnp.asarray(cotangent, jnp.bfloat16), 3, 1, rows=16)
  assert low.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(low, np.float32), np.asarray(exact), rtol=5e-2, atol=0.5)


def test_kernel_gradient_by_patches_refuses_a_cotangent_of_another_shape():
  with pytest.raises(ValueError, match=r"cotangent of shape \(1, 4, 4, 2\)"):
    conv.kernel_gradient_by_patches(jnp.ones((1, 4, 4, 3)), jnp.ones((1, 4, 4, 2)), 3, 0)


def test_kernel_gradient_option_patches_on_a_small_map_and_xla_for_forward_mode():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(2, 6, 7, 3)).astype(np.float32)
  kernel = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
  kt = torch.from_numpy(kernel).requires_grad_(True)
  (_torch_conv(torch.from_numpy(x), kt, 1, ((1, 1), (1, 1)))**2).sum().backward()
  dk = jax.grad(lambda b: jnp.sum(ops.conv2d(jnp.asarray(x), b, padding=1,
                                             kernel_gradient="patches")**2))(
                                                 jnp.asarray(kernel))
  np.testing.assert_allclose(np.asarray(dk), kt.grad.numpy(), rtol=1e-4, atol=1e-3)

  # Forward mode on a map where "auto" takes the custom-VJP route: "xla" supports it.
  large = jnp.asarray(rng.normal(size=(1, 128, 128, 2)), jnp.float32)
  k2 = jnp.asarray(rng.normal(size=(3, 3, 2, 3)), jnp.float32)
  tangent = jnp.asarray(rng.normal(size=k2.shape), jnp.float32)
  _, jvp_out = jax.jvp(lambda b: ops.conv2d(large, b, padding=1, kernel_gradient="xla"),
                       (k2,), (tangent,))
  np.testing.assert_allclose(np.asarray(jvp_out),
                             np.asarray(ops.conv2d(large, tangent, padding=1)),
                             rtol=1e-5, atol=1e-4)
  with pytest.raises(TypeError, match="forward-mode"):
    jax.jvp(lambda b: ops.conv2d(large, b, padding=1), (k2,), (tangent,))
  with pytest.raises(ValueError, match="kernel_gradient must be"):
    ops.conv2d(large, k2, padding=1, kernel_gradient="fast")
