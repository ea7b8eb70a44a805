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

The trainer writes and resumes through :class:`Checkpointer`:

* saves are asynchronous: the step loop goes on while a background thread writes;
* a new start resumes from the newest complete checkpoint; a save that was interrupted
  (kill -9, preemption) left only a temporary directory, which orbax ignores and
  cleans up;
* the state is restored into the *current* run's abstract state, whose shardings come
  from the current mesh: a checkpoint saved on 8 devices restores on 1, or on another
  mesh shape;
* resuming with a different model (any field under ``config.model``, or the image
  size) is refused with an error that names each differing field; batch size, step
  budget, logging and the like may change.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Iterable

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
    create: open for writing (the training run's own manager): create the directory
      if missing and remove the temporary directories of saves that never finished.
      Otherwise the manager only reads: a save in progress (another process writing
      the same run, possibly on other hosts) is left alone.
  """
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, enable_async_checkpointing=asynchronous, create=create,
      cleanup_tmp_directories=create, read_only=not create)
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


# Fields that define the networks: a checkpoint cannot be resumed when any differs...
MODEL_FIELDS = ("model", "image_size")
# ... except these, which change how the same networks are computed, not what they are.
COMPATIBLE_FIELDS = ("model.dtype", "model.batch_norm_group_size", "model.remat")


class IncompatibleCheckpointError(ValueError):
  """The workdir's checkpoint was written with a different model configuration."""


def _plain(config: ml_collections.ConfigDict | dict) -> dict:
  if isinstance(config, ml_collections.ConfigDict):
    return json.loads(config.to_json_best_effort())
  return json.loads(json.dumps(config))


def _flatten(tree: Any, prefix: str) -> dict[str, Any]:
  if isinstance(tree, dict):
    flat = {}
    for key, value in tree.items():
      flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat
  return {prefix: tree}


def config_differences(saved: ml_collections.ConfigDict | dict,
                       current: ml_collections.ConfigDict | dict,
                       fields: Iterable[str] = MODEL_FIELDS) -> list[str]:
  """Human-readable differences between two configurations under ``fields``.

  Returns:
    Lines ``'model.generator.nf: 64 in the checkpoint, 32 now'``, sorted; empty when
    the configurations agree.
  """
  saved, current = _plain(saved), _plain(current)
  lines = []
  for field in fields:
    old = _flatten(saved.get(field), field)
    new = _flatten(current.get(field), field)
    for name in sorted(set(old) | set(new)):
      if name in COMPATIBLE_FIELDS:
        continue
      if old.get(name, "<absent>") != new.get(name, "<absent>"):
        lines.append(f"{name}: {old.get(name, '<absent>')!r} in the checkpoint, "
                     f"{new.get(name, '<absent>')!r} now")
  return lines


class Checkpointer:
  """The checkpoints of one training run.

  Args:
    workdir: the run's directory.
    max_to_keep: how many recent checkpoints to keep.
    asynchronous: save in the background.
  """

  def __init__(self, workdir: str | pathlib.Path, *, max_to_keep: int | None,
               asynchronous: bool = True):
    self.workdir = pathlib.Path(workdir)
    self._manager = open_manager(workdir, max_to_keep=max_to_keep,
                                             asynchronous=asynchronous, create=True)

  def latest_step(self) -> int | None:
    """The newest complete checkpoint's step (None: a fresh run)."""
    return self._manager.latest_step()

  def check_compatible(self, config: ml_collections.ConfigDict) -> None:
    """Raises :class:`IncompatibleCheckpointError` if the newest checkpoint's model differs."""
    step = self.latest_step()
    if step is None:
      return
    saved = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    differences = config_differences(saved.config, config)
    if differences:
      raise IncompatibleCheckpointError(
          f"the checkpoint of step {step} in {checkpoint_directory(self.workdir)} "
          f"was written with a different model configuration:\n  " + "\n  ".join(differences)
          + "\nUse a new --workdir, or the checkpoint's configuration.")

  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """The checkpoint's state, laid out as ``abstract_state`` (ShapeDtypeStructs with shardings)."""
    step = self.latest_step() if step is None else step
    restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored.state

  def save(self, step: int, state: Any, config: ml_collections.ConfigDict, *,
           force: bool = False) -> bool:
    """Starts saving ``state`` as checkpoint ``step``; returns whether a save started."""
    if step in self._manager.all_steps():
      return False
    return self._manager.save(
        step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                      config=ocp.args.JsonSave(_plain(config))),
        force=force)

  def wait_until_finished(self) -> None:
    """Blocks until every started save is complete on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
