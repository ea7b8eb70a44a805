"""The training loop: ``train_and_evaluate(config, workdir)``.

What one run does, in order:

1. checks everything a user can get wrong before any compute: the configuration, the
   workdir (writable), the dataset (root, readable videos), the perceptual network's
   weights, the batch size against the mesh, and a checkpoint from another model;
2. builds the mesh, initialises the state directly into its shardings (or restores
   the newest complete checkpoint into them), and jit-compiles the step twice: without
   and with the discriminator, which joins at ``losses.discriminator_start_step``;
3. runs the steps, logging every term with clu, saving asynchronously every
   ``checkpoint.every_steps``, evaluating every ``eval_every_steps``;
4. on SIGTERM (preemption), saves the current step and returns normally.

A non-finite loss or gradient norm stops the run with :class:`NonFiniteLossError`,
which names the step and the terms; metrics are checked before every save, so no
checkpoint is written after the step that went wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import signal
import time
from typing import Any, Callable, Iterable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers
from clu import periodic_actions
from jax.experimental import multihost_utils

from mcc_jax import checkpoints
from mcc_jax import losses
from mcc_jax.models import factory
from mcc_jax.train import batch_groups
from mcc_jax.train import checkpointing
from mcc_jax.train import evaluation
from mcc_jax.train import host_memory
from mcc_jax.train import sharding
from mcc_jax.train import step as train_step_lib
from mcc_jax.train import summaries
from mcc_jax.train.optimizers import make_optimizers

class NonFiniteLossError(FloatingPointError):
  """A loss term or gradient norm became NaN or infinite."""


@dataclasses.dataclass
class TrainSummary:
  """How a run ended.

  Attributes:
    step: the last completed step.
    stopped_by_signal: True when SIGTERM ended the run early (a checkpoint was saved).
    last_checkpoint: the step of the newest checkpoint on disk (None if none).
    eval_metrics: the last evaluation's metrics (empty if none ran).
  """

  step: int
  stopped_by_signal: bool
  last_checkpoint: int | None
  eval_metrics: dict[str, float]


def maybe_initialize_distributed(config: ml_collections.ConfigDict) -> None:
  """Starts ``jax.distributed`` for multi-process runs.

  With ``config.distributed.num_processes > 1`` the coordinator address and process id
  come from the config; on a Cloud TPU pod slice (several workers in
  ``TPU_WORKER_HOSTNAMES``) JAX detects all three itself.
  """
  dist = config.distributed
  if jax.distributed.is_initialized():
    return
  # CPU processes exchange collectives through gloo (GPUs and TPUs use their own).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if dist.num_processes and dist.num_processes > 1:
    if not dist.coordinator_address or dist.process_id is None:
      raise ValueError("config.distributed: num_processes > 1 needs coordinator_address "
                       "(host:port of process 0) and process_id")
    jax.distributed.initialize(coordinator_address=dist.coordinator_address,
                               num_processes=dist.num_processes, process_id=dist.process_id)
  elif len(os.environ.get("TPU_WORKER_HOSTNAMES", "").split(",")) > 1:
    jax.distributed.initialize()


def check_workdir(workdir: str | os.PathLike) -> pathlib.Path:
  """Creates ``workdir`` if needed and checks that it can be written.

  Raises:
    PermissionError: naming the workdir when a file cannot be created in it.
  """
  path = pathlib.Path(workdir).expanduser().resolve()
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".write-test-{os.getpid()}"
    probe.write_text("")
    probe.unlink()
  except OSError as error:
    raise PermissionError(f"--workdir {path} cannot be written: {error.strerror or error}") \
        from error
  return path


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks the training fields; raises ValueError naming the first bad one."""
  factory.validate_model_config(config.model)
  import data_pipelines  # pylint: disable=import-outside-toplevel
  data_pipelines.validate_datasets_config(config.datasets)

  def positive(name, value, allow_zero=False):
    ok = isinstance(value, int) and not isinstance(value, bool) and (
        value >= 0 if allow_zero else value > 0)
    if not ok:
      raise ValueError(f"config.{name} must be a {'non-negative' if allow_zero else 'positive'}"
                       f" integer, got {value!r}")

  positive("batch_size", config.batch_size)
  positive("total_steps", config.total_steps)
  positive("checkpoint.every_steps", config.checkpoint.every_steps)
  positive("log_every_steps", config.log_every_steps)
  positive("image_every_steps", config.image_every_steps, allow_zero=True)
  positive("eval_every_steps", config.eval_every_steps, allow_zero=True)
  positive("model.batch_norm_group_size", config.model.batch_norm_group_size, allow_zero=True)
  if config.datasets.image_size != config.model.image_size:
    raise ValueError(f"config.datasets.image_size ({config.datasets.image_size}) must equal "
                     f"config.model.image_size ({config.model.image_size})")


class _StopRequest:
  """Turns SIGTERM into a flag the loop polls (and, on several hosts, agrees on)."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if jax.process_count() == 1:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def should_stop(self, step: int) -> bool:
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False


class _MetricBuffer:
  """Keeps the step metrics on device until they are needed, then checks and averages them."""

  def __init__(self):
    self._pending: list[tuple[int, dict[str, jax.Array]]] = []

  def add(self, step: int, metrics: dict[str, jax.Array]) -> None:
    self._pending.append((step, metrics))

  def flush(self) -> dict[str, float]:
    """Fetches the pending metrics; raises NonFiniteLossError; returns their means."""
    if not self._pending:
      return {}
    fetched = sharding.host_value([m for _, m in self._pending])
    steps = [s for s, _ in self._pending]
    self._pending = []
    for step, metrics in zip(steps, fetched):
      bad = sorted(name for name, value in metrics.items() if not np.all(np.isfinite(value)))
      if bad:
        raise NonFiniteLossError(
            f"step {step}: non-finite values in {', '.join(bad)}; the run stopped without "
            f"saving this or any later step")
    return {name: float(np.mean([m[name] for m in fetched])) for name in fetched[0]}


def _host_batches(config: ml_collections.ConfigDict, start_step: int
                  ) -> Iterator[dict[str, np.ndarray]]:
  import data_pipelines  # pylint: disable=import-outside-toplevel
  per_host = config.batch_size // jax.process_count()
  # A resumed run draws new pairs: its stream is seeded by the step it resumes from.
  seed = int(config.seed) if start_step == 0 else int(
      np.random.SeedSequence([int(config.seed), start_step]).generate_state(1)[0] >> 1)
  dataset = data_pipelines.build_train_pipeline(config.datasets, per_host, seed=seed)
  return dataset.as_numpy_iterator()


def _eval_batches(config: ml_collections.ConfigDict) -> list[dict[str, np.ndarray]]:
  import data_pipelines  # pylint: disable=import-outside-toplevel
  per_host = config.eval_batch_size // jax.process_count()
  dataset = data_pipelines.build_eval_pipeline(config.datasets, per_host)
  batches = []
  for i, batch in enumerate(dataset.as_numpy_iterator()):
    if config.eval_max_batches and i >= config.eval_max_batches:
      break
    batches.append({k: batch[k] for k in ("source", "driving", "mask")})
  return evaluation.pad_to_common_length(batches)


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
    return {k: _global(np.asarray(local[k]), self.batch_sharding) for k in ("source", "driving")}

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


# Compiled programs of this process, by everything that shapes the step; a notebook or a
# test that trains again with the same model, objective and mesh reuses the compilation.
_PROGRAMS: dict[tuple, TrainingProgram] = {}
_STEP_FIELDS = ("model", "losses", "optimizer", "batch_size", "seed")


def cached_program(config: ml_collections.ConfigDict, mesh, perceptual) -> TrainingProgram:
  """A :class:`TrainingProgram` for ``config`` on ``mesh``, compiled at most once per process."""
  fields = {name: config[name] for name in _STEP_FIELDS}
  key = (ml_collections.ConfigDict(fields).to_json_best_effort(sort_keys=True),
         tuple(mesh.shape.items()), tuple(d.id for d in mesh.devices.flat))
  if key not in _PROGRAMS:
    _PROGRAMS.clear()   # keep one: each holds compiled executables and the VGG weights
    _PROGRAMS[key] = TrainingProgram(config, mesh, perceptual)
  return _PROGRAMS[key]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                       batches: Callable[[int], Iterable[dict[str, np.ndarray]]] | None = None
                       ) -> TrainSummary:
  """Trains (or resumes) a model in ``workdir``.

  Args:
    config: the full configuration (see ``configs/``).
    workdir: where checkpoints, TensorBoard summaries and the config go.
    batches: optional ``batches(start_step)`` returning this host's training batches
      (``{'source', 'driving'}``, float32 (B / processes, S, S, 3)) from step
      ``start_step`` on. By default ``data_pipelines`` streams them; a resumed run's
      stream is seeded with ``(config.seed, start_step)``, so it goes on with new pairs
      rather than replaying the first ones.

  Returns:
    A :class:`TrainSummary`.

  Raises:
    ValueError / FileNotFoundError / PermissionError: for a bad configuration, dataset,
      weights file or workdir, before any training compute.
    checkpointing.IncompatibleCheckpointError: the workdir holds another model's run.
    NonFiniteLossError: a loss or gradient norm became NaN or infinite.
  """
  maybe_initialize_distributed(config)
  validate_config(config)
  workdir = check_workdir(workdir)
  mesh = sharding.make_mesh(config.mesh)
  sharding.check_batch_size(config.batch_size, mesh)
  batch_groups.check_group_size(config.batch_size, config.model.batch_norm_group_size)
  perceptual = losses.load_perceptual_network(config.losses, factory.dtype_of(config.model))
  checkpointer = checkpointing.Checkpointer(
      workdir, max_to_keep=config.checkpoint.max_to_keep,
      asynchronous=config.checkpoint.asynchronous)
  checkpointer.check_compatible(config)
  start = checkpointer.latest_step() or 0
  if batches is None:
    batches = functools.partial(_host_batches, config)
  batch_iterator = iter(batches(start))  # opens the dataset: bad data fails here

  program = cached_program(config, mesh, perceptual)
  if start == 0:
    state = program.init_state(jax.random.PRNGKey(config.seed))
    logging.info("initialised a new run in %s", workdir)
  else:
    state = checkpointer.restore(program.restore_target(), start)
    logging.info("resumed from the checkpoint of step %d in %s", start, workdir)

  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=True)
  if start == 0:
    writer.write_hparams(_flat_config(config))
  hooks = []
  if jax.process_index() == 0:
    hooks.append(periodic_actions.ReportProgress(num_train_steps=config.total_steps,
                                                 writer=writer))
    if config.profile:
      hooks.append(periodic_actions.Profile(num_profile_steps=5, logdir=str(workdir)))
  eval_step = jax.jit(evaluation.make_eval_step(summaries.reconstruct_fn(program.models)),
                      in_shardings=(program.replicated, program.batch_sharding),
                      out_shardings=program.replicated)
  preview = summaries.Preview(program.models, program.replicated) if (
      config.image_every_steps) else None
  buffer = _MetricBuffer()
  eval_metrics: dict[str, float] = {}
  last_saved = start or None
  stopped = False
  step = start
  interval_start, interval_steps = time.time(), 0

  def save(current_state, current_step, force=False):
    nonlocal last_saved
    means = buffer.flush()  # raises on a non-finite step: nothing after it is saved
    if checkpointer.save(current_step, current_state, config, force=force):
      last_saved = current_step
    return means

  def log(means, current_step):
    nonlocal interval_start, interval_steps
    if not means:
      return
    elapsed = max(time.time() - interval_start, 1e-9)
    means["steps_per_second"] = interval_steps / elapsed
    means["examples_per_second"] = interval_steps * config.batch_size / elapsed
    writer.write_scalars(current_step, means)
    interval_start, interval_steps = time.time(), 0

  def run_eval(current_state, current_step):
    global_batches = ({k: _global(v, program.batch_sharding) for k, v in b.items()}
                      for b in _eval_batches(config))
    variables = {"generator": {"params": current_state.ema_params},
                 "motion_estimator": current_state.variables("motion_estimator")}
    metrics = evaluation.evaluate(eval_step, variables, global_batches)
    writer.write_scalars(current_step, {f"eval/{k}": v for k, v in metrics.items()})
    return metrics

  try:
    with _StopRequest() as stop:
      while step < config.total_steps:
        batch = program.global_batch(next(batch_iterator))
        if preview is not None and preview.batch is None:
          preview.batch = batch
        state, metrics = program.step(state, batch, step)
        step += 1
        interval_steps += 1
        buffer.add(step, metrics)
        for hook in hooks:
          hook(step)
        if step % config.log_every_steps == 0 or step == config.total_steps:
          log(buffer.flush(), step)
        if preview is not None and step % config.image_every_steps == 0:
          writer.write_images(step, preview.images(state))
        if step % config.checkpoint.every_steps == 0 or step == config.total_steps:
          log(save(state, step), step)
        if config.eval_every_steps and (step % config.eval_every_steps == 0
                                        or step == config.total_steps):
          eval_metrics = run_eval(state, step)
        if step < config.total_steps and stop.should_stop(step):
          log(save(state, step, force=True), step)
          stopped = True
          break
  finally:
    # Saves already started belong to healthy steps: finish them whatever happened.
    checkpointer.close()
    writer.flush()
    writer.close()
  directory = checkpoints.checkpoint_directory(workdir)
  if stopped:
    message = f"stopped at step {step} on SIGTERM; checkpoint saved in {directory / str(step)}"
  else:
    message = f"finished at step {step}; checkpoints in {directory}"
  logging.info(message)
  print(message, flush=True)
  return TrainSummary(step, stopped, last_saved, eval_metrics)


def _global(value: np.ndarray, batch_sharding) -> jax.Array:
  """A host-local slice of the batch as part of the global array."""
  global_shape = (value.shape[0] * jax.process_count(),) + value.shape[1:]
  return jax.make_array_from_process_local_data(batch_sharding, value, global_shape)


def _flat_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
  flat = {}

  def visit(node, prefix):
    for key, value in node.items():
      name = f"{prefix}.{key}" if prefix else key
      if isinstance(value, ml_collections.ConfigDict):
        visit(value, name)
      elif isinstance(value, (int, float, str, bool)):
        flat[name] = value
      else:
        flat[name] = str(value)

  visit(config, "")
  return flat
