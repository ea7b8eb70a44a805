"""Training checkpoints in a workdir: what ``mcc-jax train`` writes and everything else reads.

A training run keeps its checkpoints in ``WORKDIR/checkpoints/<step>/`` (an orbax
``CheckpointManager`` directory), each holding two items:

* ``state``: the whole :class:`~mcc_jax.train.state.TrainState` (parameters, BatchNorm
  statistics, the generator's EMA, optimiser states, step, random key);
* ``config``: the run's configuration as JSON, so that a checkpoint can be used without
  knowing which command produced it.

A step directory appears only once its save has completed (orbax writes into a
temporary directory and renames it), so a run killed in the middle of a save leaves the
previous checkpoints intact and the next start resumes from the latest complete one.

:func:`restore_params` and :func:`restore_config` are the public entry points for
users and tools: they need no model code and return plain numpy trees.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"
ITEMS = ("state", "config")


def checkpoint_directory(workdir: str | pathlib.Path) -> pathlib.Path:
  """``WORKDIR/checkpoints`` as an absolute path."""
  return pathlib.Path(workdir).expanduser().resolve() / CHECKPOINT_DIR


def open_manager(workdir: str | pathlib.Path, *, max_to_keep: int | None = None,
                 asynchronous: bool = False, create: bool = False) -> ocp.CheckpointManager:
  """An orbax ``CheckpointManager`` over ``WORKDIR/checkpoints``.

  Args:
    workdir: the training run's directory.
    max_to_keep: keep only this many most recent checkpoints (None: all).
    asynchronous: save in a background thread (training goes on while it writes).
    create: create the directory if missing.
  """
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, enable_async_checkpointing=asynchronous, create=create,
      cleanup_tmp_directories=True)
  return ocp.CheckpointManager(checkpoint_directory(workdir), options=options,
                               item_names=ITEMS)


def _existing_manager(workdir: str | pathlib.Path) -> ocp.CheckpointManager:
  directory = checkpoint_directory(workdir)
  if not directory.is_dir():
    raise FileNotFoundError(
        f"{workdir} holds no training checkpoints: {directory} does not exist (expected the "
        f"workdir of an `mcc-jax train` run)")
  return open_manager(workdir)


def _resolve_step(manager: ocp.CheckpointManager, workdir, step: int | None) -> int:
  steps = manager.all_steps()
  if not steps:
    raise FileNotFoundError(f"{checkpoint_directory(workdir)} holds no complete checkpoint")
  if step is None:
    return max(steps)
  if step not in steps:
    raise FileNotFoundError(f"{checkpoint_directory(workdir)} has no checkpoint of step "
                            f"{step}; it has steps {sorted(steps)}")
  return step


def latest_step(workdir: str | pathlib.Path) -> int | None:
  """The step of the newest complete checkpoint, or None when there is none."""
  if not checkpoint_directory(workdir).is_dir():
    return None
  with open_manager(workdir) as manager:
    return manager.latest_step()


def restore_config(workdir: str | pathlib.Path,
                   step: int | None = None) -> ml_collections.ConfigDict:
  """The configuration saved with a checkpoint (default: the newest).

  Raises:
    FileNotFoundError: naming the workdir or the missing step.
  """
  with _existing_manager(workdir) as manager:
    step = _resolve_step(manager, workdir, step)
    restored = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
  return ml_collections.ConfigDict(restored.config)


def restore_params(workdir: str | pathlib.Path, step: int | None = None) -> dict[str, Any]:
  """The networks' variables of a checkpoint, as numpy arrays.

  Args:
    workdir: the directory of an ``mcc-jax train`` run.
    step: which checkpoint; None for the newest complete one.

  Returns:
    ``{'generator': {'params'}, 'generator_ema': {'params'}, 'motion_estimator':
    {'params', 'batch_stats'}, 'discriminator': {'params', 'batch_stats'}}``: Flax
    variables for ``module.apply``. ``generator_ema`` holds the moving-average weights
    that inference uses by default.

  Raises:
    FileNotFoundError: naming the workdir or the missing step.
  """
  with _existing_manager(workdir) as manager:
    step = _resolve_step(manager, workdir, step)
  # Restored onto this process's first device, whatever topology saved it (a run on
  # several hosts or devices): the target's shardings say where the arrays go.
  path = checkpoint_directory(workdir) / str(step) / "state"
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  with ocp.StandardCheckpointer() as checkpointer:
    metadata = checkpointer.metadata(path)
    tree = getattr(metadata, "item_metadata", metadata)
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)
    restored = checkpointer.restore(path, target)
  state = jax.tree.map(np.asarray, restored)
  return {
      "generator": {"params": state["params"]["generator"]},
      "generator_ema": {"params": state["ema_params"]},
      "motion_estimator": {"params": state["params"]["motion_estimator"],
                           "batch_stats": state["batch_stats"]["motion_estimator"]},
      "discriminator": {"params": state["params"]["discriminator"],
                        "batch_stats": state["batch_stats"]["discriminator"]},
  }
