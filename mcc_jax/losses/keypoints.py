"""Keypoint losses: FOMM's equivariance and the official keypoint-distance term.

Equivariance (official ``EquivarianceLoss`` with the random affine + TPS ``Transform``):
the keypoints of a randomly transformed driving frame, mapped back by the transform,
should be the driving frame's keypoints (value term), and the jacobians should compose
to the identity (jacobian term). Both are unweighted means here; the weights come from
the objective.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mcc_jax.ops import tps as tps_ops
from mcc_jax.ops.keypoints import Keypoints
from mcc_jax.ops.precision import at_least_float32


def equivariance_losses(kp_driving: Keypoints, kp_transformed: Keypoints,
                        tps: tps_ops.RandomTPS) -> tuple[jax.Array, jax.Array]:
  """(value loss, jacobian loss) of the equivariance constraint.

  Args:
    kp_driving: keypoints of the driving frames (B, K, 2) with jacobians (B, K, 2, 2).
    kp_transformed: keypoints of ``tps.transform_frame(driving)``.
    tps: the transforms.

  Returns:
    ``mean|kp_d - T(kp_t)|`` and ``mean|I - inv(J_d) @ (dT/dp(kp_t) @ J_t)|``; the
    transform's jacobian is differentiated through (as the official code does with
    ``create_graph=True``), so both terms send gradients into both keypoint sets.
  """
  value = jnp.mean(jnp.abs(kp_driving.value - tps_ops.warp_coordinates(tps, kp_transformed.value)))
  transformed = jnp.matmul(tps_ops.jacobian(tps, kp_transformed.value), kp_transformed.jacobian,
                           precision=jax.lax.Precision.HIGHEST)
  composed = jnp.matmul(jnp.linalg.inv(kp_driving.jacobian), transformed,
                        precision=jax.lax.Precision.HIGHEST)
  jacobian = jnp.mean(jnp.abs(jnp.eye(2, dtype=composed.dtype) - composed))
  return value, jacobian


def _distance_penalty(values: jax.Array, threshold: float) -> jax.Array:
  k = values.shape[1]
  differences = values[:, :, None, :] - values[:, None, :, :]
  distances = jnp.sqrt(jnp.sum(differences * differences, axis=-1) + 1e-8)
  distances = distances + jnp.eye(k, dtype=distances.dtype) * threshold
  return jnp.mean(1.0 - jnp.sign(distances - threshold))


def keypoint_distance_loss(kp_source: Keypoints, kp_driving: Keypoints,
                           threshold: float = 0.2) -> jax.Array:
  """The official keypoint-distance term, reproduced exactly.

  For the source and the driving keypoints separately: ``d_ij = sqrt(|k_i - k_j|^2 +
  1e-8) + threshold * [i == j]`` and ``mean_{B,K,K}(1 - sign(d_ij - threshold))``; the two
  are added. Each pair closer than ``threshold`` counts 2, the diagonal 0.

  ``sign`` has a zero derivative, so the term adds a value to the objective and no
  gradient: like the official term, it has no effect on training and is only logged.
  (This is the official behaviour, kept on purpose; see docs/training.md.)
  """
  return (_distance_penalty(at_least_float32(kp_source.value), threshold)
          + _distance_penalty(at_least_float32(kp_driving.value), threshold))
