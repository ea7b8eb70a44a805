"""Random access to the frame records of a TFDS build.

A TFRecord file is a sequence of ``[length: uint64][crc: uint32][data][crc: uint32]``
entries, so the byte offset of every record follows from the headers alone. The
index maps each record to ``(shard, offset, length)`` and to its video and frame, so
a training pair reads exactly two records with positional reads, and each host reads
only the records of its own videos.

The index is built once after writing (`RecordIndex.scan` reads every record's small
fields) and saved as ``record_index-<split>.npz`` next to ``dataset_info.json``; a
build without it (e.g. copied without the file) is scanned when loaded.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import struct
import threading

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

_LOGGER = logging.getLogger(__name__)

_HEADER_BYTES = 12  # uint64 length + uint32 masked CRC of the length.
_FOOTER_BYTES = 4  # uint32 masked CRC of the data.


def index_path(dataset_dir: str, split: str) -> str:
  """Returns where the index of a split is saved.

  Args:
    dataset_dir: directory holding ``dataset_info.json`` and the shards.
    split: split name.

  Returns:
    ``dataset_dir/record_index-<split>.npz``.
  """
  return os.path.join(os.fspath(dataset_dir), f"record_index-{split}.npz")


def record_offsets(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads the record headers of one TFRecord file.

  Args:
    path: an uncompressed TFRecord file.

  Returns:
    ``(offsets, lengths)``: int64 ``(N,)`` arrays with the byte offset and length of
    each record's data.

  Raises:
    ValueError: if the file ends inside a record.
  """
  offsets, lengths = [], []
  size = tf.io.gfile.stat(path).length
  with tf.io.gfile.GFile(path, "rb") as stream:
    position = 0
    while position < size:
      stream.seek(position)
      header = stream.read(_HEADER_BYTES)
      if len(header) < _HEADER_BYTES:
        raise ValueError(f"{path}: truncated record header at byte {position}")
      (length,) = struct.unpack("<Q", header[:8])
      offsets.append(position + _HEADER_BYTES)
      lengths.append(length)
      position += _HEADER_BYTES + length + _FOOTER_BYTES
    if position != size:
      raise ValueError(f"{path}: the last record runs past the end of the file")
  return np.asarray(offsets, np.int64), np.asarray(lengths, np.int64)


@dataclasses.dataclass(eq=False)
class RecordIndex:
  """Where every frame record of a split lives.

  Attributes:
    shard_paths: the split's TFRecord files.
    shard_sizes: their sizes in bytes (to detect a stale index).
    shard: int32 ``(N,)`` shard of each record.
    offset: int64 ``(N,)`` byte offset of each record's data.
    length: int64 ``(N,)`` byte length of each record's data.
    video: int32 ``(N,)`` video of each record, an index into `video_names`.
    frame_index: int32 ``(N,)`` position of each record's frame in its video.
    video_names: name of each video, sorted.
    persons: person of each video.
  """
  shard_paths: list[str]
  shard_sizes: np.ndarray
  shard: np.ndarray
  offset: np.ndarray
  length: np.ndarray
  video: np.ndarray
  frame_index: np.ndarray
  video_names: list[str]
  persons: list[str]

  def __post_init__(self):
    order = np.lexsort((self.frame_index, self.video))
    counts = np.bincount(self.video, minlength=len(self.video_names))
    # Records of video v, in frame order.
    self.records_of_video = np.split(order, np.cumsum(counts)[:-1])

  @classmethod
  def scan(cls, builder: tfds.core.DatasetBuilder, split: str) -> "RecordIndex":
    """Builds the index by reading every record of a split once.

    Args:
      builder: a prepared (or read-only) builder of `tfds_builder.TalkingHeadVideos`.
      split: split name.

    Returns:
      The index.
    """
    paths = [os.fspath(p) for p in builder.info.splits[split].filepaths]
    features = builder.info.features
    shards, offsets, lengths, names, persons, frames = [], [], [], [], [], []
    for number, path in enumerate(paths):
      shard_offsets, shard_lengths = record_offsets(path)
      shards.append(np.full(len(shard_offsets), number, np.int32))
      offsets.append(shard_offsets)
      lengths.append(shard_lengths)
      records = tf.data.TFRecordDataset(path).map(
          lambda s: features.deserialize_example(
              s, decoders={"frame": tfds.decode.SkipDecoding()}),
          num_parallel_calls=tf.data.AUTOTUNE)
      for batch in records.batch(4096).as_numpy_iterator():
        names.extend(n.decode("utf-8") for n in batch["video_name"])
        persons.extend(p.decode("utf-8") for p in batch["person"])
        frames.append(batch["frame_index"].astype(np.int32))
    video_names = sorted(set(names))
    number_of = {name: i for i, name in enumerate(video_names)}
    person_of = dict(zip(names, persons))
    return cls(
        shard_paths=paths,
        shard_sizes=np.asarray([tf.io.gfile.stat(p).length for p in paths], np.int64),
        shard=np.concatenate(shards) if shards else np.zeros(0, np.int32),
        offset=np.concatenate(offsets) if offsets else np.zeros(0, np.int64),
        length=np.concatenate(lengths) if lengths else np.zeros(0, np.int64),
        video=np.asarray([number_of[n] for n in names], np.int32),
        frame_index=np.concatenate(frames) if frames else np.zeros(0, np.int32),
        video_names=video_names,
        persons=[person_of[n] for n in video_names])

  def save(self, path: str) -> None:
    """Writes the index as an ``.npz`` file (shard paths stored by base name).

    Args:
      path: where to write, normally `index_path(...)`.
    """
    # zipfile needs a seekable, readable stream, which GFile is not in write mode.
    buffer = io.BytesIO()
    np.savez(buffer, shard_names=np.asarray([os.path.basename(p) for p in
                                               self.shard_paths]),
               shard_sizes=self.shard_sizes, shard=self.shard, offset=self.offset,
               length=self.length, video=self.video, frame_index=self.frame_index,
               video_names=np.asarray(self.video_names, dtype=str),
               persons=np.asarray(self.persons, dtype=str))
    with tf.io.gfile.GFile(path, "wb") as stream:
      stream.write(buffer.getvalue())

  @classmethod
  def load(cls, builder: tfds.core.DatasetBuilder, split: str) -> "RecordIndex":
    """Loads the saved index of a split, or scans the records if it is missing/stale.

    Args:
      builder: a read-only builder of the dataset.
      split: split name.

    Returns:
      The index.
    """
    path = index_path(builder.data_dir, split)
    paths = [os.fspath(p) for p in builder.info.splits[split].filepaths]
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path, "rb") as stream:
        saved = dict(np.load(io.BytesIO(stream.read()), allow_pickle=False))
      sizes = np.asarray([tf.io.gfile.stat(p).length for p in paths], np.int64)
      if ([os.path.basename(p) for p in paths] == saved["shard_names"].tolist()
          and np.array_equal(sizes, saved["shard_sizes"])):
        return cls(shard_paths=paths, shard_sizes=sizes, shard=saved["shard"],
                   offset=saved["offset"], length=saved["length"], video=saved["video"],
                   frame_index=saved["frame_index"],
                   video_names=saved["video_names"].tolist(),
                   persons=saved["persons"].tolist())
      _LOGGER.warning("%s does not match the records; rescanning them", path)
    else:
      _LOGGER.warning("%s is missing; scanning the %s records once (rebuild with "
                      "`mcc-jax build-tfds` to save the index)", path, split)
    return cls.scan(builder, split)


class RecordFiles:
  """Positional reads of records; safe to use from many threads at once."""

  def __init__(self, index: RecordIndex):
    """Opens the shards of an index.

    Args:
      index: the split's index.
    """
    self._index = index
    self._local = all("://" not in p for p in index.shard_paths)
    self._descriptors = None
    self._lock = threading.Lock()

  def _local_descriptors(self) -> list[int]:
    with self._lock:
      if self._descriptors is None:
        self._descriptors = [os.open(p, os.O_RDONLY) for p in self._index.shard_paths]
      return self._descriptors

  def read(self, record: int) -> bytes:
    """Returns the serialized example of one record.

    Args:
      record: record number in the index.

    Returns:
      The record's bytes.

    Raises:
      OSError: if the read comes back short (file changed or truncated).
    """
    shard = int(self._index.shard[record])
    offset, length = int(self._index.offset[record]), int(self._index.length[record])
    if self._local:
      # os.pread has no shared file position, so threads need no locking.
      data = os.pread(self._local_descriptors()[shard], length, offset)
    else:
      with tf.io.gfile.GFile(self._index.shard_paths[shard], "rb") as stream:
        stream.seek(offset)
        data = stream.read(length)
    if len(data) != length:
      raise OSError(f"{self._index.shard_paths[shard]}: short read of record {record} at "
                    f"byte {offset} ({len(data)} of {length} bytes)")
    return data

  def close(self) -> None:
    """Closes the shard files (reads reopen them)."""
    with self._lock:
      for descriptor in self._descriptors or []:
        os.close(descriptor)
      self._descriptors = None

  def __del__(self):
    self.close()
