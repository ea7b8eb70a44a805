"""Hourglass: widths, skip concatenation, the list of decoder outputs, size checks; the
normalisation layers' variance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import flax.linen as nn

from mcc_jax.models import vqgan_blocks
from mcc_jax.models.discriminator import PatchDiscriminator
from mcc_jax.models.hourglass import Hourglass, batch_norm


def test_decoder_outputs_concatenate_the_skips_and_the_last_is_the_default_output():
  model = Hourglass(block_expansion=4, max_features=12, num_blocks=3)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 24, 5))
  variables = model.init(jax.random.PRNGKey(1), x, train=False)
  kernels = {name: block["conv"]["kernel"].shape for name, block in variables["params"].items()}
  # Encoder widths 8, 12 (capped), 12; decoder outputs 12, 8, 4 plus the skips.
  assert kernels == {"down_0": (3, 3, 5, 8), "down_1": (3, 3, 8, 12), "down_2": (3, 3, 12, 12),
                     "up_0": (3, 3, 12, 12), "up_1": (3, 3, 24, 8), "up_2": (3, 3, 16, 4)}
  outputs = model.apply(variables, x, train=False, all_outputs=True)
  assert [o.shape for o in outputs] == [(2, 4, 6, 24), (2, 8, 12, 16), (2, 16, 24, 9)]
  last = model.apply(variables, x, train=False)
  np.testing.assert_array_equal(np.asarray(last), np.asarray(outputs[-1]))
  # The finest skip is the input itself, after the decoder's own channels.
  np.testing.assert_array_equal(np.asarray(last[..., 4:]), np.asarray(x))
  assert float(jnp.min(last[..., :4])) >= 0.0  # ReLU output.


@pytest.mark.parametrize("shape", [(1, 12, 16, 3), (1, 16, 4, 3)])
def test_rejects_sizes_that_do_not_halve_cleanly(shape):
  model = Hourglass(block_expansion=4, max_features=8, num_blocks=3)
  with pytest.raises(ValueError, match=r"num_blocks=3.*multiples of 8"):
    jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False),
                   jax.ShapeDtypeStruct(shape, jnp.float32))



def _two_pass_normalised(x, axes):
  x = np.asarray(x, np.float64)
  mean = x.mean(axis=axes, keepdims=True)
  return (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + 1e-5)


def _norm_modules(module, *args, **kwargs):
  """Every BatchNorm and GroupNorm that ``module.init`` calls."""
  found = []

  def record(next_fun, args_, kwargs_, context):
    if isinstance(context.module, (nn.BatchNorm, nn.GroupNorm)):
      found.append(context.module)
    return next_fun(*args_, **kwargs_)

  with nn.intercept_methods(record):
    module.init(jax.random.PRNGKey(0), *args, **kwargs)
  return found


def test_batch_norm_computes_the_variance_without_cancellation():
  """Features with a large mean and a small spread: E[x^2] - E[x]^2 loses every digit in
  float32, the two-pass variance PyTorch uses does not."""
  rng = np.random.default_rng(0)
  x = (300.0 + 0.05 * rng.normal(size=(4, 6, 6, 8))).astype(np.float32)
  norm = batch_norm(train=True, dtype=jnp.float32)
  variables = norm.init(jax.random.PRNGKey(0), x)
  y, _ = norm.apply(variables, x, mutable=["batch_stats"])
  # Two-pass: 2.5e-3 (the float32 rounding of x near 300, which another reduction order
  # can double); E[x^2] - E[x]^2: 56.
  np.testing.assert_allclose(y, _two_pass_normalised(x, (0, 1, 2)), atol=0.1)


def test_every_norm_of_the_discriminator_and_autoencoder_uses_the_two_pass_variance():
  disc = _norm_modules(PatchDiscriminator(ndf=8, num_layers=2),
                       np.zeros((2, 32, 32, 3), np.float32), train=True)
  blocks = _norm_modules(vqgan_blocks.ResBlock(features=64), np.zeros((1, 4, 4, 32), np.float32))
  assert len(disc) == 2 and len(blocks) == 2
  assert all(m.use_fast_variance is False for m in disc + blocks)


def test_batch_norm_running_statistics_follow_torch_momentum():
  """One training step moves the running statistics by PyTorch's momentum 0.1; the mean
  equals BatchNorm2d's, the variance differs only by PyTorch's unbiased n / (n - 1)."""
  rng = np.random.default_rng(1)
  x = (2.0 + 3.0 * rng.normal(size=(3, 5, 4, 6))).astype(np.float32)
  norm = batch_norm(train=True, dtype=jnp.float32)
  variables = norm.init(jax.random.PRNGKey(0), x)
  _, updates = norm.apply(variables, x, mutable=["batch_stats"])
  reference = torch.nn.BatchNorm2d(6).double().train()
  with torch.no_grad():
    reference(torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2))
  n = x.size // 6
  stats = updates["batch_stats"]
  np.testing.assert_allclose(stats["mean"], reference.running_mean.numpy(), rtol=1e-5)
  # running_var = 0.9 + 0.1 * var: PyTorch's var is unbiased, ours biased.
  torch_batch_var = (reference.running_var.numpy() - 0.9) / 0.1
  np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * torch_batch_var * (n - 1) / n, rtol=1e-5)
