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
import time
from typing import Any, Callable, Iterable, Iterator

from mcc_jax import data_pipelines
import jax
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers
from clu import periodic_actions
from jax.experimental import multihost_utils

from mcc_jax import losses
from mcc_jax.checkpoints import training_runs
from mcc_jax.models import batch_groups
from mcc_jax.models import factory
from mcc_jax.train import batch_input
from mcc_jax.train import in_training_eval
from mcc_jax.train import sharding
from mcc_jax.train import summaries
from mcc_jax.train.distributed import maybe_initialize_distributed
from mcc_jax.train.preemption import StopRequest
from mcc_jax.train.program import CompiledPrograms
from mcc_jax.train.run_checks import check_workdir
from mcc_jax.train.run_checks import validate_config
from mcc_jax.train.step_metrics import MetricBuffer
from mcc_jax.train.step_metrics import NonFiniteLossError  # noqa: F401  (raised by the loop)


@dataclasses.dataclass
class TrainSummary:
  """How a run ended.

  Attributes:
    step: the last completed step.
    stopped_by_signal: True when SIGTERM ended the run early (a checkpoint was saved).
    last_checkpoint: the step of the newest checkpoint on disk (None if none).
    eval_metrics: the last evaluation's metrics (empty if none ran).
    start_step: the step the run started or resumed from.
  """

  step: int
  stopped_by_signal: bool
  last_checkpoint: int | None
  eval_metrics: dict[str, float]
  start_step: int = 0


class StartupError(ValueError):
  """Something a user can fix, found before training started: the configuration, the
  workdir, the dataset, the perceptual network's weights, the batch sizes against the
  mesh, or a checkpoint of another model. The message names it; ``mcc-jax train``
  prints it as one line."""


# What the start-up checks raise for bad input; anything else is a bug and keeps its type.
_INPUT_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)

BAD_FILES = "bad_files.txt"


def _host_batches(config: ml_collections.ConfigDict, start_step: int,
                  bad_file_log) -> Iterator[dict[str, np.ndarray]]:
  """This host's training batches from step ``start_step`` on: batch k of the stream is a
  function of (seed, host, k) alone, so a resumed run reads what the uninterrupted run
  would have read."""
  per_host = config.batch_size // jax.process_count()
  dataset = data_pipelines.build_train_pipeline(config.datasets, per_host,
                                                seed=int(config.seed), start_batch=start_step,
                                                bad_file_log=bad_file_log)
  return dataset.as_numpy_iterator()


def _eval_batches(config: ml_collections.ConfigDict, mesh, bad_file_log
                  ) -> Iterator[dict[str, jax.Array]]:
  """The test split's reconstruction batches as global arrays, streamed and padded."""
  per_host = config.eval_batch_size // jax.process_count()
  dataset = data_pipelines.build_eval_pipeline(config.datasets, per_host,
                                               bad_file_log=bad_file_log)
  keys = (*batch_input.FRAME_KEYS, "mask")
  local = ({k: batch[k] for k in keys} for batch in dataset.as_numpy_iterator())
  size = config.model.image_size
  frames = np.zeros((per_host, size, size, 3), np.uint8)
  filler = {"source": frames, "driving": frames, "mask": np.zeros((per_host,), bool)}
  for batch in in_training_eval.padded_batches(local, filler, config.eval_max_batches):
    yield data_pipelines.to_global_batch(batch, mesh, sharding.BATCH_AXES)


class DataStoppedError(RuntimeError):
  """The input pipeline stopped the run on bad data the user can fix (e.g. more
  unreadable videos than ``datasets.max_bad_file_share`` allows); the message names it."""


def _bad_file_path(workdir) -> str:
  name = BAD_FILES if jax.process_count() == 1 else (
      BAD_FILES.replace(".txt", f".{jax.process_index()}.txt"))
  return str(workdir / name)


def _bad_file_count(log) -> int:
  """Videos skipped so far on all hosts."""
  if jax.process_count() > 1:
    return int(np.sum(multihost_utils.process_allgather(np.array(log.count))))
  return log.count


def _next_batch(iterator):
  try:
    return next(iterator)
  except Exception as error:  # pylint: disable=broad-except
    # tf.data wraps what a reader raised; too many bad videos is the user's to fix.
    if "TooManyBadFilesError" in str(error) or isinstance(
        error, data_pipelines.TooManyBadFilesError):
      message = str(error).split("TooManyBadFilesError:")[-1]
      raise DataStoppedError(" ".join(message.split())) from error
    raise


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                       batches: Callable[[int], Iterable[dict[str, np.ndarray]]] | None = None,
                       programs: CompiledPrograms | None = None) -> TrainSummary:
  """Trains (or resumes) a model in ``workdir``.

  Args:
    config: the full configuration (see ``configs/``).
    workdir: where checkpoints, TensorBoard summaries and the config go.
    batches: optional ``batches(start_step)`` returning this host's training batches
      (``{'source', 'driving'}``, (B / processes, S, S, 3), uint8 or float32 in [0, 1])
      from step ``start_step`` on. By default ``data_pipelines`` streams them, batch k
      being a function of (seed, host, k): a resumed run reads what the uninterrupted
      run would have read.
    programs: where the compiled programs are kept; pass the same
      :class:`~mcc_jax.train.program.CompiledPrograms` to several runs of one model,
      objective and mesh (a notebook, tests) to compile once. A fresh one by default.

  Returns:
    A :class:`TrainSummary`.

  Raises:
    StartupError: for a bad configuration, dataset, weights file, workdir or
      checkpoint, found before any training compute (the original error is its cause).
    DataStoppedError: the pipeline stopped the run (too many unreadable videos).
    NonFiniteLossError: a loss or gradient norm became NaN or infinite.
  """
  maybe_initialize_distributed(config)
  try:
    validate_config(config)
    workdir = check_workdir(workdir)
    mesh = sharding.make_mesh(config.mesh)
    sharding.check_batch_size(config.batch_size, mesh)
    if config.eval_every_steps:
      sharding.check_batch_size(config.eval_batch_size, mesh, field="eval_batch_size")
    batch_groups.check_group_size(config.batch_size, config.model.batch_norm_group_size)
    perceptual = losses.load_perceptual_network(config.losses,
                                                factory.dtype_of(config.model))
    checkpointer = training_runs.Checkpointer(
        workdir, max_to_keep=config.checkpoint.max_to_keep,
        asynchronous=config.checkpoint.asynchronous)
    checkpointer.check_compatible(config)
    start = checkpointer.latest_step() or 0
    # One log of skipped videos for the training and the evaluation pipelines.
    bad_files = data_pipelines.BadFileLog(f"{config.datasets.name!r} dataset")
    if batches is None:
      batches = functools.partial(_host_batches, config, bad_file_log=bad_files)
    batch_iterator = iter(batches(start))
    first_batch = _next_batch(batch_iterator)  # reads the dataset: bad data fails here
  except (*_INPUT_ERRORS, DataStoppedError) as error:
    raise StartupError(str(error)) from error

  program = (programs or CompiledPrograms()).get(config, mesh, perceptual)
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
  value_range = tuple(config.datasets.value_range)
  preview = summaries.Preview(program.models, program.replicated, value_range) if (
      config.image_every_steps) else None
  buffer = MetricBuffer()
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
    bad_files.append_new_to(_bad_file_path(workdir))
    means["data/bad_files"] = _bad_file_count(bad_files)
    writer.write_scalars(current_step, means)
    interval_start, interval_steps = time.time(), 0

  def run_eval(current_state, current_step):
    metrics = program.evaluate(current_state, _eval_batches(config, mesh, bad_files))
    writer.write_scalars(current_step, {f"eval/{k}": v for k, v in metrics.items()})
    return metrics

  try:
    with StopRequest() as stop:
      local = first_batch
      while step < config.total_steps:
        batch = program.global_batch(local)
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
        if step < config.total_steps:
          local = _next_batch(batch_iterator)
  finally:
    # Saves already started belong to healthy steps: finish them whatever happened.
    checkpointer.close()
    writer.flush()
    writer.close()
  directory = training_runs.checkpoint_directory(workdir)
  if stopped:
    message = f"stopped at step {step} on SIGTERM; checkpoint saved in {directory / str(step)}"
  else:
    message = f"finished at step {step}; checkpoints in {directory}"
  logging.info(message)
  print(message, flush=True)
  return TrainSummary(step, stopped, last_saved, eval_metrics, start)


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
