"""Saving and resuming a training run with orbax (see :mod:`mcc_jax.checkpoints`).

* Saves are asynchronous: the step loop goes on while a background thread writes.
* A new start resumes from the newest complete checkpoint of the workdir; a save that
  was interrupted (kill -9, preemption) left only a temporary directory, which orbax
  ignores and cleans up.
* The state is restored into the *current* run's abstract state, whose shardings come
  from the current mesh: a checkpoint saved on 8 devices restores on 1, or on another
  mesh shape.
* The configuration travels with every checkpoint. Resuming with a different model
  (any field under ``config.model``, or the image size) is refused with an error that
  names each differing field; batch size, step budget, logging and the like may change.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Iterable

import ml_collections
import orbax.checkpoint as ocp

from mcc_jax import checkpoints

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
    self._manager = checkpoints.open_manager(workdir, max_to_keep=max_to_keep,
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
          f"the checkpoint of step {step} in {checkpoints.checkpoint_directory(self.workdir)} "
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
