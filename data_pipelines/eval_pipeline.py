"""The tf.data evaluation pipeline for the reconstruction protocol.

Every test video is played in order, frame by frame; the first frame of each video is
the source for all its frames (frame 0 included, which the model should reproduce
exactly). Batches hold consecutive frames and may span video boundaries; each element
carries its ``video_index`` and ``frame_index``. The last batch is padded to the full
batch size and ``mask`` marks the real elements, so a jitted evaluation step sees one
shape only.

`build_eval_pipeline` deals the split's videos out to the hosts (every
``process_count``-th video), opens this host's through the dataset kind
(`data_pipelines.sources`), reads each whole (`read_videos`, decoding in the graph for
kinds that store encoded frames) and batches the frames (`frames_to_batches`). Frames
stay uint8; the evaluation step maps them to the model's range (`value_table`).

The pass is lazy: videos are read as batches are taken, at most `VIDEOS_IN_FLIGHT`
at a time, and at most `BATCHES_AHEAD` batches wait, so host memory is bounded by a
few videos whatever the split's size.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import ml_collections
import numpy as np
import tensorflow as tf

from mcc_jax.data_pipelines import sources
from mcc_jax.data_pipelines.bad_files import BadFileLog, BadVideoError
from mcc_jax.data_pipelines.config import validate_datasets_config
from mcc_jax.data_pipelines.pair_sampling import host_share
from mcc_jax.data_pipelines.pipeline_inputs import open_pipeline_inputs
from mcc_jax.data_pipelines.readers.video import MIN_EVAL_FRAMES, Video, check_frame_count
from mcc_jax.data_pipelines.shutdown_guard import GuardedReader
from mcc_jax.data_pipelines.sources.base import DatasetSource, StoredFrame

AUTOTUNE = tf.data.AUTOTUNE

# Whole videos read (or decoded) at the same time, and batches prepared ahead: what
# bounds the pipeline's memory.
VIDEOS_IN_FLIGHT = 2
BATCHES_AHEAD = 2


class VideoReader:
  """Reads whole videos by index from `Video`s (numpy side)."""

  def __init__(self, videos: Mapping[int, Video], stored_frame: StoredFrame, *,
               skip_bad_files: bool, bad_file_log: BadFileLog):
    """Stores what the reader needs.

    Args:
      videos: the videos this reader may be asked for, by video index.
      stored_frame: what the videos return per frame (a dropped video returns none).
      skip_bad_files: drop unreadable videos instead of raising.
      bad_file_log: where dropped videos are recorded.
    """
    self._videos = dict(videos)
    self._skip_bad_files = skip_bad_files
    self._log = bad_file_log
    self._empty = stored_frame.empty(0)

  def __call__(self, index: np.int64) -> tuple[np.bool_, np.ndarray]:
    """Reads one video.

    Args:
      index: video index.

    Returns:
      ``(ok, frames)``: whether the video was read, and its frames as the kind
      stores them (uint8 ``(T, S, S, 3)`` for most kinds; none when not ok).

    Raises:
      BadVideoError: for an unreadable video, or one of fewer than `MIN_EVAL_FRAMES`
        frames (a source and another frame), unless bad files are skipped.
      TooManyBadFilesError: once the bad share exceeds the configured limit.
    """
    video = self._videos[int(index)]
    try:
      frames = video.read_all()
      check_frame_count(video.path, len(frames), MIN_EVAL_FRAMES, "evaluation")
      return np.True_, frames
    except BadVideoError as error:
      if not self._skip_bad_files:
        raise
      self._log.record(error)
      return np.False_, self._empty


def read_videos(video_indices: Sequence[int], reader, source: DatasetSource
                ) -> tf.data.Dataset:
  """Reads whole videos in order, dropping the ones the reader rejects, and decodes.

  Args:
    video_indices: the videos to read, in order.
    reader: ``index -> (ok, stored frames)``, e.g. a `VideoReader`.
    source: the dataset kind's split: what the reader returns (`stored_frame`) and
      how it becomes frames (`decode`).

  Returns:
    Dataset of ``(video_index, frames)``: int32 scalar and uint8 ``(T, S, S, 3)``.
  """
  stored = source.stored_frame
  guarded = GuardedReader(reader, stopped_result=(np.False_, stored.empty(0)))

  def read(index):
    stopped, ok, frames = tf.numpy_function(
        guarded, [index], [tf.bool, tf.bool, tf.as_dtype(stored.dtype)],
        name="read_video")
    stopped.set_shape([])
    ok.set_shape([])
    frames.set_shape((None,) + tuple(stored.shape))
    return stopped, ok, tf.cast(index, tf.int32), frames

  indices = tf.data.Dataset.from_tensor_slices(np.asarray(video_indices, np.int64))
  # Whole videos can be large, so only a couple are read ahead.
  videos = indices.map(read, num_parallel_calls=VIDEOS_IN_FLIGHT, deterministic=True)
  videos = videos.take_while(lambda stopped, ok, index, frames: tf.logical_not(stopped))
  videos = videos.filter(lambda stopped, ok, index, frames: ok)
  videos = videos.map(lambda stopped, ok, index, frames: (index, frames))
  if source.decodes_in_graph:
    videos = videos.map(lambda index, frames: (index, source.decode(frames)),
                        num_parallel_calls=VIDEOS_IN_FLIGHT, deterministic=True)
  return videos


def frames_to_batches(videos: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
  """Turns whole videos into padded batches of (source, driving) frames.

  Args:
    videos: dataset of ``(video_index, uint8 (T, S, S, 3))``.
    batch_size: elements per batch.

  Returns:
    Dataset of dicts with ``source`` and ``driving`` (uint8 ``(B, S, S, 3)``),
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
  batches = elements.batch(batch_size, drop_remainder=False).map(pad)
  options = tf.data.Options()
  options.deterministic = True
  # Fixed, small buffers only: tf.data's default rewrites would parallelise the maps
  # above and put autotuned prefetch buffers behind them, which read videos ahead
  # (9 instead of 5 here before the first batch of one-video batches was taken).
  options.experimental_optimization.map_parallelization = False
  options.experimental_optimization.inject_prefetch = False
  return batches.with_options(options).prefetch(BATCHES_AHEAD)


def eval_video_names(config: ml_collections.ConfigDict) -> list[str]:
  """Names of the evaluation videos; ``video_index`` in eval batches indexes this list.

  Args:
    config: a ``datasets`` block.

  Returns:
    Video names of ``config.eval_split``, sorted.
  """
  validate_datasets_config(config)
  return list(sources.get(config.name)(config, config.eval_split).video_names)


def build_eval_pipeline(config: ml_collections.ConfigDict, batch_size: int, *,
                        process_index: int | None = None,
                        process_count: int | None = None,
                        bad_file_log: BadFileLog | None = None) -> tf.data.Dataset:
  """Builds one pass over this host's evaluation videos, frame by frame.

  Hosts take every ``process_count``-th video; a host may get none (an empty pass).

  Args:
    config: a ``datasets`` block.
    batch_size: elements per batch.
    process_index: this host; ``jax.process_index()`` if None.
    process_count: number of hosts; ``jax.process_count()`` if None.
    bad_file_log: where skipped videos are recorded (with ``skip_bad_files``).

  Returns:
    A finite dataset of dicts: ``source`` (the video's first frame) and ``driving``
    uint8 ``(batch_size, S, S, 3)``; ``video_index`` (into `eval_video_names`) and
    ``frame_index`` int32 ``(batch_size,)``; ``mask`` bool ``(batch_size,)``, False
    for the padding of the last batch.

  Raises:
    ValueError: for an invalid config or batch size.
    FileNotFoundError: for a missing root or split.
    EmptyDatasetError: for a split without videos.
    BadVideoError: for a bad video found while opening, unless skipping.
  """
  inputs = open_pipeline_inputs(config, config.eval_split, batch_size, process_index,
                                process_count, bad_file_log)
  source = inputs.source
  share = host_share(source.video_names, False, inputs.process_index,
                     inputs.process_count, allow_empty=True)
  inputs.bad_file_log.cover(
      f"{source.split} split of the {config.name!r} dataset, host "
      f"{inputs.process_index} of {inputs.process_count}", len(share),
      config.max_bad_file_share)
  videos = source.open_videos(share, skip_bad_files=config.skip_bad_files,
                              bad_file_log=inputs.bad_file_log)
  reader = VideoReader(videos, source.stored_frame, skip_bad_files=config.skip_bad_files,
                       bad_file_log=inputs.bad_file_log)
  frames = read_videos(sorted(videos), reader, source)
  return frames_to_batches(frames, batch_size)
