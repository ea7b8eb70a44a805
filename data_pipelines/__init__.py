"""Input pipelines of mcc-jax: tf.data streams of (source, driving) frame pairs.

Importing this package (or ``data_pipelines.config``) does not import TensorFlow:
model code and configuration files only need the ``datasets`` block. The pipeline
entry points are loaded on first use.

Public API:
  datasets_config, validate_datasets_config: the ``datasets`` configuration block.
  build_train_pipeline, build_eval_pipeline, eval_video_names: pipelines for any
    dataset kind (``datasets.name``).
  sources.get, sources.names: the dataset kinds, one module each in
    ``data_pipelines/sources/`` (``folder``, ``tfds``, ``sample``, ``synthetic``).
  value_table: the float32 value of each uint8 level in ``datasets.value_range``
    (the pipelines deliver uint8 frames; the trainer normalises on the device).
  to_global_batch, global_batches: host-local batches to global ``jax.Array``s.
  build_tfds_dataset: convert a folder tree into TFRecords.
  scan_dataset: check every video of a folder tree (``mcc-jax check-data``).
  BadFileLog, BadVideoError, EmptyDatasetError, TooManyBadFilesError: bad-input
    handling.
"""

from __future__ import annotations

import importlib

from mcc_jax.data_pipelines import sources
from mcc_jax.data_pipelines.config import datasets_config, validate_datasets_config

from mcc_jax import extras

# Public name -> module defining it, imported when the name is first used.
_LAZY_ATTRIBUTES = {
    "build_train_pipeline": "mcc_jax.data_pipelines.train_pipeline",
    "build_eval_pipeline": "mcc_jax.data_pipelines.eval_pipeline",
    "eval_video_names": "mcc_jax.data_pipelines.eval_pipeline",
    "value_table": "mcc_jax.data_pipelines.pixel_values",
    "to_global_batch": "mcc_jax.data_pipelines.global_arrays",
    "global_batches": "mcc_jax.data_pipelines.global_arrays",
    "build_tfds_dataset": "mcc_jax.data_pipelines.sources.tfds.builder",
    "scan_dataset": "mcc_jax.data_pipelines.data_check",
    "BadFileLog": "mcc_jax.data_pipelines.bad_files",
    "BadVideoError": "mcc_jax.data_pipelines.bad_files",
    "EmptyDatasetError": "mcc_jax.data_pipelines.bad_files",
    "TooManyBadFilesError": "mcc_jax.data_pipelines.bad_files",
}

# Lazily loaded names that need no more than the core (NumPy and JAX).
_CORE_ATTRIBUTES = {"value_table", "to_global_batch", "global_batches", "BadFileLog",
                    "BadVideoError", "EmptyDatasetError", "TooManyBadFilesError"}

__all__ = ["datasets_config", "validate_datasets_config", "sources", *_LAZY_ATTRIBUTES]


def __getattr__(name: str):
  if name in _LAZY_ATTRIBUTES:
    if name not in _CORE_ATTRIBUTES:
      extras.require("data", f"mcc_jax.data_pipelines.{name}")
    return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
  raise AttributeError(f"module 'mcc_jax.data_pipelines' has no attribute {name!r}")


def __dir__() -> list[str]:
  return sorted(__all__)
