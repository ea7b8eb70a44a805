"""The tf.data evaluation pipeline for the reconstruction protocol.

Every test video is played in order, frame by frame; the first frame of each video is
the source for all its frames (frame 0 included, which the model should reproduce
exactly). Batches hold consecutive frames and may span video boundaries; each element
carries its ``video_index`` and ``frame_index``. The last batch is padded to the full
batch size and ``mask`` marks the real elements, so a jitted evaluation step sees one
shape only.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from data_pipelines.augment import to_value_range
from data_pipelines.bad_files import BadFileLog, BadVideoError
from data_pipelines.shutdown_guard import GuardedReader
from data_pipelines.readers.video import Video

AUTOTUNE = tf.data.AUTOTUNE


class VideoReader:
  """Reads whole videos by index from `Video`s (numpy side)."""

  def __init__(self, videos: Mapping[int, Video], *, image_size: int,
               skip_bad_files: bool, bad_file_log: BadFileLog):
    """Stores what the reader needs.

    Args:
      videos: the videos this reader may be asked for, by video index.
      image_size: side of the frames.
      skip_bad_files: drop unreadable videos instead of raising.
      bad_file_log: where dropped videos are recorded.
    """
    self._videos = dict(videos)
    self._skip_bad_files = skip_bad_files
    self._log = bad_file_log
    self._empty = np.zeros((0, image_size, image_size, 3), np.uint8)

  def __call__(self, index: np.int64) -> tuple[np.bool_, np.ndarray]:
    """Reads one video.

    Args:
      index: video index.

    Returns:
      ``(ok, frames)``: whether the video was read, and uint8 ``(T, S, S, 3)``
      frames (no frames when not ok).

    Raises:
      BadVideoError: for an unreadable video unless bad files are skipped.
    """
    try:
      return np.True_, self._videos[int(index)].read_all()
    except BadVideoError as error:
      if not self._skip_bad_files:
        raise
      self._log.record(error)
      return np.False_, self._empty


def read_videos(video_indices: Sequence[int], reader, image_size: int
                ) -> tf.data.Dataset:
  """Reads whole videos in order, dropping the ones the reader rejects.

  Args:
    video_indices: the videos to read, in order.
    reader: ``index -> (ok, uint8 (T, S, S, 3))``, e.g. a `VideoReader`.
    image_size: ``S``.

  Returns:
    Dataset of ``(video_index, frames)``: int32 scalar and uint8 ``(T, S, S, 3)``.
  """
  guarded = GuardedReader(
      reader, stopped_result=(np.False_, np.zeros((0, image_size, image_size, 3), np.uint8)))

  def read(index):
    stopped, ok, frames = tf.numpy_function(
        guarded, [index], [tf.bool, tf.bool, tf.uint8], name="read_video")
    stopped.set_shape([])
    ok.set_shape([])
    frames.set_shape([None, image_size, image_size, 3])
    return stopped, ok, tf.cast(index, tf.int32), frames

  indices = tf.data.Dataset.from_tensor_slices(np.asarray(video_indices, np.int64))
  # Whole videos can be large, so only a couple are decoded ahead.
  videos = indices.map(read, num_parallel_calls=2, deterministic=True)
  videos = videos.take_while(lambda stopped, ok, index, frames: tf.logical_not(stopped))
  videos = videos.filter(lambda stopped, ok, index, frames: ok)
  return videos.map(lambda stopped, ok, index, frames: (index, frames))


def frames_to_batches(videos: tf.data.Dataset, batch_size: int,
                      value_range: Sequence[float]) -> tf.data.Dataset:
  """Turns whole videos into padded batches of (source, driving) frames.

  Args:
    videos: dataset of ``(video_index, uint8 (T, S, S, 3))``.
    batch_size: elements per batch.
    value_range: ``(low, high)`` of the float frames.

  Returns:
    Dataset of dicts with ``source`` and ``driving`` (float32 ``(B, S, S, 3)``),
    ``video_index`` and ``frame_index`` (int32 ``(B,)``) and ``mask`` (bool ``(B,)``,
    False for padding).
  """
  def frames_of(video_index, frames):
    count = tf.shape(frames)[0]
    per_frame = tf.data.Dataset.from_tensor_slices(
        {"driving": frames, "frame_index": tf.range(count, dtype=tf.int32)})
    source = frames[0]
    return per_frame.map(lambda e: {"source": source, "driving": e["driving"],
                                    "video_index": video_index,
                                    "frame_index": e["frame_index"]})

  def normalise(element):
    element = dict(element)
    for key in ("source", "driving"):
      element[key] = to_value_range(
          tf.image.convert_image_dtype(element[key], tf.float32), value_range)
    return element

  def pad(batch):
    count = tf.shape(batch["driving"])[0]
    padded = {}
    for key, value in batch.items():
      paddings = [[0, batch_size - count]] + [[0, 0]] * (value.shape.rank - 1)
      padded[key] = tf.pad(value, paddings)
      padded[key].set_shape([batch_size] + value.shape[1:].as_list())
    padded["mask"] = tf.range(batch_size) < count
    return padded

  elements = videos.flat_map(frames_of)
  elements = elements.map(normalise, num_parallel_calls=AUTOTUNE, deterministic=True)
  batches = elements.batch(batch_size, drop_remainder=False).map(pad)
  options = tf.data.Options()
  options.deterministic = True
  return batches.with_options(options).prefetch(AUTOTUNE)
