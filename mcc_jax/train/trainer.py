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

import data_pipelines
import jax
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers
from clu import periodic_actions

from mcc_jax import losses
from mcc_jax.checkpoints import training_runs
from mcc_jax.models import batch_groups
from mcc_jax.models import factory
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
  """

  step: int
  stopped_by_signal: bool
  last_checkpoint: int | None
  eval_metrics: dict[str, float]


def _host_batches(config: ml_collections.ConfigDict, start_step: int
                  ) -> Iterator[dict[str, np.ndarray]]:
  per_host = config.batch_size // jax.process_count()
  # A resumed run draws new pairs: its stream is seeded by the step it resumes from.
  seed = int(config.seed) if start_step == 0 else int(
      np.random.SeedSequence([int(config.seed), start_step]).generate_state(1)[0] >> 1)
  dataset = data_pipelines.build_train_pipeline(config.datasets, per_host, seed=seed)
  return dataset.as_numpy_iterator()


def _eval_batches(config: ml_collections.ConfigDict) -> list[dict[str, np.ndarray]]:
  per_host = config.eval_batch_size // jax.process_count()
  dataset = data_pipelines.build_eval_pipeline(config.datasets, per_host)
  batches = []
  for i, batch in enumerate(dataset.as_numpy_iterator()):
    if config.eval_max_batches and i >= config.eval_max_batches:
      break
    batches.append({k: batch[k] for k in ("source", "driving", "mask")})
  return in_training_eval.pad_to_common_length(batches)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                       batches: Callable[[int], Iterable[dict[str, np.ndarray]]] | None = None,
                       programs: CompiledPrograms | None = None) -> TrainSummary:
  """Trains (or resumes) a model in ``workdir``.

  Args:
    config: the full configuration (see ``configs/``).
    workdir: where checkpoints, TensorBoard summaries and the config go.
    batches: optional ``batches(start_step)`` returning this host's training batches
      (``{'source', 'driving'}``, float32 (B / processes, S, S, 3)) from step
      ``start_step`` on. By default ``data_pipelines`` streams them; a resumed run's
      stream is seeded with ``(config.seed, start_step)``, so it goes on with new pairs
      rather than replaying the first ones.
    programs: where the compiled programs are kept; pass the same
      :class:`~mcc_jax.train.program.CompiledPrograms` to several runs of one model,
      objective and mesh (a notebook, tests) to compile once. A fresh one by default.

  Returns:
    A :class:`TrainSummary`.

  Raises:
    ValueError / FileNotFoundError / PermissionError: for a bad configuration, dataset,
      weights file or workdir, before any training compute.
    training_runs.IncompatibleCheckpointError: the workdir holds another model's run.
    NonFiniteLossError: a loss or gradient norm became NaN or infinite.
  """
  maybe_initialize_distributed(config)
  validate_config(config)
  workdir = check_workdir(workdir)
  mesh = sharding.make_mesh(config.mesh)
  sharding.check_batch_size(config.batch_size, mesh)
  batch_groups.check_group_size(config.batch_size, config.model.batch_norm_group_size)
  perceptual = losses.load_perceptual_network(config.losses, factory.dtype_of(config.model))
  checkpointer = training_runs.Checkpointer(
      workdir, max_to_keep=config.checkpoint.max_to_keep,
      asynchronous=config.checkpoint.asynchronous)
  checkpointer.check_compatible(config)
  start = checkpointer.latest_step() or 0
  if batches is None:
    batches = functools.partial(_host_batches, config)
  batch_iterator = iter(batches(start))  # opens the dataset: bad data fails here

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
  eval_step = jax.jit(in_training_eval.make_eval_step(summaries.reconstruct_fn(program.models)),
                      in_shardings=(program.replicated, program.batch_sharding),
                      out_shardings=program.replicated)
  preview = summaries.Preview(program.models, program.replicated) if (
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
    writer.write_scalars(current_step, means)
    interval_start, interval_steps = time.time(), 0

  def run_eval(current_state, current_step):
    global_batches = (data_pipelines.to_global_batch(b, mesh, sharding.BATCH_AXES)
                      for b in _eval_batches(config))
    variables = {"generator": {"params": current_state.ema_params},
                 "motion_estimator": current_state.variables("motion_estimator")}
    metrics = in_training_eval.evaluate(eval_step, variables, global_batches)
    writer.write_scalars(current_step, {f"eval/{k}": v for k, v in metrics.items()})
    return metrics

  try:
    with StopRequest() as stop:
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
  directory = training_runs.checkpoint_directory(workdir)
  if stopped:
    message = f"stopped at step {step} on SIGTERM; checkpoint saved in {directory / str(step)}"
  else:
    message = f"finished at step {step}; checkpoints in {directory}"
  logging.info(message)
  print(message, flush=True)
  return TrainSummary(step, stopped, last_saved, eval_metrics)


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
