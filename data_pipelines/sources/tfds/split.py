"""Opening a split of a TFDS build of `builder.TalkingHeadVideos` and reading its records.

The records are found under ``root/talking_head_videos/<N>px/<version>`` (the newest
version). A `RecordVideo` picks a video's records through the `RecordIndex` and reads
them with positional reads on the numpy side; parsing and image decoding run as
TensorFlow ops (`TfdsSplit.decode`) in parallel ``map`` calls, and only the frames that
are needed are decoded.
"""

from __future__ import annotations

import os
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from mcc_jax.data_pipelines.bad_files import EmptyDatasetError
from mcc_jax.data_pipelines.pair_sampling import sample_frame_pair
from mcc_jax.data_pipelines.readers.video import Video
from mcc_jax.data_pipelines.sources.tfds.builder import BUILDER_NAME
from mcc_jax.data_pipelines.sources.tfds.record_index import RecordFiles, RecordIndex


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
  """One split of a build: its features, record index and open record files.

  Attributes:
    directory: the build's directory (holding ``dataset_info.json``).
    features: the build's feature dictionary (decodes records).
    index: where each record of the split lives.
    files: positional reads of the split's records.
    image_size: frame side of the build.
    video_names: the split's video names, sorted; at most ``max_videos``.
    persons: the person of each of those videos, as stored in the records.
  """

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
    self.directory = os.fspath(builder.data_dir)
    self.features = builder.info.features
    self.index = RecordIndex.load(builder, split)
    self.files = RecordFiles(self.index)
    self.image_size = image_size
    self.video_names = self.index.video_names[:max_videos]
    self.persons = self.index.persons[:max_videos]
    if not self.video_names:
      raise EmptyDatasetError(f"split {split!r} of {builder.data_dir} has no video")

  def open_video(self, number: int) -> RecordVideo:
    """Returns the reader of one video's records.

    Args:
      number: index into `video_names`.

    Returns:
      A `RecordVideo`.
    """
    return RecordVideo(self, number)

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


class RecordVideo(Video):
  """One video of a split as its frame records: readers return serialized examples."""

  def __init__(self, split: TfdsSplit, number: int):
    """Stores where the video's records are.

    Args:
      split: the opened split.
      number: the video's index in ``split.video_names``.
    """
    name = split.video_names[number]
    super().__init__(name, f"{split.directory}:{name}", split.image_size)
    # The person stored in the records (written as `person_id` of the name).
    self.person = split.persons[number]
    self._split = split
    self._records = split.index.records_of_video[number]

  def _read(self, records: np.ndarray) -> np.ndarray:
    return np.asarray([self._split.files.read(r) for r in records], dtype=object)

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """Reads the records of two distinct frames drawn uniformly, earlier frame first.

    Args:
      rng: generator that decides the frame indices.

    Returns:
      The two serialized examples, object ``(2,)``; `TfdsSplit.decode` decodes them.
    """
    return self._read(self._records[sample_frame_pair(rng, len(self._records))])

  def read_all(self) -> np.ndarray:
    """Reads every record of the video in frame order.

    Returns:
      The serialized examples, object ``(T,)``.
    """
    return self._read(self._records)
