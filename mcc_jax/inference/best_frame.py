"""The driving frame whose face is posed most like the source's.

Relative motion moves the source's keypoints by the driving keypoints' displacement
from an anchor frame. Anchoring at the driving frame that looks most like the source
(instead of the first frame) keeps the transferred motion small where it matters, as
FOMM's demo does with ``--find_best_frame``.
"""

from __future__ import annotations

import numpy as np

from mcc_jax.ops.keypoints import convex_hull_area


def normalise_shape(points: np.ndarray) -> np.ndarray:
  """Points centred on their mean and divided by the square root of their hull's area,
  so that position and size do not count, only the shape.

  Args:
    points: (..., P, 2).

  Returns:
    (..., P, 2) float64.
  """
  points = np.asarray(points, np.float64)
  centred = points - points.mean(axis=-2, keepdims=True)
  area = np.asarray(convex_hull_area(np.asarray(centred, np.float32)), np.float64)
  return centred / np.sqrt(np.maximum(area, 1e-12))[..., None, None]


def find_best_frame(source_points: np.ndarray, driving_points: np.ndarray) -> int:
  """Index of the driving frame whose normalised points are closest to the source's.

  The distance is the sum of squared differences of the normalised points (FOMM's
  demo measures it on face-alignment's 68 landmarks; here any point set serves, e.g.
  the model's own keypoints, which need no further model).

  Args:
    source_points: (P, 2) points of the source image.
    driving_points: (T, P, 2) points of each driving frame.

  Returns:
    The index in [0, T) of the best-aligned frame (the first one on ties).
  """
  source_points = np.asarray(source_points)
  driving_points = np.asarray(driving_points)
  if driving_points.ndim != 3 or driving_points.shape[1:] != source_points.shape:
    raise ValueError(f"find_best_frame: expected (P, 2) source and (T, P, 2) driving points, "
                     f"got {source_points.shape} and {driving_points.shape}")
  distance = np.sum((normalise_shape(driving_points) - normalise_shape(source_points)) ** 2,
                    axis=(1, 2))
  return int(np.argmin(distance))
