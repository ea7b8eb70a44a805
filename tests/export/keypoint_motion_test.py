"""The numpy relative motion of the exported runtime equals the JAX one it replaces."""

import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.export import keypoint_motion
from mcc_jax.ops import keypoints as jax_keypoints
from mcc_jax.ops.keypoints import Keypoints


def _keypoints(rng, batch, count=15):
  value = rng.uniform(-0.8, 0.8, (batch, count, 2)).astype(np.float32)
  jacobian = (np.eye(2) + rng.normal(0, 0.3, (batch, count, 2, 2))).astype(np.float32)
  return Keypoints(value, jacobian)


def test_hull_areas_equal_jax_ones_degenerate_sets_included():
  rng = np.random.default_rng(0)
  square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [0, 0], [1, 1], [0.5, -1]])
  line = np.stack([np.linspace(-1, 1, 7), np.linspace(-0.5, 0.5, 7)], axis=-1)
  sets = np.concatenate([rng.uniform(-1, 1, (5, 7, 2)), square[None], line[None],
                         np.zeros((1, 7, 2))]).astype(np.float32)
  found = keypoint_motion.convex_hull_area(sets)
  expected = np.asarray(jax_keypoints.convex_hull_area(jnp.asarray(sets)))
  np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)
  assert found[5] == pytest.approx(4.0) and found[6] == 0 and found[7] == 0


@pytest.mark.parametrize("adapt_scale", [True, False], ids=["adapt_scale", "unit_scale"])
@pytest.mark.parametrize("relative_jacobian", [True, False], ids=["jacobians", "no_jacobians"])
def test_relative_motion_equals_jax(adapt_scale, relative_jacobian):
  rng = np.random.default_rng(1)
  source, driving, anchor = _keypoints(rng, 1), _keypoints(rng, 4), _keypoints(rng, 1)
  found = keypoint_motion.transfer_relative_motion(
      source, driving, anchor, use_relative_jacobian=relative_jacobian,
      adapt_movement_scale=adapt_scale)
  # The JAX version needs every set at the batch size; the numpy one broadcasts.
  tile = lambda kp: Keypoints(*(jnp.asarray(np.repeat(x, 4, axis=0)) for x in kp))
  expected = jax_keypoints.transfer_relative_motion(
      tile(source), Keypoints(*map(jnp.asarray, driving)), tile(anchor),
      use_relative_jacobian=relative_jacobian, adapt_movement_scale=adapt_scale)
  assert isinstance(found, Keypoints)
  assert found.value.dtype == found.jacobian.dtype == np.float32
  np.testing.assert_allclose(found.value, expected.value, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(found.jacobian, expected.jacobian, rtol=1e-5, atol=1e-5)
  # Moved: neither the driving keypoints nor the source ones.
  assert np.abs(found.value - driving.value).max() > 0.1
  assert np.abs(found.value - source.value).max() > 0.1


def test_absolute_motion_is_the_driving_keypoints_and_jacobians_are_needed():
  rng = np.random.default_rng(2)
  source, driving, anchor = _keypoints(rng, 1), _keypoints(rng, 2), _keypoints(rng, 1)
  assert keypoint_motion.transfer_relative_motion(
      source, driving, anchor, use_relative_movement=False) is driving
  with pytest.raises(ValueError, match="needs jacobians on all three keypoint sets"):
    keypoint_motion.transfer_relative_motion(Keypoints(source.value), driving, anchor)
  # At the anchor itself the source keypoints are unchanged.
  at_anchor = keypoint_motion.transfer_relative_motion(source, anchor, anchor,
                                                       adapt_movement_scale=True)
  np.testing.assert_allclose(at_anchor.value, source.value, atol=1e-7)
  np.testing.assert_allclose(at_anchor.jacobian, source.jacobian, atol=1e-6)
