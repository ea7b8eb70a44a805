"""Saving and restoring the networks' variables (an orbax checkpoint plus its config).

A model checkpoint is a directory holding

* ``variables/``: an orbax checkpoint of ``{'generator': {...}, 'motion_estimator':
  {...}, 'discriminator': {...}}`` (each a Flax variables dict; the discriminator is
  optional), and
* ``config.json``: the configuration the networks were built from.

It is what ``mcc-jax convert-official`` writes and what inference loads.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

VARIABLES = "variables"
CONFIG = "config.json"


def save_model_checkpoint(directory: str | pathlib.Path, variables: dict[str, Any],
                          config: ml_collections.ConfigDict, *, overwrite: bool = False) -> None:
  """Writes ``variables`` and ``config`` to ``directory``.

  Args:
    directory: target directory (created).
    variables: network name -> Flax variables (numpy or jax arrays).
    config: the configuration the networks were built from.
    overwrite: replace an existing checkpoint instead of failing.

  Raises:
    FileExistsError: the directory already holds a checkpoint and ``overwrite`` is False.
  """
  directory = pathlib.Path(directory).resolve()
  target = directory / VARIABLES
  if target.exists() and not overwrite:
    raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it")
  directory.mkdir(parents=True, exist_ok=True)
  tree = jax.tree.map(np.asarray, variables)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(target, tree, force=overwrite)
  (directory / CONFIG).write_text(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def load_model_checkpoint(directory: str | pathlib.Path,
                          target: dict[str, Any] | None = None
                          ) -> tuple[dict[str, Any], ml_collections.ConfigDict]:
  """Reads a checkpoint written by :func:`save_model_checkpoint`.

  Args:
    directory: the checkpoint directory.
    target: optional tree of arrays or ``jax.ShapeDtypeStruct`` (e.g. with shardings)
      to restore into; by default arrays come back as stored.

  Returns:
    (variables, config).

  Raises:
    FileNotFoundError: naming what is missing.
  """
  directory = pathlib.Path(directory).resolve()
  for name in (VARIABLES, CONFIG):
    if not (directory / name).exists():
      raise FileNotFoundError(f"{directory} is not a model checkpoint: {name} is missing")
  with ocp.StandardCheckpointer() as checkpointer:
    variables = checkpointer.restore(directory / VARIABLES, target)
  config = ml_collections.ConfigDict(json.loads((directory / CONFIG).read_text()))
  return variables, config
