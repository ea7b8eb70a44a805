"""The ``tfds`` dataset kind: TFDS records of a folder tree (``mcc-jax build-tfds``).

``datasets.root`` is the TFDS data directory. `builder` converts a folder tree (one
record per frame), `record_index` stores where each record lives, and `split` opens a
split and reads records. The per-video readers return serialized records, which the
pipelines decode with TensorFlow ops in parallel ``map`` calls (`decode`): parsing and
PNG/JPEG decoding then run outside Python's global lock.

This module imports no TensorFlow (configuration checks import it to read
`TfdsSource.requires_root`); `split` is imported when a split is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ml_collections

from mcc_jax.data_pipelines.sources.base import DatasetSource, StoredFrame

if TYPE_CHECKING:
  import tensorflow as tf

  from mcc_jax.data_pipelines.sources.tfds.split import RecordVideo


class TfdsSource(DatasetSource):
  """A split of a TFDS build; readers return records that `decode` turns into frames."""

  requires_root = True
  decodes_in_graph = True

  def __init__(self, config: ml_collections.ConfigDict, split: str):
    """Loads the split's record index (from the saved file, or by scanning the records).

    Args:
      config: the ``datasets`` block (``root``, ``image_size``, ``max_videos``).
      split: split name.

    Raises:
      FileNotFoundError: if there is no build of ``config.image_size`` under the root.
      EmptyDatasetError: if the build has no such split or it is empty.
    """
    super().__init__(config, split)
    # TensorFlow is imported only here, when a split is opened.
    from mcc_jax.data_pipelines.sources.tfds.split import TfdsSplit
    self._split = TfdsSplit(config.root, split, config.image_size, config.max_videos)

  @property
  def video_names(self) -> list[str]:
    """The split's video names, sorted, from the record index."""
    return list(self._split.video_names)

  @property
  def persons(self) -> list[str]:
    """The person of each video, as stored in its records."""
    return list(self._split.persons)

  def open(self, position: int) -> RecordVideo:
    """See `DatasetSource.open`; reads nothing until a pair or the video is asked for."""
    return self._split.open_video(position)

  @property
  def stored_frame(self) -> StoredFrame:
    """One serialized example per frame."""
    return StoredFrame("string", ())

  def decode(self, stored: tf.Tensor) -> tf.Tensor:
    """Parses and decodes records: uint8 ``(K, S, S, 3)`` (`TfdsSplit.decode`)."""
    return self._split.decode(stored)


DATASET_SOURCE = TfdsSource
