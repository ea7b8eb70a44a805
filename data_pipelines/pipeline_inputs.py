"""What both pipeline entry points do first: check their arguments and open the split.

The split is opened through its dataset kind (`data_pipelines.sources.get`), so the
pipelines never look at the kind's name.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from mcc_jax.data_pipelines import sources
from mcc_jax.data_pipelines.bad_files import BadFileLog
from mcc_jax.data_pipelines.config import validate_datasets_config
from mcc_jax.data_pipelines.sources.base import DatasetSource


@dataclasses.dataclass(frozen=True)
class PipelineInputs:
  """A listed split and the host that reads it.

  Attributes:
    source: the split, listed (no video opened).
    process_index: this host.
    process_count: number of hosts.
    bad_file_log: where skipped videos are recorded.
  """
  source: DatasetSource
  process_index: int
  process_count: int
  bad_file_log: BadFileLog


def _host(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # Only when the caller leaves the host to JAX.
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  return int(process_index), int(process_count)


def check_batch_size(batch_size: int) -> None:
  """Raises unless `batch_size` is a positive integer.

  Args:
    batch_size: elements per batch.

  Raises:
    ValueError: naming the value.
  """
  if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def open_pipeline_inputs(config: ml_collections.ConfigDict, split: str, batch_size: int,
                         process_index: int | None, process_count: int | None,
                         bad_file_log: BadFileLog | None) -> PipelineInputs:
  """Checks a pipeline's arguments, finds the host and lists the split.

  Args:
    config: a ``datasets`` block.
    split: the split the pipeline reads.
    batch_size: elements per batch.
    process_index: this host; ``jax.process_index()`` if None.
    process_count: number of hosts; ``jax.process_count()`` if None.
    bad_file_log: where skipped videos are recorded; a fresh log, reported through
      ``logging``, if None.

  Returns:
    The `PipelineInputs`.

  Raises:
    ValueError: for an invalid config or batch size.
    FileNotFoundError: for a missing root, split or build.
    EmptyDatasetError: for a split without videos.
  """
  validate_datasets_config(config)
  check_batch_size(batch_size)
  process_index, process_count = _host(process_index, process_count)
  if bad_file_log is None:
    bad_file_log = BadFileLog(f"{split} split of the {config.name!r} dataset")
  source = sources.get(config.name)(config, split)
  return PipelineInputs(source, process_index, process_count, bad_file_log)
