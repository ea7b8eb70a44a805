"""A model checkpoint of the tiny configuration with random weights, for tests and examples.

Inference code reads checkpoints written by ``mcc-jax convert-official`` or by training;
tests need one in seconds, without training: :func:`write_tiny_checkpoint` initialises
the networks of ``configs/tiny.py`` (64x64, every part of the paper's model) with
jit-compiled ``init`` and saves them in the model-checkpoint format.
"""

from __future__ import annotations

import functools
import os
from typing import Sequence

import jax
import ml_collections

from mcc_jax.models.reenactment import init_variables


# The networks are static (Flax modules hash by configuration): one compilation per
# configuration and process, however many checkpoints are written.
_initialise = jax.jit(functools.partial(init_variables, train=True), static_argnums=(0, 1, 2))


def random_variables(model_config, seed: int = 0) -> dict:
  """Randomly initialised ``{'motion_estimator', 'generator'}`` variables of a config.

  The generator is initialised in training mode, so that it holds every parameter a
  training checkpoint holds (the motion-reconstruction decoders too).
  """
  from mcc_jax.models import factory  # pylint: disable=import-outside-toplevel

  key_motion, key_generator = jax.random.split(jax.random.PRNGKey(seed))
  return _initialise(factory.build_motion_estimator(model_config),
                     factory.build_generator(model_config), int(model_config.image_size),
                     key_motion, key_generator)


def write_tiny_checkpoint(directory: str | os.PathLike, *, seed: int = 0,
                          overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Writes a random-weight checkpoint of ``configs/tiny.py`` to ``directory``.

  Args:
    directory: the checkpoint directory to create.
    seed: initialisation seed.
    overrides: ``--config.x=y`` strings applied to the tiny configuration.

  Returns:
    The configuration saved with it.
  """

  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel
  from mcc_jax.checkpoints.model_files import save_model_checkpoint  # pylint: disable=import-outside-toplevel

  path = config_cli.shipped_config_path("tiny")
  config = config_cli.load_config(str(path), list(overrides))
  save_model_checkpoint(directory, random_variables(config.model, seed), config)
  return config
