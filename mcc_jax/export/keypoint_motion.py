"""Relative keypoint motion in numpy, for runtimes without JAX.

The same computation as :func:`mcc_jax.ops.keypoints.transfer_relative_motion` (FOMM's
``normalize_kp``), between the keypoints graph and the generator graph of an export:

* absolute motion: the driving keypoints as they are;
* relative motion: ``kp_source + scale * (kp_driving - kp_anchor)``, and jacobians
  ``J_driving J_anchor^-1 J_source``; with ``adapt_movement_scale``, ``scale`` is
  ``sqrt(area(hull(kp_source)) / area(hull(kp_anchor)))`` per batch element, else 1.

Keypoints are any ``(value, jacobian)`` named tuple (value (B, K, 2), jacobian
(B, K, 2, 2) or None); the result has the type of ``kp_driving``. Hull areas come from
Andrew's monotone chain in float64 (the JAX version tests every point pair in float32:
same hulls, areas within float32 rounding).
"""

from __future__ import annotations

import numpy as np


def _hull_area(points: np.ndarray) -> float:
  """Area of the convex hull of (P, 2) points (0 when they are collinear)."""
  unique = np.unique(points.astype(np.float64), axis=0)  # Sorted by x, then y.
  if len(unique) < 3:
    return 0.0

  def cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

  def half(ordered):
    chain = []
    for point in ordered:
      while len(chain) >= 2 and cross(chain[-2], chain[-1], point) <= 0:
        chain.pop()
      chain.append(point)
    return chain[:-1]

  hull = np.asarray(half(unique) + half(unique[::-1]))
  if len(hull) < 3:
    return 0.0
  x, y = hull[:, 0], hull[:, 1]
  return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def convex_hull_area(points: np.ndarray) -> np.ndarray:
  """Areas of the convex hulls of point sets.

  Args:
    points: (..., P, 2) points.

  Returns:
    (...) float32 areas (0 for degenerate sets).
  """
  points = np.asarray(points)
  flat = points.reshape((-1,) + points.shape[-2:])
  areas = np.array([_hull_area(p) for p in flat], np.float64)
  return areas.reshape(points.shape[:-2]).astype(np.float32)


def transfer_relative_motion(kp_source, kp_driving, kp_anchor, *,
                             use_relative_movement: bool = True,
                             use_relative_jacobian: bool = True,
                             adapt_movement_scale: bool = False):
  """The keypoints to drive the source with (see the module docstring).

  Args:
    kp_source: keypoints of the source image, batch B (or 1, broadcast).
    kp_driving: keypoints of the driving frames, batch B.
    kp_anchor: keypoints of the anchor driving frame, batch B (or 1, broadcast).
    use_relative_movement: move relatively; when False, ``kp_driving`` is returned.
    use_relative_jacobian: also transfer jacobians relatively (needs jacobians on all
      three keypoint sets).
    adapt_movement_scale: scale displacements by the ratio of the hulls' sizes.

  Returns:
    Keypoints of the type of ``kp_driving``, float32.

  Raises:
    ValueError: relative jacobians asked for without jacobians on every set.
  """
  if not use_relative_movement:
    return kp_driving
  source = np.asarray(kp_source.value, np.float32)
  driving = np.asarray(kp_driving.value, np.float32)
  anchor = np.asarray(kp_anchor.value, np.float32)
  if adapt_movement_scale:
    with np.errstate(divide="ignore", invalid="ignore"):
      scale = np.sqrt(convex_hull_area(source) / convex_hull_area(anchor))[:, None, None]
  else:
    scale = np.float32(1.0)
  value = ((driving - anchor) * scale + source).astype(np.float32)
  jacobian = kp_driving.jacobian
  if use_relative_jacobian and kp_driving.jacobian is not None:
    if kp_source.jacobian is None or kp_anchor.jacobian is None:
      raise ValueError("use_relative_jacobian needs jacobians on all three keypoint sets.")
    change = np.matmul(np.asarray(kp_driving.jacobian, np.float32),
                       np.linalg.inv(np.asarray(kp_anchor.jacobian, np.float32)))
    jacobian = np.matmul(change, np.asarray(kp_source.jacobian, np.float32)).astype(np.float32)
  return type(kp_driving)(value, jacobian)
