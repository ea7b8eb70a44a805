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
import logging
import os
import pathlib
import signal
import time
from typing import Any, Iterable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import metric_writers
from clu import periodic_actions
from jax.experimental import multihost_utils

from mcc_jax import losses
from mcc_jax.models import factory
from mcc_jax.train import checkpointing
from mcc_jax.train import evaluation
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
    fetched = jax.device_get([m for _, m in self._pending])
    steps = [s for s, _ in self._pending]
    self._pending = []
    for step, metrics in zip(steps, fetched):
      bad = sorted(name for name, value in metrics.items() if not np.all(np.isfinite(value)))
      if bad:
        raise NonFiniteLossError(
            f"step {step}: non-finite values in {', '.join(bad)}; the run stopped without "
            f"saving this or any later step")
    return {name: float(np.mean([m[name] for m in fetched])) for name in fetched[0]}


def _host_batches(config: ml_collections.ConfigDict, seed: int) -> Iterator[dict[str, np.ndarray]]:
  import data_pipelines  # pylint: disable=import-outside-toplevel
  per_host = config.batch_size // jax.process_count()
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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                       batches: Iterable[dict[str, np.ndarray]] | None = None) -> TrainSummary:
  """Trains (or resumes) a model in ``workdir``.

  Args:
    config: the full configuration (see ``configs/``).
    workdir: where checkpoints, TensorBoard summaries and the config go.
    batches: optional host-local training batches (``{'source', 'driving'}``, float32
      (B / processes, S, S, 3)); by default ``data_pipelines`` streams them.

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
  if config.model.batch_norm_group_size:
    from mcc_jax.train import batch_groups  # pylint: disable=import-outside-toplevel
    batch_groups.check_group_size(config.batch_size, config.model.batch_norm_group_size)
  dtype = factory.dtype_of(config.model)
  perceptual = losses.load_perceptual_network(config.losses, dtype)

  checkpointer = checkpointing.Checkpointer(
      workdir, max_to_keep=config.checkpoint.max_to_keep,
      asynchronous=config.checkpoint.asynchronous)
  checkpointer.check_compatible(config)
  if batches is None:
    batches = _host_batches(config, config.seed)
  batches = iter(batches)

  models = train_step_lib.build_models(config)
  optimizers = make_optimizers(config.optimizer)
  size = config.model.image_size
  batch_shape = (config.batch_size, size, size, 3)
  create = functools.partial(train_step_lib.create_train_state, config=config, models=models,
                             optimizers=optimizers, batch_shape=batch_shape)
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(create, rng)
  state_sharding = sharding.state_shardings(abstract, mesh, config.mesh.min_sharded_size)
  start = checkpointer.latest_step()
  if start is None:
    state = jax.jit(create, out_shardings=state_sharding)(rng)
    start = 0
    logging.info("initialised a new run in %s", workdir)
  else:
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, state_sharding)
    state = checkpointer.restore(target, start)
    logging.info("resumed from the checkpoint of step %d in %s", start, workdir)

  replicated = sharding.replicated(mesh)
  perceptual_params = jax.device_put(perceptual.params, replicated)
  batch_sharding = sharding.batch_sharding(mesh)

  def jitted_step(adversarial: bool):
    fn = functools.partial(train_step_lib.train_step, models=models, optimizers=optimizers,
                           features=perceptual, config=config, adversarial=adversarial)
    return jax.jit(fn, in_shardings=(state_sharding, batch_sharding, replicated),
                   out_shardings=(state_sharding, replicated), donate_argnums=(0,))

  steps = {False: jitted_step(False), True: jitted_step(True)}
  start_d = int(config.losses.discriminator_start_step)

  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=True)
  if start == 0:
    writer.write_hparams({k: v for k, v in _flat_config(config).items()})
  hooks = []
  report = periodic_actions.ReportProgress(num_train_steps=config.total_steps, writer=writer)
  if jax.process_index() == 0:
    hooks.append(report)
    if config.profile:
      hooks.append(periodic_actions.Profile(num_profile_steps=5, logdir=str(workdir)))

  eval_step = jax.jit(evaluation.make_eval_step(
      summaries.reconstruct_fn(models)), in_shardings=(replicated, batch_sharding),
      out_shardings=replicated)
  preview = summaries.Preview(models, replicated) if config.image_every_steps else None
  buffer = _MetricBuffer()
  eval_metrics: dict[str, float] = {}
  last_saved = start if start else None
  stopped = False
  step = start
  interval_start, interval_steps = time.time(), 0

  def save(current_state, current_step, force=False):
    nonlocal last_saved
    buffer_means = buffer.flush()  # no checkpoint after a non-finite step
    if checkpointer.save(current_step, current_state, config, force=force):
      last_saved = current_step
    return buffer_means

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
    batches_ = _eval_batches(config)
    global_batches = (
        {k: _global(v, batch_sharding) for k, v in b.items()} for b in batches_)
    variables = {"generator": {"params": current_state.ema_params},
                 "motion_estimator": current_state.variables("motion_estimator")}
    metrics = evaluation.evaluate(eval_step, variables, global_batches)
    writer.write_scalars(current_step, {f"eval/{k}": v for k, v in metrics.items()})
    return metrics

  with _StopRequest() as stop, mesh:
    while step < config.total_steps:
      local = next(batches)
      batch = {k: _global(np.asarray(local[k]), batch_sharding) for k in ("source", "driving")}
      if preview is not None and preview.batch is None:
        preview.batch = batch
      adversarial = step + 1 > start_d
      state, metrics = steps[adversarial](state, batch, perceptual_params)
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
  checkpointer.wait_until_finished()
  writer.flush()
  if stopped:
    message = (f"stopped at step {step} on SIGTERM; checkpoint saved in "
               f"{checkpointing.checkpoints.checkpoint_directory(workdir) / str(step)}")
  else:
    message = f"finished at step {step}; checkpoints in {workdir / 'checkpoints'}"
  logging.info(message)
  print(message, flush=True)
  checkpointer.close()
  writer.close()
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
