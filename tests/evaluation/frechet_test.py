"""The Frechet distance against pytorch-fid's formula with scipy.linalg.sqrtm."""

import numpy as np
import pytest
from scipy import linalg

from mcc_jax.evaluation import frechet


def _scipy_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
  """pytorch-fid's calculate_frechet_distance (fid_score.py), written out here."""
  diff = mu1 - mu2
  covmean = linalg.sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  covmean = covmean.real
  return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def _features(seed, count, dim):
  rng = np.random.default_rng(seed)
  mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
  return rng.normal(size=(count, dim)) @ mixing + rng.normal(size=dim)


@pytest.mark.parametrize("count", [50, 9])  # more and fewer samples than dimensions
def test_matches_scipy_sqrtm(count):
  a, b = _features(0, count, 16), _features(1, count + 3, 16)
  stats_a, stats_b = frechet.gaussian_statistics(a), frechet.gaussian_statistics(b)
  expected = _scipy_frechet(stats_a.mean, stats_a.covariance, stats_b.mean, stats_b.covariance)
  got = frechet.frechet_distance(stats_a.mean, stats_a.covariance, stats_b.mean,
                                 stats_b.covariance)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  # The sample-space route (taken when both sets are smaller than the dimension).
  np.testing.assert_allclose(frechet.features_distance(a, b), expected, rtol=1e-6)


def test_identical_sets_are_zero_and_shift_adds_squared_norm():
  a = _features(2, 40, 8)
  assert abs(frechet.features_distance(a, a)) < 1e-8
  shift = np.arange(8.0)
  np.testing.assert_allclose(frechet.features_distance(a, a + shift), shift @ shift, rtol=1e-8)


def test_rejects_bad_shapes():
  with pytest.raises(ValueError, match="N >= 2"):
    frechet.gaussian_statistics(np.zeros((1, 4)))
  with pytest.raises(ValueError, match="feature sizes differ"):
    frechet.features_distance(np.zeros((3, 4)), np.zeros((3, 5)))
