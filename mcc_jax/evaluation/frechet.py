"""The Frechet distance between two Gaussians fitted to feature sets (FID's formula).

    d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))

pytorch-fid takes ``scipy.linalg.sqrtm(S_1 S_2)``, a general (Schur) square root of a
non-symmetric product. With fewer samples than feature dimensions (2048 for FID) the
covariances are singular and that root can come back with spurious imaginary parts or
non-finite values, which pytorch-fid patches by adding ``eps`` to the diagonals.

Only the trace of the root is needed, and ``S_1 S_2`` is similar to the symmetric
positive semi-definite ``M = S_1^(1/2) S_2 S_1^(1/2)`` (same eigenvalues), so

    tr((S_1 S_2)^(1/2)) = sum_i sqrt(lambda_i(M)),

computed here with two symmetric eigendecompositions in float64; eigenvalues that
rounding pushes below zero are clipped to zero. This is exact where ``sqrtm`` is, and
stays real and finite where it is not.

From features with fewer samples than dimensions there is a cheaper exact route: with
centred features ``A`` (N1, D) and ``B`` (N2, D), ``S_1 = A^T A / (N1 - 1)`` and
``S_2 = B^T B / (N2 - 1)``, and the square roots of the eigenvalues of ``S_1 S_2`` are
the singular values of ``A B^T / sqrt((N1 - 1)(N2 - 1))``, an N1 x N2 matrix.
:func:`features_distance` takes that route when both sets are smaller than D.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class GaussianStatistics(NamedTuple):
  """Mean and covariance of a feature set.

  Attributes:
    mean: (D,) float64.
    covariance: (D, D) float64, unbiased (``np.cov``'s ``ddof=1``, as pytorch-fid).
    count: number of samples they were estimated from.
  """

  mean: np.ndarray
  covariance: np.ndarray
  count: int


def gaussian_statistics(features: np.ndarray) -> GaussianStatistics:
  """Fits a Gaussian to features.

  Args:
    features: (N, D) with N >= 2.

  Returns:
    :class:`GaussianStatistics`.
  """
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or len(features) < 2:
    raise ValueError(f"gaussian_statistics: expected (N, D) features with N >= 2, got shape "
                     f"{features.shape}")
  return GaussianStatistics(mean=features.mean(axis=0),
                            covariance=np.cov(features, rowvar=False), count=len(features))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
  """Square root of a symmetric positive semi-definite matrix (negative eigenvalues,
  which only rounding produces, count as zero)."""
  matrix = (matrix + matrix.T) / 2.0
  values, vectors = np.linalg.eigh(matrix)
  return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma_1: np.ndarray, sigma_2: np.ndarray) -> float:
  """``tr((S_1 S_2)^(1/2))`` for symmetric positive semi-definite ``S_1``, ``S_2``.

  Args:
    sigma_1: (D, D).
    sigma_2: (D, D).

  Returns:
    The trace, a non-negative float.
  """
  root_1 = _psd_sqrt(np.asarray(sigma_1, np.float64))
  middle = root_1 @ np.asarray(sigma_2, np.float64) @ root_1
  values = np.linalg.eigvalsh((middle + middle.T) / 2.0)
  return float(np.sum(np.sqrt(np.clip(values, 0.0, None))))


def frechet_distance(mean_1: np.ndarray, sigma_1: np.ndarray, mean_2: np.ndarray,
                     sigma_2: np.ndarray) -> float:
  """Squared Frechet (2-Wasserstein) distance between N(mean_1, sigma_1) and N(mean_2, sigma_2).

  Args:
    mean_1: (D,).
    sigma_1: (D, D) covariance.
    mean_2: (D,).
    sigma_2: (D, D) covariance.

  Returns:
    The distance (what FID reports), >= 0 up to rounding.
  """
  mean_1, mean_2 = np.asarray(mean_1, np.float64), np.asarray(mean_2, np.float64)
  sigma_1, sigma_2 = np.asarray(sigma_1, np.float64), np.asarray(sigma_2, np.float64)
  dim = mean_1.shape[0]
  if mean_1.shape != (dim,) or mean_2.shape != (dim,) or sigma_1.shape != (dim, dim) or (
      sigma_2.shape != (dim, dim)):
    raise ValueError(f"frechet_distance: expected (D,) means and (D, D) covariances, got "
                     f"{mean_1.shape}, {sigma_1.shape}, {mean_2.shape}, {sigma_2.shape}")
  diff = mean_1 - mean_2
  return float(diff @ diff + np.trace(sigma_1) + np.trace(sigma_2)
               - 2.0 * trace_sqrt_product(sigma_1, sigma_2))


def features_distance(features_1: np.ndarray, features_2: np.ndarray) -> float:
  """Frechet distance of the Gaussians fitted to two feature sets.

  Args:
    features_1: (N1, D), N1 >= 2.
    features_2: (N2, D), N2 >= 2.

  Returns:
    The distance.
  """
  features_1 = np.asarray(features_1, np.float64)
  features_2 = np.asarray(features_2, np.float64)
  for features in (features_1, features_2):
    if features.ndim != 2 or len(features) < 2:
      raise ValueError(f"features_distance: expected (N, D) features with N >= 2, got shape "
                       f"{features.shape}")
  if features_1.shape[1] != features_2.shape[1]:
    raise ValueError(f"features_distance: feature sizes differ: {features_1.shape[1]} and "
                     f"{features_2.shape[1]}")
  dim = features_1.shape[1]
  if max(len(features_1), len(features_2)) >= dim:
    a, b = gaussian_statistics(features_1), gaussian_statistics(features_2)
    return frechet_distance(a.mean, a.covariance, b.mean, b.covariance)
  centred_1 = features_1 - features_1.mean(axis=0)
  centred_2 = features_2 - features_2.mean(axis=0)
  scale_1, scale_2 = len(features_1) - 1.0, len(features_2) - 1.0
  diff = features_1.mean(axis=0) - features_2.mean(axis=0)
  trace_1 = np.sum(centred_1**2) / scale_1
  trace_2 = np.sum(centred_2**2) / scale_2
  cross = centred_1 @ centred_2.T / np.sqrt(scale_1 * scale_2)
  trace_sqrt = float(np.sum(np.linalg.svd(cross, compute_uv=False)))
  return float(diff @ diff + trace_1 + trace_2 - 2.0 * trace_sqrt)
