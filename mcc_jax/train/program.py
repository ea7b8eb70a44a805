"""The compiled programs of a run: state creation, restore, the two step variants.

A :class:`TrainingProgram` is everything jitted for one configuration on one mesh. A
:class:`CompiledPrograms` holds the program of the last run it served, so that a
notebook or a test that trains again with the same model, objective and mesh reuses the
compilation; the training loop owns one (a fresh one per run unless the caller passes
one in).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from mcc_jax.train import host_memory
from mcc_jax.train import sharding
from mcc_jax.train import step as train_step_lib
from mcc_jax.train.optimizers import make_optimizers


class TrainingProgram:
  """The jitted pieces of a run on one mesh: state creation, restore and the two steps.

  Args:
    config: the full configuration.
    mesh: the device mesh (see :mod:`mcc_jax.train.sharding`).
    perceptual: the loss's perceptual network (``losses.load_perceptual_network``).
  """

  def __init__(self, config: ml_collections.ConfigDict, mesh, perceptual):
    self.config = config
    self.mesh = mesh
    self.models = train_step_lib.build_models(config)
    optimizers = make_optimizers(config.optimizer, config.losses.discriminator_start_step)
    size = config.model.image_size
    self._create = functools.partial(
        train_step_lib.create_train_state, config=config, models=self.models,
        optimizers=optimizers, batch_shape=(config.batch_size, size, size, 3))
    self.abstract_state = jax.eval_shape(self._create, jax.random.PRNGKey(0))
    self.state_sharding = sharding.state_shardings(self.abstract_state, mesh,
                                                   config.mesh.min_sharded_size)
    self.replicated = sharding.replicated(mesh)
    self.batch_sharding = sharding.batch_sharding(mesh)
    self.perceptual_params = jax.device_put(perceptual.params, self.replicated)

    def jitted_step(adversarial: bool):
      fn = functools.partial(train_step_lib.train_step, models=self.models,
                             optimizers=optimizers, features=perceptual, config=config,
                             adversarial=adversarial)
      return jax.jit(fn, in_shardings=(self.state_sharding, self.batch_sharding,
                                        self.replicated),
                     out_shardings=(self.state_sharding, self.replicated), donate_argnums=(0,))

    self._steps = {False: jitted_step(False), True: jitted_step(True)}
    self._compiled: dict[bool, Any] = {}
    self.discriminator_start = int(config.losses.discriminator_start_step)

  def init_state(self, rng: jax.Array):
    """A new state, created directly in its shardings."""
    return jax.jit(self._create, out_shardings=self.state_sharding)(rng)

  def restore_target(self):
    """The abstract state with this mesh's shardings, for checkpoint restores."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        self.abstract_state, self.state_sharding)

  def global_batch(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This host's ``{'source', 'driving'}`` as global arrays split over the mesh."""
    import data_pipelines  # pylint: disable=import-outside-toplevel
    return data_pipelines.to_global_batch({k: local[k] for k in ("source", "driving")},
                                          self.mesh, sharding.BATCH_AXES)

  def step(self, state, batch: dict[str, jax.Array], completed_steps: int):
    """One training step; returns (state, metrics).

    Args:
      state: the state after ``completed_steps`` steps (the host tracks the count, so
        that choosing the step variant needs no device round trip).
      batch: a global batch.
      completed_steps: ``state.step``; this step is the official iteration
        ``completed_steps + 1``. The discriminator takes part once that number passes
        ``losses.discriminator_start_step`` (5001 in vox256: from iteration 5002 on).
    """
    adversarial = completed_steps + 1 > self.discriminator_start
    if adversarial not in self._compiled:
      self._compiled[adversarial] = self._steps[adversarial].lower(
          state, batch, self.perceptual_params).compile()
      # The compiler's freed memory would otherwise stay resident under the step's own.
      host_memory.release_freed_host_memory()
      if jax.process_count() > 1:
        # Processes finish compiling at different times; the first collective must not
        # wait for a slower one past the collectives' set-up deadline.
        multihost_utils.sync_global_devices(f"compiled the training step ({adversarial})")
    return self._compiled[adversarial](state, batch, self.perceptual_params)


# Everything that shapes the compiled step; other fields (steps, intervals, data) may
# differ between runs that share a program.
_STEP_FIELDS = ("model", "losses", "optimizer", "batch_size", "seed")


class CompiledPrograms:
  """Keeps the :class:`TrainingProgram` of the last run, for the next run to reuse.

  Only one program is kept: each holds compiled executables and the perceptual
  network's weights (gigabytes at 256x256).
  """

  def __init__(self):
    self._key: tuple | None = None
    self._program: TrainingProgram | None = None

  def get(self, config: ml_collections.ConfigDict, mesh, perceptual) -> TrainingProgram:
    """The program of ``config`` on ``mesh``: the kept one if they match, else a new one."""
    fields = {name: config[name] for name in _STEP_FIELDS}
    key = (ml_collections.ConfigDict(fields).to_json_best_effort(sort_keys=True),
           tuple(mesh.shape.items()), tuple(d.id for d in mesh.devices.flat))
    if key != self._key:
      self.clear()
      self._program = TrainingProgram(config, mesh, perceptual)
      self._key = key
    return self._program

  def clear(self) -> None:
    """Drops the kept program (and its compiled executables)."""
    self._key, self._program = None, None
