"""Random affine + TPS transforms: formula, autodiff jacobian, frame resampling."""

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from mcc_jax import ops


def _numpy_warp(theta, control_points, control_params, coords):
  """The transform written out directly, in float64."""
  affine = np.einsum("bij,bnj->bni", theta[:, :, :2], coords) + theta[:, None, :, 2]
  dist = np.abs(coords[:, :, None, :] - control_points[None, None]).sum(-1)
  radial = dist**2 * np.log(dist + 1e-6)
  return affine + (radial * control_params[:, None, :]).sum(-1, keepdims=True)


def _transform(seed=0, batch=3):
  return ops.sample_random_tps(jax.random.PRNGKey(seed), batch, sigma_affine=0.05,
                               sigma_tps=0.005, points_tps=5)


def test_sampled_parameters_have_the_requested_shapes_and_spread():
  tps = ops.sample_random_tps(jax.random.PRNGKey(0), 256, sigma_affine=0.05, sigma_tps=0.005,
                              points_tps=5)
  assert tps.theta.shape == (256, 2, 3)
  assert tps.control_points.shape == (25, 2)
  assert tps.control_params.shape == (256, 25)
  noise = np.asarray(tps.theta) - np.eye(2, 3)
  assert abs(noise.std() - 0.05) < 0.005
  assert abs(np.asarray(tps.control_params).std() - 0.005) < 0.0005
  again = ops.sample_random_tps(jax.random.PRNGKey(0), 256, sigma_affine=0.05, sigma_tps=0.005,
                                points_tps=5)
  np.testing.assert_array_equal(np.asarray(again.theta), np.asarray(tps.theta))


def test_warp_coordinates_matches_the_formula():
  tps = _transform()
  coords = np.random.default_rng(0).uniform(-1, 1, (3, 15, 2)).astype(np.float32)
  got = np.asarray(ops.warp_coordinates(tps, jnp.asarray(coords)))
  expected = _numpy_warp(np.asarray(tps.theta, np.float64), np.asarray(tps.control_points,
                                                                       np.float64),
                         np.asarray(tps.control_params, np.float64), coords.astype(np.float64))
  np.testing.assert_allclose(got, expected, atol=1e-6)
  # Shared (N, 2) coordinates broadcast over the batch.
  shared = np.asarray(ops.warp_coordinates(tps, jnp.asarray(coords[0])))
  np.testing.assert_allclose(shared[1], np.asarray(ops.warp_coordinates(
      tps, jnp.asarray(np.broadcast_to(coords[0], (3, 15, 2)))))[1], atol=1e-7)


def test_jacobian_matches_finite_differences():
  tps = _transform(1)
  coords = np.random.default_rng(1).uniform(-0.9, 0.9, (3, 7, 2))
  jac = np.asarray(ops.tps_jacobian(tps, jnp.asarray(coords, jnp.float32)))
  assert jac.shape == (3, 7, 2, 2)
  args = [np.asarray(a, np.float64) for a in (tps.theta, tps.control_points, tps.control_params)]
  eps = 1e-6
  for j in range(2):
    step = np.zeros(2)
    step[j] = eps
    numeric = (_numpy_warp(*args, coords + step) - _numpy_warp(*args, coords - step)) / (2 * eps)
    np.testing.assert_allclose(jac[..., :, j], numeric, atol=2e-4)


def _torch_jacobian(theta, control_points, control_params, coords):
  """d T / d p by torch autograd of the FOMM formula (L1 distances, ``r^2 log(r + 1e-6)``)."""
  theta, points, params = (torch.from_numpy(np.asarray(a, np.float64))
                           for a in (theta, control_points, control_params))
  p = torch.tensor(coords, dtype=torch.float64, requires_grad=True)
  affine = torch.einsum("bij,bnj->bni", theta[:, :, :2], p) + theta[:, None, :, 2]
  r = torch.abs(p[:, :, None, :] - points[None, None]).sum(-1)
  warped = affine + (r**2 * torch.log(r + 1e-6) * params[:, None, :]).sum(-1, keepdim=True)
  rows = [torch.autograd.grad(warped[..., i].sum(), p, retain_graph=True)[0] for i in range(2)]
  return torch.stack(rows, dim=-2).numpy()


def test_jacobian_on_a_control_point_coordinate_follows_torch():
  """Keypoints on grid coordinates (-1, -0.5, 0, 0.5, 1) meet |x - c| at 0.

  PyTorch's derivative of abs there is 0 and JAX's own is 1; a heatmap collapsed onto a
  border pixel puts keypoints exactly there, and the official equivariance jacobian term
  differentiates the transform at them.
  """
  tps = _transform(3, batch=2)
  coords = np.random.default_rng(3).uniform(-0.9, 0.9, (2, 6, 2))
  coords[0, 0, 0] = 1.0                 # on the control points' x = 1 column
  coords[0, 1] = (0.5, -0.5)            # on a control point
  coords[1, 2, 1] = 0.0                 # on the y = 0 row
  with jax.enable_x64(True):
    tps64 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tps)
    ours = np.asarray(ops.tps_jacobian(tps64, jnp.asarray(coords, jnp.float64)))
  expected = _torch_jacobian(tps.theta, tps.control_points, tps.control_params, coords)
  np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def test_identity_parameters_give_identity_jacobian():
  tps = ops.sample_random_tps(jax.random.PRNGKey(0), 2, sigma_affine=0.0, sigma_tps=0.0,
                              points_tps=5)
  jac = np.asarray(ops.tps_jacobian(tps, jnp.zeros((2, 4, 2)) + 0.3))
  np.testing.assert_allclose(jac, np.broadcast_to(np.eye(2), jac.shape), atol=1e-7)


def test_transform_frame_resamples_with_reflection_padding_like_torch():
  tps = _transform(2, batch=2)
  frame = np.random.default_rng(2).uniform(size=(2, 16, 12, 3)).astype(np.float32)
  got = np.asarray(ops.transform_frame(tps, jnp.asarray(frame)))
  grid = np.asarray(ops.warp_coordinates(tps, ops.coordinate_grid(16, 12).reshape(-1, 2)))
  expected = F.grid_sample(torch.from_numpy(frame).permute(0, 3, 1, 2),
                           torch.from_numpy(grid.reshape(2, 16, 12, 2).copy()), mode="bilinear",
                           padding_mode="reflection", align_corners=False)
  np.testing.assert_allclose(got, expected.permute(0, 2, 3, 1).numpy(), atol=1e-5)
