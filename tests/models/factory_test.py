"""Configurations: validation errors name the field; sizes follow from the image size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.configs import tiny, vox256
from mcc_jax.models import factory
from tests.models.model_testing import identity_grid, random_variables


def _generator_args(generator, batch=1):
  s, f = generator.image_size, generator.flow_size
  return (jnp.zeros((batch, s, s, 3)), jnp.asarray(np.broadcast_to(identity_grid(f), (batch, f, f, 2))),
          jnp.full((batch, f, f, 1), 0.9), jnp.zeros((batch, f, f, generator.num_keypoints)),
          jnp.zeros((batch, s, s, 3)))


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_paper_configuration_has_the_official_generator_size():
  generator = factory.build_generator(vox256.get_config().model)
  shapes = jax.eval_shape(lambda: generator.init(jax.random.PRNGKey(0),
                                                 *_generator_args(generator), train=True))
  assert _count(shapes) == 30_118_854
  # The paper's derived sizes fall out at 256x256.
  assert generator.flow_size == 64
  params = shapes["params"]
  assert params["motion_compensation"]["position_embedding"].shape == (1024, 32)
  assert params["appearance_compensation"]["position_embedding"].shape == (1024, 256)
  assert params["appearance_compensation"]["embeddings_3"]["kernel"].shape == (8 * 8 * 64, 256)


@pytest.mark.parametrize("size", [64, 128])
def test_tiny_generator_runs_at(size):
  config = tiny.get_config()
  config.image_size = size
  generator = factory.build_generator(config.model)
  args = _generator_args(generator)
  shapes = jax.eval_shape(lambda: generator.init(jax.random.PRNGKey(0), *args, train=True))
  out = generator.apply(random_variables(shapes), *args, train=False)
  assert out.image.shape == (1, size, size, 3)
  assert np.all(np.isfinite(np.asarray(out.image)))
  grid = size // 8
  assert shapes["params"]["appearance_compensation"]["position_embedding"].shape[0] == grid**2


def test_paper_generator_shapes_at_512():
  config = vox256.get_config()
  config.image_size = 512
  generator = factory.build_generator(config.model)
  args = _generator_args(generator)
  shapes = jax.eval_shape(lambda: generator.init(jax.random.PRNGKey(0), *args, train=True))
  out = jax.eval_shape(lambda v: generator.apply(v, *args, train=True), shapes)
  assert out.image.shape == out.low_resolution_image.shape == (1, 512, 512, 3)
  assert out.flows[-1].shape == (1, 128, 128, 2)
  assert shapes["params"]["motion_compensation"]["position_embedding"].shape == (64 * 64, 32)
  assert shapes["params"]["appearance_compensation"]["position_embedding"].shape == (64 * 64, 256)


def _set(config, path, value):
  node = config
  *parents, leaf = path.split(".")
  for name in parents:
    node = node[name]
  node[leaf] = value


@pytest.mark.parametrize("path,value,message", [
    ("model.variant", "mmc_mac", r"config.model.variant: expected one of"),
    ("model.code_allocation", "random", r"config.model.code_allocation: expected one of"),
    ("model.dtype", "float8", r"config.model.dtype: expected one of"),
    ("image_size", 260, r"config.model.image_size: 260 cannot be divided by the 4 scales"),
    ("model.generator.motion_codebook_size", 1022,
     r"config.model.generator.motion_codebook_size: 1022 codes cannot be split among 4 scales"),
    ("model.generator.appearance_codebook_size", 1023,
     r"config.model.generator.appearance_codebook_size: 1023 codes"),
    ("model.generator.num_heads", 7, r"config.model.generator.motion_code_dim: 32 is not divisible"),
    ("model.generator.nf", 40, r"config.model.generator.ch_mult: level 0 width"),
    ("model.generator.attention_downsample_factors", (3,),
     r"config.model.generator.attention_downsample_factors: 3 is not a power of two"),
    ("model.dense_motion.scale_factor", 0.3, r"config.model.dense_motion.scale_factor"),
])
def test_invalid_values_raise_an_error_naming_the_field(path, value, message):
  config = vox256.get_config()
  _set(config, path, value)
  with pytest.raises(factory.ConfigError, match=message):
    factory.validate_model_config(config.model)


def test_motion_estimator_fields_are_validated():
  config = vox256.get_config()
  config.image_size = 64  # the 5-block hourglasses cannot pool a 16x16 input 5 times
  factory.validate_generator_config(config.model)  # the generator itself is fine at 64
  with pytest.raises(factory.ConfigError, match=r"config.model.dense_motion.num_blocks"):
    factory.validate_model_config(config.model)


def test_shared_allocation_does_not_need_divisible_codebooks():
  config = vox256.get_config()
  config.model.code_allocation = "shared"
  config.model.generator.motion_codebook_size = 1000
  factory.validate_generator_config(config.model)


@pytest.mark.parametrize("variant,motion,appearance", [
    ("baseline", (), ()), ("smc", (0,), ()), ("mmc", (0, 1, 2, 3), ()),
    ("mmc_sac", (0, 1, 2, 3), (0,)), ("full", (0, 1, 2, 3), (0, 1, 2, 3))])
def test_variants_select_the_compensating_scales(variant, motion, appearance):
  assert factory.compensation_scales(variant, 4) == (motion, appearance)
