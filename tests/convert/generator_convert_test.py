"""Every tensor of the official generator and discriminator maps once, with its shape.

The official state-dict layout (names and shapes at the paper configuration) is read
from ``official_state_dict_shapes.json``, written by ``tools/dump_official_shapes.py``
from the official code, so this runs without the official checkout. Numerical parity
with the official networks is checked by ``tests/parity_test.py``.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.configs import vox256
from mcc_jax.convert.generator import convert_discriminator, convert_generator
from mcc_jax.convert.state_dict import ConversionError, check_tree_matches
from mcc_jax.models import factory

SHAPES = json.loads((pathlib.Path(__file__).parent / "official_state_dict_shapes.json").read_text())


def _random_state(network):
  rng = np.random.default_rng(0)
  return {name: rng.normal(size=shape).astype(np.float32) if shape else np.float32(0)
          for name, shape in SHAPES[network].items()}


@pytest.fixture(scope="module")
def model_config():
  return vox256.get_config().model


def _generator_shapes(generator):
  s = generator.image_size
  f = generator.flow_size
  args = (jnp.zeros((1, s, s, 3)), jnp.zeros((1, f, f, 2)), jnp.zeros((1, f, f, 1)),
          jnp.zeros((1, f, f, generator.num_keypoints)), jnp.zeros((1, s, s, 3)))
  return jax.eval_shape(lambda: generator.init(jax.random.PRNGKey(0), *args, train=True))


def test_generator_state_dict_maps_exactly_once(model_config):
  generator = factory.build_generator(model_config)
  state = _random_state("generator")
  variables = convert_generator(state, generator)
  check_tree_matches(variables, _generator_shapes(generator), "generator")
  # Values land unchanged (up to layout): the packed attention projection is split.
  packed = state["app_block.0.self_attn.in_proj_weight"]
  attn = variables["params"]["appearance_compensation"]["layers_0"]["self_attn"]
  np.testing.assert_array_equal(attn["k_proj"]["kernel"], packed[256:512].T)
  np.testing.assert_array_equal(variables["params"]["encoder"]["conv_in"]["kernel"],
                                state["encoder.blocks.0.weight"].transpose(2, 3, 1, 0))


def test_data_parallel_prefix_is_accepted(model_config):
  generator = factory.build_generator(model_config)
  state = {f"module.{k}": v for k, v in _random_state("generator").items()}
  check_tree_matches(convert_generator(state, generator), _generator_shapes(generator))


def test_missing_and_extra_tensors_are_named(model_config):
  generator = factory.build_generator(model_config)
  state = _random_state("generator")
  missing = dict(state)
  del missing["refine.convo2.bias"]
  with pytest.raises(ConversionError, match="no tensor 'refine.convo2.bias'"):
    convert_generator(missing, generator)
  extra = dict(state, **{"extra_head.weight": np.zeros(3, np.float32)})
  with pytest.raises(ConversionError, match="not mapped: extra_head.weight"):
    convert_generator(extra, generator)


def test_a_checkpoint_of_another_variant_is_rejected(model_config):
  # An official (full) checkpoint does not fit the baseline generator: its codebook
  # tensors have nowhere to go.
  model_config = model_config.copy_and_resolve_references()
  model_config.variant = "baseline"
  with pytest.raises(ConversionError, match="not mapped: .*quantize_app.embedding.weight"):
    convert_generator(_random_state("generator"), factory.build_generator(model_config))


def test_discriminator_state_dict_maps_exactly_once(model_config):
  disc = factory.build_discriminator(model_config)
  variables = convert_discriminator(_random_state("discriminator"), disc.num_layers)
  expected = jax.eval_shape(lambda: disc.init(jax.random.PRNGKey(0), jnp.zeros((1, 256, 256, 3)),
                                              train=False))
  check_tree_matches(variables, expected, "discriminator")
