"""Loading a TFDS build of `tfds_builder.TalkingHeadVideos` for training and evaluation.

The records are found under ``root/talking_head_videos/<N>px/<version>`` (the newest
version). Readers pick records through the `RecordIndex` and read them with
positional reads on the numpy side; parsing and image decoding run as TensorFlow ops
in parallel ``map`` calls, and only the frames that are needed are decoded.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipelines.bad_files import EmptyDatasetError
from data_pipelines.pair_sampling import PairSampler, element_rng, sample_frame_pair
from data_pipelines.sources.tfds.record_index import RecordFiles, RecordIndex
from data_pipelines.shutdown_guard import GuardedReader
from data_pipelines.sources.tfds.builder import BUILDER_NAME


def dataset_dir(root: str, image_size: int) -> str:
  """Finds the newest build of a frame size.

  Args:
    root: the TFDS data directory (``datasets.root``).
    image_size: frame side of the build.

  Returns:
    ``root/talking_head_videos/<image_size>px/<newest version>``.

  Raises:
    FileNotFoundError: naming the directory that was expected and how to create it.
  """
  base = os.path.join(root, BUILDER_NAME, f"{image_size}px")
  versions = []
  if tf.io.gfile.isdir(base):
    for entry in tf.io.gfile.listdir(base):
      entry = entry.rstrip("/")
      if tf.io.gfile.exists(os.path.join(base, entry, "dataset_info.json")):
        try:
          versions.append((tfds.core.Version(entry), entry))
        except ValueError:
          continue
  if not versions:
    raise FileNotFoundError(
        f"no TFDS build of {image_size}x{image_size} frames under datasets.root {root!r}: "
        f"expected {base}/<version>/dataset_info.json; create it with `mcc-jax build-tfds "
        f"--root <folder tree> --output {root} --image-size {image_size}`")
  return os.path.join(base, max(versions)[1])


class TfdsSplit:
  """One split of a build: its features, record index and open record files."""

  def __init__(self, root: str, split: str, image_size: int,
               max_videos: int | None = None):
    """Opens a split.

    Args:
      root: the TFDS data directory.
      split: split name.
      image_size: frame side of the build.
      max_videos: keep only the first `max_videos` videos (by name).

    Raises:
      FileNotFoundError: if there is no build of that size.
      EmptyDatasetError: if the build has no such split or it is empty.
    """
    builder = tfds.builder_from_directory(dataset_dir(root, image_size))
    if split not in builder.info.splits:
      raise EmptyDatasetError(f"the TFDS build in {builder.data_dir} has no split "
                              f"{split!r}; it has {sorted(builder.info.splits)}")
    self.features = builder.info.features
    self.index = RecordIndex.load(builder, split)
    self.files = RecordFiles(self.index)
    self.image_size = image_size
    self.video_names = self.index.video_names[:max_videos]
    self.persons = self.index.persons[:max_videos]
    if not self.video_names:
      raise EmptyDatasetError(f"split {split!r} of {builder.data_dir} has no video")

  def decode(self, serialized: tf.Tensor) -> tf.Tensor:
    """Parses and decodes frame records (graph op).

    Args:
      serialized: string ``(K,)`` serialized examples.

    Returns:
      uint8 ``(K, S, S, 3)`` frames.
    """
    size = self.image_size

    def decode_one(record):
      return self.features.deserialize_example(record)["frame"]

    count = serialized.shape[0]
    if count is not None:
      # A fixed, small count (a pair) unrolls cheaper than a loop.
      return tf.stack([decode_one(serialized[i]) for i in range(count)])
    frames = tf.map_fn(decode_one, serialized,
                       fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))
    frames.set_shape([None, size, size, 3])
    return frames


class RecordPairReader:
  """Reads the two records of one training element (numpy side)."""

  def __init__(self, split: TfdsSplit, videos: Sequence[int], sampler: PairSampler,
               seed: int):
    """Stores what the reader needs.

    Args:
      split: the opened split.
      videos: this host's video numbers (indices into ``split.video_names``).
      sampler: maps items to positions in `videos`.
      seed: pipeline seed.
    """
    self._split = split
    self._videos = list(videos)
    self._sampler = sampler
    self._seed = seed

  def __call__(self, counter: np.int64, item: np.int64) -> tuple[np.bool_, np.ndarray]:
    """Reads one element.

    Args:
      counter: element counter (seeds the choices).
      item: person or video index of the element.

    Returns:
      ``(ok, records)``: always ok, and the two serialized examples (object ``(2,)``).
    """
    rng = element_rng(self._seed, counter)
    video = self._videos[self._sampler.video_for_item(int(item), rng)]
    records = self._split.index.records_of_video[video]
    pair = records[sample_frame_pair(rng, len(records))]
    return np.True_, np.asarray([self._split.files.read(r) for r in pair], dtype=object)


class RecordVideoReader:
  """Reads every record of one video, in frame order (numpy side)."""

  def __init__(self, split: TfdsSplit):
    """Stores the split.

    Args:
      split: the opened split.
    """
    self._split = split

  def __call__(self, video: np.int64) -> tuple[np.bool_, np.ndarray]:
    """Reads one video.

    Args:
      video: video number.

    Returns:
      ``(ok, records)``: always ok, and the serialized examples (object ``(T,)``).
    """
    records = self._split.index.records_of_video[int(video)]
    return np.True_, np.asarray([self._split.files.read(r) for r in records], dtype=object)


def read_record_pairs(items: tf.data.Dataset, reader: RecordPairReader, split: TfdsSplit
                      ) -> tf.data.Dataset:
  """Reads and decodes the pair of each item.

  Args:
    items: dataset of ``(counter, item)``.
    reader: the pair reader.
    split: the opened split (for decoding).

  Returns:
    Dataset of ``(counter, uint8 (2, S, S, 3))``.
  """
  guarded = GuardedReader(reader, stopped_result=(np.False_, np.asarray([b"", b""], object)))

  def read(counter, item):
    stopped, _, records = tf.numpy_function(
        guarded, [counter, item], [tf.bool, tf.bool, tf.string], name="read_records")
    stopped.set_shape([])
    records.set_shape([2])
    return stopped, counter, records

  pairs = items.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  pairs = pairs.take_while(lambda stopped, counter, records: tf.logical_not(stopped))
  return pairs.map(lambda stopped, counter, records: (counter, split.decode(records)),
                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def read_record_videos(videos: Sequence[int], reader: RecordVideoReader,
                       split: TfdsSplit) -> tf.data.Dataset:
  """Reads and decodes whole videos in order.

  Args:
    videos: video numbers to read.
    reader: the video reader.
    split: the opened split (for decoding).

  Returns:
    Dataset of ``(video_index, uint8 (T, S, S, 3))``.
  """
  guarded = GuardedReader(reader, stopped_result=(np.False_, np.asarray([], object)))

  def read(video):
    stopped, _, records = tf.numpy_function(
        guarded, [video], [tf.bool, tf.bool, tf.string], name="read_video_records")
    stopped.set_shape([])
    records.set_shape([None])
    return stopped, tf.cast(video, tf.int32), records

  numbers = tf.data.Dataset.from_tensor_slices(np.asarray(videos, np.int64))
  records = numbers.map(read, num_parallel_calls=2, deterministic=True)
  records = records.take_while(lambda stopped, video, records: tf.logical_not(stopped))
  return records.map(lambda stopped, video, records: (video, split.decode(records)),
                     num_parallel_calls=2, deterministic=True)
