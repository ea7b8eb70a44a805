"""PatchGAN discriminator: shapes at several resolutions, batch statistics, size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny, vox256
from mcc_jax.models import factory
from tests.models.model_testing import random_variables


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
