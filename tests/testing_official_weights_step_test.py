"""Per-tensor gradient statistics of the training-step parity checks."""

import numpy as np

from mcc_jax.testing import official_weights_step


def test_tensor_statistics_are_per_leaf_norms_and_sums_independent_of_layout():
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(3, 3, 4, 8))                     # HWIO
  bias = rng.normal(size=(8,))
  paths, norms, sums = official_weights_step.tensor_statistics(
      {"conv": {"kernel": kernel, "bias": bias}})
  assert paths == ["['conv']['bias']", "['conv']['kernel']"]
  np.testing.assert_allclose(norms, [np.sqrt(np.sum(bias**2)), np.sqrt(np.sum(kernel**2))])
  np.testing.assert_allclose(sums, [bias.sum(), kernel.sum()])
  # PyTorch's OIHW layout of the same tensor gives the same statistics.
  _, norms_t, sums_t = official_weights_step.tensor_statistics(
      {"conv": {"kernel": kernel.transpose(3, 2, 0, 1), "bias": bias}})
  np.testing.assert_allclose(norms_t, norms)
  np.testing.assert_allclose(sums_t, sums)
  # A sign error shows in the sum, a wrong size in the norm.
  _, norms_n, sums_n = official_weights_step.tensor_statistics(
      {"conv": {"kernel": -kernel, "bias": 2 * bias}})
  assert sums_n[1] == -sums[1] and norms_n[0] == 2 * norms[0]
