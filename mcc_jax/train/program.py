"""The compiled programs of a run: state creation, restore, the two step variants.

A :class:`TrainingProgram` is everything jitted for one configuration on one mesh. A
:class:`CompiledPrograms` holds the program of the last run it served, so that a
notebook or a test that trains again with the same model, objective and mesh reuses the
compilation; the training loop owns one (a fresh one per run unless the caller passes
one in).
"""

from __future__ import annotations

import functools
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from mcc_jax import data_pipelines
from mcc_jax.train import batch_input
from mcc_jax.train import host_memory
from mcc_jax.train import in_training_eval
from mcc_jax.train import sharding
from mcc_jax.train import step as train_step_lib
from mcc_jax.train import summaries
from mcc_jax.train.optimizers import make_optimizers


# Set in the metrics of a step whose loss or gradient norms were not finite: its update
# was not applied (the state after it is the state before it).
SKIPPED = "skipped_non_finite"


def keep_if_finite(state, new_state, metrics: dict[str, jax.Array]):
  """The step's result, or the state before it when any metric is NaN or infinite.

  Decided on the device, without a transfer to the host: the parameters, BatchNorm
  statistics, EMA and optimiser states stay as they were; the step counter and the
  random key move on. ``metrics[SKIPPED]`` is 1.0 for such a step, else 0.0; the loop
  reads it at its next log step or save and stops there, naming the step and the terms
  (:mod:`mcc_jax.train.step_metrics`), so no checkpoint holds anything after it.

  Args:
    state: the state before the step.
    new_state: the state the step computed.
    metrics: the step's metrics (scalars).

  Returns:
    (state to keep, metrics with ``SKIPPED`` added).
  """
  finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(value)) for value in metrics.values()]))
  # One conditional over the whole state, not a select per array: XLA fuses the scalar
  # `finite` (every metric's is-finite and its arithmetic) into each select's fusion, so a
  # select per parameter tensor tripled the step's compiled program (tiny config, one
  # device: 510k HLO lines and 86 s to compile with selects; 169k and 53 s with the
  # conditional).
  kept = jax.lax.cond(finite, lambda: new_state, lambda: state)
  kept = kept.replace(step=new_state.step, rng=new_state.rng)
  return kept, dict(metrics, **{SKIPPED: jnp.where(finite, 0.0, 1.0).astype(jnp.float32)})


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

    value_range = tuple(config.datasets.value_range)

    def jitted_step(adversarial: bool):
      step = functools.partial(train_step_lib.train_step, models=self.models,
                               optimizers=optimizers, features=perceptual, config=config,
                               adversarial=adversarial)

      def guarded_step(state, batch, features_params):
        new_state, metrics = step(state, batch_input.model_batch(batch, value_range),
                                  features_params)
        return keep_if_finite(state, new_state, metrics)

      return jax.jit(guarded_step, in_shardings=(self.state_sharding, self.batch_sharding,
                                                 self.replicated),
                     out_shardings=(self.state_sharding, self.replicated), donate_argnums=(0,))

    self._steps = {False: jitted_step(False), True: jitted_step(True)}
    reconstruction_sums = in_training_eval.make_eval_step(
        summaries.reconstruct_fn(self.models))
    # No input shardings: the variables arrive laid out as the state is (replicated or
    # split over fsdp), the batches over the batch axes.
    self._eval_step = jax.jit(
        lambda variables, batch: reconstruction_sums(
            variables, batch_input.model_batch(batch, value_range)),
        out_shardings=self.replicated)
    self._compiled: dict[tuple[bool, str], Any] = {}
    self.discriminator_start = int(config.losses.discriminator_start_step)

  def init_state(self, rng: jax.Array):
    """A new state, created directly in its shardings."""
    return jax.jit(self._create, out_shardings=self.state_sharding)(rng)

  def restore_target(self):
    """The abstract state with this mesh's shardings, for checkpoint restores."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        self.abstract_state, self.state_sharding)

  def global_batch(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This host's ``{'source', 'driving'}`` (uint8, as the pipeline yields them) as
    global arrays split over the mesh."""
    return data_pipelines.to_global_batch({k: local[k] for k in batch_input.FRAME_KEYS},
                                          self.mesh, sharding.BATCH_AXES)

  def evaluate(self, state, batches: Iterable[dict[str, jax.Array]]) -> dict[str, float]:
    """PSNR and L1 of the test split's reconstruction with the EMA generator.

    Args:
      state: the training state, laid out on this program's mesh.
      batches: global batches (``source``, ``driving``, ``mask``), e.g. streamed by the
        trainer from ``data_pipelines.build_eval_pipeline``.

    Returns:
      ``{'psnr', 'l1', 'frames'}`` (see :mod:`mcc_jax.train.in_training_eval`).
    """
    variables = {"generator": {"params": state.ema_params},
                 "motion_estimator": state.variables("motion_estimator")}
    return in_training_eval.evaluate(self._eval_step, variables, batches)

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
    # uint8 frames, or float32 ones with colour jitter: one executable for each.
    key = (adversarial, str(batch["source"].dtype))
    if key not in self._compiled:
      self._compiled[key] = self._steps[adversarial].lower(
          state, batch, self.perceptual_params).compile()
      # The compiler's freed memory would otherwise stay resident under the step's own.
      host_memory.release_freed_host_memory()
      if jax.process_count() > 1:
        # Processes finish compiling at different times; the first collective must not
        # wait for a slower one past the collectives' set-up deadline.
        multihost_utils.sync_global_devices(f"compiled the training step ({adversarial})")
    return self._compiled[key](state, batch, self.perceptual_params)


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
