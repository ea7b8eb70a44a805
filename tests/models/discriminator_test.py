"""PatchGAN discriminator: against PyTorch, shapes at several resolutions, batch
statistics, size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from mcc_jax.configs import tiny, vox256
from mcc_jax.models import factory
from mcc_jax.models.discriminator import PatchDiscriminator
from tests.models import torch_reference as ref
from tests.models.model_testing import random_variables


@pytest.mark.parametrize("train", [False, True])
def test_logits_match_the_torch_discriminator(train):
  """Our weights copied into the PyTorch PatchGAN: same logits with the running statistics
  (random, non-trivial) and with batch statistics, and the same running-mean update."""
  ndf, num_layers = 8, 3
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
  disc = PatchDiscriminator(ndf, num_layers)
  variables = jax.tree.map(np.asarray, disc.init(jax.random.PRNGKey(0), images, train=False))
  params = ref.randomise_norms(variables["params"], rng)
  stats = {name: {"mean": (0.3 * rng.normal(size=s["mean"].shape)).astype(np.float32),
                  "var": rng.uniform(0.5, 1.5, s["var"].shape).astype(np.float32)}
           for name, s in variables["batch_stats"].items()}
  reference = ref.patch_discriminator(ndf, num_layers).double()
  convs = [m for m in reference if isinstance(m, torch.nn.Conv2d)]
  norms = [m for m in reference if isinstance(m, torch.nn.BatchNorm2d)]
  with torch.no_grad():
    for i, conv in enumerate(convs):
      conv.weight.copy_(ref.tensor(params[f"conv_{i}"]["kernel"]).permute(3, 2, 0, 1))
      if conv.bias is not None:
        conv.bias.copy_(ref.tensor(params[f"conv_{i}"]["bias"]))
    for i, norm in enumerate(norms, start=1):
      norm.weight.copy_(ref.tensor(params[f"norm_{i}"]["scale"]))
      norm.bias.copy_(ref.tensor(params[f"norm_{i}"]["bias"]))
      norm.running_mean.copy_(ref.tensor(stats[f"norm_{i}"]["mean"]))
      norm.running_var.copy_(ref.tensor(stats[f"norm_{i}"]["var"]))
  reference.train(train)
  with torch.no_grad():
    expected = ref.nhwc(reference(ref.nchw(images)))
  variables = {"params": params, "batch_stats": stats}
  if train:
    logits, updates = disc.apply(variables, images, train=True, mutable=["batch_stats"])
    # PyTorch folds the unbiased batch variance into the running one, Flax the biased
    # (see hourglass.py); the running means must agree.
    for i, norm in enumerate(norms, start=1):
      np.testing.assert_allclose(updates["batch_stats"][f"norm_{i}"]["mean"],
                                 norm.running_mean.numpy(), rtol=1e-5, atol=1e-6)
  else:
    logits = disc.apply(variables, images, train=False)
  assert logits.shape == expected.shape == (2, 6, 6, 1)
  assert ref.relative_error(logits, expected) < 1e-5


@pytest.mark.parametrize("size", [64, 128])
def test_runs_at_several_resolutions(size):
  config = tiny.get_config()
  config.image_size = size
  disc = factory.build_discriminator(config.model)
  images = jax.random.uniform(jax.random.PRNGKey(0), (2, size, size, 3), minval=-1, maxval=1)
  variables = disc.init(jax.random.PRNGKey(1), images, train=False)
  logits, updates = disc.apply(variables, images, train=True, mutable=["batch_stats"])
  side = size // 2**config.model.discriminator.num_layers - 2
  assert logits.shape == (2, side, side, 1)
  # Training mode moves the running statistics towards the batch statistics.
  before = variables["batch_stats"]["norm_1"]["mean"]
  assert not np.allclose(np.asarray(updates["batch_stats"]["norm_1"]["mean"]), np.asarray(before))
  eval_logits = disc.apply(variables, images, train=False)
  assert not np.allclose(np.asarray(eval_logits), np.asarray(logits))


def test_paper_configuration_size_and_512_shapes():
  config = vox256.get_config()
  disc = factory.build_discriminator(config.model)
  shapes = jax.eval_shape(lambda: disc.init(jax.random.PRNGKey(0), jnp.zeros((1, 256, 256, 3)),
                                            train=False))
  assert sum(np.prod(x.shape) for x in jax.tree.leaves(shapes["params"])) == 6_960_961
  config.image_size = 512
  disc = factory.build_discriminator(config.model)
  out = jax.eval_shape(lambda v: disc.apply(v, jnp.zeros((1, 512, 512, 3)), train=False),
                       random_variables(shapes))
  assert out.shape == (1, 30, 30, 1)
