"""find_best_frame against FOMM's normalisation computed with scipy."""

import numpy as np
from scipy.spatial import ConvexHull

from mcc_jax import inference


def _fomm_normalise(points):
  points = points - points.mean(axis=0, keepdims=True)
  return points / np.sqrt(ConvexHull(points).volume)


def test_picks_the_frame_scipy_picks():
  rng = np.random.default_rng(0)
  for _ in range(20):
    source = rng.uniform(-1, 1, (10, 2))
    driving = source + rng.normal(0, 0.3, (15, 10, 2))
    # Position and size must not matter: move and scale every frame.
    driving = driving * rng.uniform(0.5, 2, (15, 1, 1)) + rng.uniform(-1, 1, (15, 1, 2))
    expected = np.argmin([np.sum((_fomm_normalise(d) - _fomm_normalise(source))**2)
                          for d in driving])
    assert inference.find_best_frame(source, driving) == expected


def test_an_exact_copy_is_found_whatever_its_placement():
  rng = np.random.default_rng(1)
  driving = rng.uniform(-1, 1, (12, 10, 2))
  source = driving[7] * 0.4 + 0.3
  assert inference.find_best_frame(source, driving) == 7
