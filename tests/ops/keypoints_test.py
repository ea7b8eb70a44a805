"""Keypoint heatmaps, FOMM sparse motions, relative motion transfer, convex-hull areas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import ConvexHull

from mcc_jax import ops


def _grid(h, w):
  x = 2 * np.arange(w) / (w - 1) - 1
  y = 2 * np.arange(h) / (h - 1) - 1
  return np.stack(np.meshgrid(x, y, indexing="xy"), axis=-1)


def test_gaussian_peaks_at_the_keypoint_and_follows_the_formula():
  h, w = 17, 13
  grid = _grid(h, w)
  kp = np.array([[grid[4, 9], grid[12, 2], [0.13, -0.41]]], np.float32)  # (1, 3, 2)
  heat = np.asarray(ops.kp_to_gaussian(jnp.asarray(kp), (h, w), 0.01))
  assert heat.shape == (1, h, w, 3)
  assert np.unravel_index(heat[0, :, :, 0].argmax(), (h, w)) == (4, 9)
  assert np.unravel_index(heat[0, :, :, 1].argmax(), (h, w)) == (12, 2)
  np.testing.assert_allclose(heat[0, 4, 9, 0], 1.0, atol=1e-6)
  expected = np.exp(-0.5 * ((grid[None, :, :, None] - kp[:, None, None]) ** 2).sum(-1) / 0.01)
  np.testing.assert_allclose(heat, expected, atol=1e-6)


def test_heatmap_difference_has_zero_background_first():
  rng = np.random.default_rng(0)
  kp_s = rng.uniform(-1, 1, (2, 4, 2)).astype(np.float32)
  kp_d = rng.uniform(-1, 1, (2, 4, 2)).astype(np.float32)
  out = np.asarray(ops.heatmap_difference(jnp.asarray(kp_s), jnp.asarray(kp_d), (8, 8), 0.01))
  assert out.shape == (2, 8, 8, 5)
  np.testing.assert_array_equal(out[..., 0], 0.0)
  expected = (np.asarray(ops.kp_to_gaussian(jnp.asarray(kp_d), (8, 8), 0.01))
              - np.asarray(ops.kp_to_gaussian(jnp.asarray(kp_s), (8, 8), 0.01)))
  np.testing.assert_allclose(out[..., 1:], expected, atol=1e-7)


def test_sparse_motion_with_identity_jacobians_is_a_translation():
  rng = np.random.default_rng(1)
  kp_s = rng.uniform(-1, 1, (2, 5, 2)).astype(np.float32)
  kp_d = rng.uniform(-1, 1, (2, 5, 2)).astype(np.float32)
  eye = np.broadcast_to(np.eye(2, dtype=np.float32), (2, 5, 2, 2))
  for jac in (None, eye):
    motions = np.asarray(ops.sparse_motions(
        ops.Keypoints(jnp.asarray(kp_s), None if jac is None else jnp.asarray(jac)),
        ops.Keypoints(jnp.asarray(kp_d), None if jac is None else jnp.asarray(jac)), (6, 7)))
    assert motions.shape == (2, 6, 6, 7, 2)
    grid = _grid(6, 7)
    np.testing.assert_allclose(motions[:, 0], np.broadcast_to(grid, (2, 6, 7, 2)), atol=1e-6)
    translation = grid[None, None] + (kp_s - kp_d)[:, :, None, None, :]
    np.testing.assert_allclose(motions[:, 1:], translation, atol=1e-6)


def test_sparse_motion_with_jacobians_is_the_taylor_expansion():
  rng = np.random.default_rng(2)
  kp_s = rng.uniform(-1, 1, (1, 3, 2))
  kp_d = rng.uniform(-1, 1, (1, 3, 2))
  jac_s = np.eye(2) + 0.3 * rng.normal(size=(1, 3, 2, 2))
  jac_d = np.eye(2) + 0.3 * rng.normal(size=(1, 3, 2, 2))
  motions = np.asarray(ops.sparse_motions(
      ops.Keypoints(jnp.asarray(kp_s, jnp.float32), jnp.asarray(jac_s, jnp.float32)),
      ops.Keypoints(jnp.asarray(kp_d, jnp.float32), jnp.asarray(jac_d, jnp.float32)), (5, 5)))
  grid = _grid(5, 5)
  for k in range(3):
    jac = jac_s[0, k] @ np.linalg.inv(jac_d[0, k])
    expected = (grid - kp_d[0, k]) @ jac.T + kp_s[0, k]
    np.testing.assert_allclose(motions[0, k + 1], expected, atol=1e-5)


def _keypoints(seed, with_jacobian=True):
  rng = np.random.default_rng(seed)
  value = jnp.asarray(rng.uniform(-0.8, 0.8, (2, 10, 2)), jnp.float32)
  jac = jnp.asarray(np.eye(2) + 0.2 * rng.normal(size=(2, 10, 2, 2)), jnp.float32)
  return ops.Keypoints(value, jac if with_jacobian else None)


def test_relative_motion_from_the_initial_frame_returns_the_source():
  source, initial = _keypoints(0), _keypoints(1)
  for adapt in (False, True):
    out = ops.transfer_relative_motion(source, initial, initial, use_relative_movement=True,
                                       use_relative_jacobian=True, adapt_movement_scale=adapt)
    np.testing.assert_allclose(np.asarray(out.value), np.asarray(source.value), atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.jacobian), np.asarray(source.jacobian), atol=1e-5)


def test_relative_motion_scales_displacements_by_hull_size():
  source, initial, driving = _keypoints(0), _keypoints(1), _keypoints(2)
  out = ops.transfer_relative_motion(source, driving, initial, use_relative_movement=True,
                                     use_relative_jacobian=False, adapt_movement_scale=True)
  for b in range(2):
    scale = np.sqrt(ConvexHull(np.asarray(source.value[b])).volume
                    / ConvexHull(np.asarray(initial.value[b])).volume)
    expected = (np.asarray(driving.value[b]) - np.asarray(initial.value[b])) * scale \
        + np.asarray(source.value[b])
    np.testing.assert_allclose(np.asarray(out.value[b]), expected, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(out.jacobian), np.asarray(driving.jacobian))
  unchanged = ops.transfer_relative_motion(source, driving, initial, use_relative_movement=False)
  assert unchanged is driving


def test_convex_hull_area_matches_scipy():
  rng = np.random.default_rng(3)
  for n in (3, 5, 15, 40):
    points = rng.uniform(-1, 1, (4, n, 2)).astype(np.float32)
    areas = np.asarray(jax.jit(ops.convex_hull_area)(jnp.asarray(points)))
    expected = [ConvexHull(p.astype(np.float64)).volume for p in points]
    np.testing.assert_allclose(areas, expected, rtol=1e-5)


def test_convex_hull_area_handles_degenerate_sets():
  square_with_extras = np.array([[0, 0], [1, 0], [1, 1], [0, 1],  # corners
                                 [0.5, 0], [0, 0.5],  # collinear on edges
                                 [0.5, 0.5], [1, 1]], np.float32)  # interior, duplicate
  line = np.array([[0, 0], [1, 1], [2, 2], [0.5, 0.5]], np.float32)
  rotation = np.array([[0.8, -0.6], [0.6, 0.8]], np.float32)  # inexact coordinates
  for area_fn in (ops.convex_hull_area, jax.jit(ops.convex_hull_area)):
    assert float(area_fn(jnp.asarray(square_with_extras))) == pytest.approx(1.0)
    assert float(area_fn(jnp.asarray(square_with_extras @ rotation.T))) == pytest.approx(1.0)
    assert float(area_fn(jnp.asarray(line))) == pytest.approx(0.0, abs=1e-6)
    assert float(area_fn(jnp.asarray(line @ rotation.T))) == pytest.approx(0.0, abs=1e-6)


def test_relative_jacobian_needs_all_jacobians():
  with pytest.raises(ValueError, match="needs jacobians"):
    ops.transfer_relative_motion(_keypoints(0, False), _keypoints(1), _keypoints(2, False))
