"""BatchNorm statistics per group of examples (model.batch_norm_group_size)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.models.discriminator import PatchDiscriminator
from mcc_jax.models import batch_groups


class _Norm(nn.Module):
  """One BatchNorm with torch's BatchNorm2d settings, as in the hourglass."""

  @nn.compact
  def __call__(self, x, *, train):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)


def _numpy_group_norm(x, group_size):
  groups = x.reshape(-1, group_size, *x.shape[1:]).astype(np.float64)
  mean = groups.mean(axis=(1, 2, 3), keepdims=True)
  var = groups.var(axis=(1, 2, 3), keepdims=True)
  out = ((groups - mean) / np.sqrt(var + 1e-5)).reshape(x.shape)
  return out, mean.reshape(-1, x.shape[-1]), var.reshape(-1, x.shape[-1])


@pytest.mark.parametrize("group_size", [2, 4])
def test_each_group_is_normalised_with_its_own_statistics(group_size):
  rng = np.random.default_rng(0)
  # Groups with very different statistics, so that pooling them would be visible.
  x = (rng.normal(size=(8, 5, 5, 3)) * np.arange(1, 9)[:, None, None, None]
       + np.arange(8)[:, None, None, None]).astype(np.float32)
  module = _Norm()
  variables = module.init(jax.random.PRNGKey(0), x, train=False)
  out, stats = batch_groups.grouped_apply(module, variables, x, group_size=group_size,
                                          train=True)
  expected, mean, var = _numpy_group_norm(x, group_size)
  np.testing.assert_allclose(out, expected, atol=2e-5)
  # Running statistics: each group's update (momentum 0.1 from mean 0 / var 1), averaged.
  np.testing.assert_allclose(stats["BatchNorm_0"]["mean"], (0.1 * mean).mean(0), rtol=1e-5)
  np.testing.assert_allclose(stats["BatchNorm_0"]["var"], (0.9 + 0.1 * var).mean(0), rtol=1e-5)


def test_group_size_zero_pools_the_whole_batch():
  x = np.random.default_rng(1).normal(size=(4, 3, 3, 2)).astype(np.float32)
  module = _Norm()
  variables = module.init(jax.random.PRNGKey(0), x, train=False)
  out, _ = batch_groups.grouped_apply(module, variables, x, group_size=0, train=True)
  np.testing.assert_allclose(out, _numpy_group_norm(x, 4)[0], atol=2e-5)


def test_discriminator_groups_equal_separate_calls():
  # A real BatchNorm network: groups of 2 give what two separate batches of 2 give.
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 32, 32, 3), minval=-1, maxval=1)
  disc = PatchDiscriminator(ndf=8, num_layers=2)
  variables = disc.init(jax.random.PRNGKey(0), x, train=False)
  grouped, _ = batch_groups.grouped_apply(disc, variables, x, group_size=2, train=True)
  first, _ = disc.apply(variables, x[:2], train=True, mutable=["batch_stats"])
  second, _ = disc.apply(variables, x[2:], train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(grouped, jnp.concatenate([first, second]), atol=1e-5)
  pooled, _ = disc.apply(variables, x, train=True, mutable=["batch_stats"])
  assert np.abs(np.asarray(pooled) - np.asarray(grouped)).max() > 1e-3


def test_a_group_size_that_does_not_divide_the_batch_is_named():
  with pytest.raises(ValueError, match="batch_norm_group_size=3 does not divide"):
    batch_groups.check_group_size(8, 3)
