"""Keypoint motion in the First Order Motion Model (FOMM) formulation.

Keypoints live on the normalised [-1, 1] grid of :func:`mcc_jax.ops.warp.coordinate_grid`
as ``(x, y)`` pairs; each may carry a 2x2 jacobian describing the local affine motion
around it. This module turns keypoints into gaussian heatmaps, into the sparse motions
of FOMM Eq. 4 (a first-order Taylor expansion around every keypoint, plus an identity
"background" motion), and transfers motion relatively for inference.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from mcc_jax.ops.warp import coordinate_grid

# 2x2 products are cheap; full float32 keeps them exact on TPU/GPU as well.
_EXACT = jax.lax.Precision.HIGHEST


class Keypoints(NamedTuple):
  """Keypoints with optional local jacobians.

  Attributes:
    value: (B, K, 2) positions ``(x, y)`` in [-1, 1].
    jacobian: (B, K, 2, 2) local jacobians, or None.
  """

  value: jax.Array
  jacobian: Optional[jax.Array] = None


def kp_to_gaussian(value: jax.Array, spatial_size: tuple[int, int],
                   kp_variance: float) -> jax.Array:
  """Renders each keypoint as an unnormalised isotropic gaussian.

  Args:
    value: (B, K, 2) keypoint positions in normalised coordinates.
    spatial_size: (h, w) of the heatmaps.
    kp_variance: variance of the gaussian in normalised units (FOMM uses 0.01).

  Returns:
    (B, h, w, K) heatmaps ``exp(-|p - kp|^2 / (2 kp_variance))``, 1 at the keypoint.
  """
  h, w = spatial_size
  grid = coordinate_grid(h, w, jnp.promote_types(value.dtype, jnp.float32))
  diff = grid[None, :, :, None, :] - value[:, None, None, :, :]
  return jnp.exp(-0.5 * jnp.sum(diff**2, axis=-1) / kp_variance).astype(value.dtype)


def heatmap_difference(kp_source: jax.Array, kp_driving: jax.Array,
                       spatial_size: tuple[int, int], kp_variance: float) -> jax.Array:
  """Driving minus source gaussians, with a leading all-zero background channel.

  Args:
    kp_source: (B, K, 2) source keypoints.
    kp_driving: (B, K, 2) driving keypoints.
    spatial_size: (h, w).
    kp_variance: gaussian variance.

  Returns:
    (B, h, w, K + 1) heatmaps; channel 0 is the background (zeros).
  """
  diff = (kp_to_gaussian(kp_driving, spatial_size, kp_variance)
          - kp_to_gaussian(kp_source, spatial_size, kp_variance))
  zeros = jnp.zeros(diff.shape[:-1] + (1,), diff.dtype)
  return jnp.concatenate([zeros, diff], axis=-1)


def sparse_motions(kp_source: Keypoints, kp_driving: Keypoints,
                   spatial_size: tuple[int, int]) -> jax.Array:
  """FOMM Eq. 4: for every driving-frame position, where to read the source per keypoint.

  ``T_k(z) = kp_s,k + J_s,k J_d,k^-1 (z - kp_d,k)`` (without jacobians: a translation
  ``z - kp_d,k + kp_s,k``), plus the identity as motion 0 (the background).

  Args:
    kp_source: source keypoints (jacobians optional).
    kp_driving: driving keypoints (jacobians used only when both carry them).
    spatial_size: (h, w) of the motion fields.

  Returns:
    (B, K + 1, h, w, 2) sampling grids in normalised coordinates.
  """
  h, w = spatial_size
  value_s, value_d = kp_source.value, kp_driving.value
  b, k, _ = value_s.shape
  dtype = jnp.promote_types(value_s.dtype, jnp.float32)
  identity = coordinate_grid(h, w, dtype)
  relative = identity[None, None] - value_d[:, :, None, None, :]
  if kp_source.jacobian is not None and kp_driving.jacobian is not None:
    jac = jnp.matmul(kp_source.jacobian, jnp.linalg.inv(kp_driving.jacobian), precision=_EXACT)
    relative = jnp.einsum("bkij,bkhwj->bkhwi", jac, relative, precision=_EXACT)
  driving_to_source = relative + value_s[:, :, None, None, :]
  background = jnp.broadcast_to(identity[None, None], (b, 1, h, w, 2))
  return jnp.concatenate([background, driving_to_source.astype(dtype)], axis=1)


def convex_hull_area(points: jax.Array) -> jax.Array:
  """Area of the convex hull of a small 2-D point set; jit-able, no host round trip.

  An ordered pair (i, j) is a counter-clockwise hull edge when no point lies strictly to
  its right and no collinear point lies strictly between its ends; the shoelace sum
  over those edges is the hull area. Duplicate points count once. O(P^3), meant for
  keypoint sets (P ~ 10-50).

  Args:
    points: (..., P, 2) points.

  Returns:
    (...) areas (0 for degenerate sets).
  """
  p = points.astype(jnp.promote_types(points.dtype, jnp.float32))
  n = p.shape[-2]
  same = jnp.all(p[..., :, None, :] == p[..., None, :, :], axis=-1)  # (..., P, P)
  earlier = jnp.tril(jnp.ones((n, n), bool), k=-1)
  unique = ~jnp.any(same & earlier, axis=-1)  # (..., P)

  pi = p[..., :, None, None, :]
  pj = p[..., None, :, None, :]
  pk = p[..., None, None, :, :]
  edge = pj - pi
  to_k = pk - pi
  cross = edge[..., 0] * to_k[..., 1] - edge[..., 1] * to_k[..., 0]  # (..., P, P, P)
  dot = jnp.sum(edge * to_k, axis=-1)
  length2 = jnp.sum(edge * edge, axis=-1)
  # Collinearity up to rounding, so that fused multiply-adds cannot flip a point that
  # lies on a hull edge to its right side.
  on_line = jnp.abs(cross) <= 1e-6 * (length2 + jnp.sum(to_k * to_k, axis=-1))
  between = on_line & (dot > 0) & (dot < length2)
  # The edge's own end points are skipped explicitly: with fused multiply-adds their
  # cross product need not round to exactly zero.
  eye = jnp.eye(n, dtype=bool)
  endpoint = eye[:, None, :] | eye[None, :, :]  # (P_i, P_j, P_k)
  k_considered = unique[..., None, None, :] & ~endpoint
  no_right = jnp.all((cross >= 0) | on_line | ~k_considered, axis=-1)
  none_between = ~jnp.any(between & k_considered, axis=-1)
  is_edge = (no_right & none_between & ~same & unique[..., :, None] & unique[..., None, :])
  shoelace = p[..., :, None, 0] * p[..., None, :, 1] - p[..., :, None, 1] * p[..., None, :, 0]
  return 0.5 * jnp.sum(jnp.where(is_edge, shoelace, 0.0), axis=(-2, -1))


def transfer_relative_motion(kp_source: Keypoints,
                             kp_driving: Keypoints,
                             kp_driving_initial: Keypoints,
                             *,
                             use_relative_movement: bool = True,
                             use_relative_jacobian: bool = True,
                             adapt_movement_scale: bool = False) -> Keypoints:
  """FOMM's relative motion transfer for animating a source with another face's motion.

  With relative movement the new keypoints are the source keypoints moved by the
  driving displacement since the first driving frame:
  ``kp_s + scale * (kp_d - kp_d,initial)``, and (optionally) the jacobians
  ``J_d J_d,initial^-1 J_s``. ``adapt_movement_scale`` sets ``scale`` to
  ``sqrt(area(hull(kp_s)) / area(hull(kp_d,initial)))``, computed per batch element
  (the official code uses the first element's ratio for the whole batch; the two agree
  for batch size 1).

  Args:
    kp_source: keypoints of the source image.
    kp_driving: keypoints of the current driving frame.
    kp_driving_initial: keypoints of the first driving frame.
    use_relative_movement: move relatively; when False, ``kp_driving`` is returned.
    use_relative_jacobian: also transfer jacobians relatively (needs jacobians).
    adapt_movement_scale: scale displacements by the ratio of hull sizes.

  Returns:
    Keypoints to drive the source with.
  """
  if not use_relative_movement:
    return kp_driving
  if adapt_movement_scale:
    scale = jnp.sqrt(convex_hull_area(kp_source.value)
                     / convex_hull_area(kp_driving_initial.value))[:, None, None]
  else:
    scale = 1.0
  value = (kp_driving.value - kp_driving_initial.value) * scale + kp_source.value
  jacobian = kp_driving.jacobian
  if use_relative_jacobian and kp_driving.jacobian is not None:
    if kp_source.jacobian is None or kp_driving_initial.jacobian is None:
      raise ValueError("use_relative_jacobian needs jacobians on all three keypoint sets.")
    change = jnp.matmul(kp_driving.jacobian, jnp.linalg.inv(kp_driving_initial.jacobian),
                        precision=_EXACT)
    jacobian = jnp.matmul(change, kp_source.jacobian, precision=_EXACT)
  return Keypoints(value=value, jacobian=jacobian)
