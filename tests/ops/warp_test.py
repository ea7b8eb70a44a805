"""grid_sample / warp against torch.nn.functional.grid_sample."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcc_jax import ops

MODES = ("bilinear", "nearest")
PADDINGS = ("zeros", "border", "reflection")
COMBINATIONS = list(itertools.product(MODES, PADDINGS, (False, True)))


def _torch_grid_sample(image, grid, mode, padding_mode, align_corners):
  out = F.grid_sample(torch.from_numpy(image).permute(0, 3, 1, 2), torch.from_numpy(grid),
                      mode=mode, padding_mode=padding_mode, align_corners=align_corners)
  return out.permute(0, 2, 3, 1).numpy()


def _inputs(seed, batch=2, h=9, w=11, c=3, ho=7, wo=6, spread=2.5):
  """Random image and a grid reaching well outside [-1, 1], including far-away samples."""
  rng = np.random.default_rng(seed)
  image = rng.normal(size=(batch, h, w, c)).astype(np.float32)
  grid = rng.uniform(-spread, spread, size=(batch, ho, wo, 2)).astype(np.float32)
  grid[0, 0, 0] = (40.0, -35.0)  # Far outside: exercises repeated reflections.
  grid[1, 0, 0] = (-1e4, 1e4)
  return image, grid


@pytest.mark.parametrize("mode,padding_mode,align_corners", COMBINATIONS)
def test_forward_matches_torch(mode, padding_mode, align_corners):
  for seed in range(3):
    image, grid = _inputs(seed)
    expected = _torch_grid_sample(image, grid, mode, padding_mode, align_corners)
    got = ops.grid_sample(jnp.asarray(image), jnp.asarray(grid), mode=mode,
                          padding_mode=padding_mode, align_corners=align_corners)
    assert got.shape == expected.shape
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5, rtol=0)


def _away_from_ties(grid, h, w, align_corners, margin=0.02):
  """Moves samples whose pixel coordinate is near an integer (or a .5 for nearest).

  At an integer pixel coordinate the bilinear interpolant has a kink and the two
  libraries may pick different one-sided derivatives; the reference comparison is only
  meaningful away from those points.
  """
  grid = grid.copy()
  for axis, size in ((0, w), (1, h)):
    coord = grid[..., axis]
    pixel = (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2
    frac = pixel - np.floor(pixel)
    for tie in (0.0, 0.5, 1.0):
      close = np.abs(frac - tie) < margin
      coord[close] += 4 * margin / size
    grid[..., axis] = coord
  return grid


@pytest.mark.parametrize("mode,padding_mode,align_corners", COMBINATIONS)
def test_gradients_match_torch(mode, padding_mode, align_corners):
  # Within two pixels of the border for reflection/border so the gradient paths through
  # the padding rules are exercised, but not at the clamping kinks.
  image, grid = _inputs(seed=7, spread=1.2)
  grid = _away_from_ties(grid, image.shape[1], image.shape[2], align_corners)
  cotangent = np.random.default_rng(1).normal(size=(2, 7, 6, 3)).astype(np.float32)

  t_image = torch.from_numpy(image).permute(0, 3, 1, 2).requires_grad_(True)
  t_grid = torch.from_numpy(grid).requires_grad_(True)
  t_out = F.grid_sample(t_image, t_grid, mode=mode, padding_mode=padding_mode,
                        align_corners=align_corners)
  (t_out * torch.from_numpy(cotangent).permute(0, 3, 1, 2)).sum().backward()
  t_dimage = t_image.grad.permute(0, 2, 3, 1).numpy()
  t_dgrid = t_grid.grad.numpy()

  def objective(img, g):
    out = ops.grid_sample(img, g, mode=mode, padding_mode=padding_mode,
                          align_corners=align_corners)
    return jnp.sum(out * cotangent)

  dimage, dgrid = jax.grad(objective, argnums=(0, 1))(jnp.asarray(image), jnp.asarray(grid))
  np.testing.assert_allclose(np.asarray(dimage), t_dimage, atol=1e-4, rtol=0)
  # Samples that were clamped exactly onto the border have a zero torch gradient; ours
  # agrees because jnp.clip's gradient is zero outside the range.
  np.testing.assert_allclose(np.asarray(dgrid), t_dgrid, atol=1e-4, rtol=0)


def test_identity_grid_with_align_corners_reproduces_input():
  image = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 8, 4))
  grid = jnp.broadcast_to(ops.coordinate_grid(6, 8), (2, 6, 8, 2))
  out = ops.grid_sample(image, grid, align_corners=True)
  np.testing.assert_allclose(np.asarray(out), np.asarray(image), atol=1e-5)


def test_coordinate_grid_convention():
  grid = np.asarray(ops.coordinate_grid(3, 5))
  assert grid.shape == (3, 5, 2)
  np.testing.assert_allclose(grid[0, :, 0], np.linspace(-1, 1, 5), atol=1e-7)  # x along width
  np.testing.assert_allclose(grid[:, 0, 1], np.linspace(-1, 1, 3), atol=1e-7)  # y along height


def test_linspace_grid_equals_torch_linspace_bit_for_bit():
  # The official generator's identity grid: torch.linspace in float32, meshgrid 'xy'.
  for h, w in [(64, 64), (32, 32), (7, 8), (2, 2), (256, 256), (3, 1025)]:
    xx = torch.linspace(-1.0, 1.0, w)
    yy = torch.linspace(-1.0, 1.0, h)
    grid_x, grid_y = torch.meshgrid(xx, yy, indexing="xy")
    expected = torch.stack((grid_x, grid_y), dim=-1).numpy()
    got = np.asarray(ops.linspace_grid(h, w))
    assert got.dtype == np.float32 and got.shape == (h, w, 2)
    np.testing.assert_array_equal(got, expected)
  # It is not the correctly rounded grid (else coordinate_grid would do).
  assert np.any(np.asarray(ops.linspace_grid(64, 64)) != np.asarray(ops.coordinate_grid(64, 64)))
  # Wider dtypes carry the float32 values unchanged.
  with jax.enable_x64(True):
    wide = np.asarray(ops.linspace_grid(64, 64, jnp.float64))
  assert wide.dtype == np.float64
  np.testing.assert_array_equal(wide, np.asarray(ops.linspace_grid(64, 64)).astype(np.float64))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dtype_is_preserved(dtype):
  image, grid = _inputs(3)
  out = ops.grid_sample(jnp.asarray(image, dtype), jnp.asarray(grid, dtype))
  assert out.dtype == dtype
  if dtype == jnp.bfloat16:
    expected = _torch_grid_sample(image, grid, "bilinear", "zeros", False)
    np.testing.assert_allclose(np.asarray(out, np.float32), expected, atol=0.1)


def test_jit_vmap_agree_with_batched_call():
  image, grid = _inputs(4)
  image, grid = jnp.asarray(image), jnp.asarray(grid)
  batched = ops.grid_sample(image, grid, padding_mode="reflection")
  fn = lambda i, g: ops.grid_sample(i[None], g[None], padding_mode="reflection")[0]
  mapped = jax.jit(jax.vmap(fn))(image, grid)
  # XLA may fuse the jitted arithmetic differently: agreement to float rounding.
  np.testing.assert_allclose(np.asarray(mapped), np.asarray(batched), atol=1e-5)


def test_warp_matches_torch_resize_then_sample():
  rng = np.random.default_rng(5)
  features = rng.normal(size=(2, 32, 32, 5)).astype(np.float32)
  deformation = rng.uniform(-1.1, 1.1, size=(2, 16, 16, 2)).astype(np.float32)
  t_def = F.interpolate(torch.from_numpy(deformation).permute(0, 3, 1, 2), size=(32, 32),
                        mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
  expected = F.grid_sample(torch.from_numpy(features).permute(0, 3, 1, 2), t_def,
                           align_corners=True).permute(0, 2, 3, 1).numpy()
  got = ops.warp(jnp.asarray(features), jnp.asarray(deformation))
  # The resized grid differs from torch's by float rounding (the order of the two 1-D
  # blends); sampling scales that by the feature slopes.
  np.testing.assert_allclose(np.asarray(got), expected, atol=5e-5)


def test_resize_flow_keeps_matching_sizes_and_resizes_others():
  flow = jax.random.normal(jax.random.PRNGKey(2), (1, 8, 8, 2))
  assert ops.resize_flow(flow, (8, 8)) is flow
  assert ops.resize_flow(flow, (16, 4)).shape == (1, 16, 4, 2)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"mode": "bicubic"}, "mode must be one of"),
     ({"padding_mode": "wrap"}, "padding_mode must be one of")])
def test_invalid_options_name_the_argument(kwargs, message):
  image, grid = _inputs(0)
  with pytest.raises(ValueError, match=message):
    ops.grid_sample(jnp.asarray(image), jnp.asarray(grid), **kwargs)


def test_shape_errors_name_the_expected_shape():
  with pytest.raises(ValueError, match=r"grid must be \(B, Ho, Wo, 2\)"):
    ops.grid_sample(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 4, 3)))
  with pytest.raises(ValueError, match="batch sizes differ"):
    ops.grid_sample(jnp.zeros((2, 4, 4, 3)), jnp.zeros((1, 4, 4, 2)))


def test_forward_mode_agrees_with_reverse_mode():
  image, grid = _inputs(11, spread=1.2)
  image, grid = jnp.asarray(image), jnp.asarray(grid)
  rng = np.random.default_rng(12)
  d_image = jnp.asarray(rng.normal(size=image.shape), jnp.float32)
  d_grid = jnp.asarray(rng.normal(size=grid.shape), jnp.float32)
  cotangent = jnp.asarray(rng.normal(size=(2, 7, 6, 3)), jnp.float32)
  fn = lambda i, g: ops.grid_sample(i, g, align_corners=True)
  _, tangent = jax.jvp(fn, (image, grid), (d_image, d_grid))
  grads = jax.grad(lambda i, g: jnp.sum(fn(i, g) * cotangent), argnums=(0, 1))(image, grid)
  # <J v, u> == <v, J^T u>
  forward = float(jnp.sum(tangent * cotangent))
  reverse = float(jnp.sum(grads[0] * d_image) + jnp.sum(grads[1] * d_grid))
  np.testing.assert_allclose(forward, reverse, rtol=1e-4)
