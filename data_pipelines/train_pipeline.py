"""The tf.data training pipeline: an endless, batched stream of (source, driving) pairs.

`build_train_pipeline` gives each host its share of the split's videos (decided from
the video names alone, so a host never opens another host's videos), opens them
through the dataset kind (`data_pipelines.sources`) and chains the stages:

1. `item_stream`: epochs of items (persons with id sampling, videos otherwise), each
   epoch a fresh permutation, numbered by a running element counter.
2. `read_pairs`: a `VideoPairReader` turns ``(counter, item)`` into a pair of frames as
   the kind stores them: it picks the video and the two frames with a generator
   seeded by ``(seed, counter)``; kinds that decode in the graph are decoded next.
   Readers run in parallel; ``deterministic=True`` keeps the order, so the stream
   depends only on the seed.
3. `finish_pairs`: augmentation (seeded by ``(seed, counter)`` too), conversion to the
   value range, batching and prefetching.

Unreadable videos either stop the pipeline with an error naming the file or, with
``skip_bad_files``, are dropped, counted and never read again. When every video of a
host has turned out bad the reader raises instead of looping forever.
"""

from __future__ import annotations

import threading
from typing import Callable, Mapping, Sequence

import ml_collections
import numpy as np
import tensorflow as tf

from data_pipelines.augment import augment_pair, to_value_range
from data_pipelines.bad_files import BadFileLog, BadVideoError, EmptyDatasetError
from data_pipelines.pair_sampling import PairSampler, element_rng, host_seed, host_share
from data_pipelines.pipeline_inputs import open_pipeline_inputs
from data_pipelines.readers.video import Video
from data_pipelines.shutdown_guard import GuardedReader
from data_pipelines.sources.base import DatasetSource, StoredFrame

AUTOTUNE = tf.data.AUTOTUNE


def item_stream(num_items: int, seed: int, shuffle: bool) -> tf.data.Dataset:
  """Endless epochs of item indices with a running counter.

  Args:
    num_items: items per epoch.
    seed: pipeline seed; epoch ``e`` is permuted with the stateless seed ``(seed, e)``.
    shuffle: permute each epoch (True) or visit items in order (False).

  Returns:
    Dataset of ``(counter, item)`` int64 scalars; counters are 0, 1, 2, ...
  """
  def epoch(epoch_index: tf.Tensor) -> tf.data.Dataset:
    items = tf.range(num_items, dtype=tf.int64)
    if shuffle:
      keys = tf.random.stateless_uniform(
          [num_items], tf.stack([tf.constant(seed, tf.int64), epoch_index]))
      items = tf.gather(items, tf.argsort(keys))
    return tf.data.Dataset.from_tensor_slices(items)

  return tf.data.Dataset.counter().flat_map(epoch).enumerate()


class VideoPairReader:
  """Reads the pair of one element from a list of `Video`s (numpy side)."""

  def __init__(self, videos: Sequence[Video], sampler: PairSampler, seed: int,
               stored_frame: StoredFrame, *, skip_bad_files: bool,
               bad_file_log: BadFileLog):
    """Stores what the reader needs.

    Args:
      videos: this host's videos.
      sampler: maps items to videos (built from the same videos).
      seed: pipeline seed.
      stored_frame: what the videos return per frame (a dropped pair returns two
        placeholders).
      skip_bad_files: drop unreadable videos instead of raising.
      bad_file_log: where dropped videos are recorded.
    """
    self._videos = list(videos)
    self._sampler = sampler
    self._seed = seed
    self._skip_bad_files = skip_bad_files
    self._log = bad_file_log
    self._bad_videos: set[int] = set()
    self._lock = threading.Lock()
    self._empty = stored_frame.empty(2)

  def __call__(self, counter: np.int64, item: np.int64) -> tuple[np.bool_, np.ndarray]:
    """Reads one element.

    Args:
      counter: element counter (seeds the choices).
      item: person or video index of the element.

    Returns:
      ``(ok, frames)``: whether the pair is valid, and the two frames as the kind
      stores them (uint8 ``(2, S, S, 3)`` for most kinds; placeholders when not ok).

    Raises:
      BadVideoError: for an unreadable video unless bad files are skipped.
      EmptyDatasetError: once every video has turned out bad.
    """
    rng = element_rng(self._seed, counter)
    index = self._sampler.video_for_item(int(item), rng)
    if index in self._bad_videos:
      return np.False_, self._empty
    try:
      return np.True_, self._videos[index].read_pair(rng)
    except BadVideoError as error:
      if not self._skip_bad_files:
        raise
      self._log.record(error)
      with self._lock:
        self._bad_videos.add(index)
        all_bad = len(self._bad_videos) == len(self._videos)
      if all_bad:
        raise EmptyDatasetError(f"all {len(self._videos)} videos of this host are "
                                f"unreadable; last: {error}") from error
      return np.False_, self._empty


def read_pairs(items: tf.data.Dataset, reader: Callable, source: DatasetSource
               ) -> tf.data.Dataset:
  """Runs a numpy pair reader over an item stream, drops invalid pairs and decodes.

  Args:
    items: dataset of ``(counter, item)`` from `item_stream`.
    reader: ``(counter, item) -> (ok, two stored frames)``, e.g. a `VideoPairReader`.
    source: the dataset kind's split: what the reader returns (`stored_frame`) and
      how it becomes frames (`decode`).

  Returns:
    Dataset of ``(counter, frames)`` with uint8 ``(2, S, S, 3)`` frames.
  """
  stored = source.stored_frame
  guarded = GuardedReader(reader, stopped_result=(np.False_, stored.empty(2)))

  def read(counter, item):
    stopped, ok, frames = tf.numpy_function(
        guarded, [counter, item], [tf.bool, tf.bool, tf.as_dtype(stored.dtype)],
        name="read_pair")
    stopped.set_shape([])
    ok.set_shape([])
    frames.set_shape((2,) + tuple(stored.shape))
    return stopped, ok, counter, frames

  pairs = items.map(read, num_parallel_calls=AUTOTUNE, deterministic=True)
  pairs = pairs.take_while(lambda stopped, ok, counter, frames: tf.logical_not(stopped))
  pairs = pairs.filter(lambda stopped, ok, counter, frames: ok)
  pairs = pairs.map(lambda stopped, ok, counter, frames: (counter, frames))
  if source.decodes_in_graph:
    # Parsing and image decoding are the costly part: parallel, outside the GIL.
    pairs = pairs.map(lambda counter, frames: (counter, source.decode(frames)),
                      num_parallel_calls=AUTOTUNE, deterministic=True)
  return pairs


def finish_pairs(pairs: tf.data.Dataset, batch_size: int, seed: int, *,
                 value_range: Sequence[float], horizontal_flip: bool, time_flip: bool,
                 color_jitter: bool, jitter: Mapping[str, float]) -> tf.data.Dataset:
  """Augments, normalises, batches and prefetches pairs.

  Args:
    pairs: dataset of ``(counter, uint8 (2, S, S, 3))``.
    batch_size: pairs per batch on this host.
    seed: pipeline seed (augmentation uses the stateless seed ``(seed, counter)``).
    value_range: ``(low, high)`` of the output.
    horizontal_flip: random left-right flip of both frames.
    time_flip: random swap of source and driving.
    color_jitter: FOMM colour jitter.
    jitter: colour-jitter strengths.

  Returns:
    Dataset of ``{'source', 'driving'}`` float32 ``(batch_size, S, S, 3)`` batches.
  """
  jitter = dict(jitter)

  def augment(counter, frames):
    element_seed = tf.stack([tf.constant(seed, tf.int64), counter])
    frames = augment_pair(frames, element_seed, horizontal_flip=horizontal_flip,
                          time_flip=time_flip, use_color_jitter=color_jitter,
                          jitter=jitter)
    frames = to_value_range(frames, value_range)
    return {"source": frames[0], "driving": frames[1]}

  batches = pairs.map(augment, num_parallel_calls=AUTOTUNE, deterministic=True)
  batches = batches.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE,
                          deterministic=True)
  options = tf.data.Options()
  options.deterministic = True
  return batches.with_options(options).prefetch(AUTOTUNE)


def build_train_pipeline(config: ml_collections.ConfigDict, batch_size: int, *,
                         seed: int, process_index: int | None = None,
                         process_count: int | None = None,
                         bad_file_log: BadFileLog | None = None) -> tf.data.Dataset:
  """Builds the endless stream of training batches of this host.

  Args:
    config: a ``datasets`` block (see `config.datasets_config`).
    batch_size: pairs per batch on this host.
    seed: the stream is a deterministic function of the seed (and of the host).
    process_index: this host; ``jax.process_index()`` if None.
    process_count: number of hosts; ``jax.process_count()`` if None.
    bad_file_log: where skipped videos are recorded (with ``skip_bad_files``); a
      fresh log, reported through ``logging``, if None.

  Returns:
    Dataset of ``{'source', 'driving'}``: float32 ``(batch_size, S, S, 3)`` in
    ``config.value_range``, both frames of a pair from the same video. See
    `global_arrays.to_global_batch` for turning them into global ``jax.Array``s.

  Raises:
    ValueError: for an invalid config or batch size.
    FileNotFoundError: for a missing root or split.
    EmptyDatasetError: for a split (or host share) without usable videos.
    BadVideoError: for a bad video found while opening, unless skipping.
  """
  inputs = open_pipeline_inputs(config, config.train_split, batch_size, process_index,
                                process_count, bad_file_log)
  source = inputs.source
  stream_seed = host_seed(seed, inputs.process_index)
  share = host_share(source.persons, config.id_sampling, inputs.process_index,
                     inputs.process_count)
  videos = list(source.open_videos(share, skip_bad_files=config.skip_bad_files,
                                   bad_file_log=inputs.bad_file_log).values())
  if not videos:
    raise EmptyDatasetError(f"every video of host {inputs.process_index}'s share of the "
                            f"{source.split} split is unusable "
                            f"({inputs.bad_file_log.count} skipped)")
  sampler = PairSampler([v.person for v in videos], config.id_sampling)
  reader = VideoPairReader(videos, sampler, stream_seed, source.stored_frame,
                           skip_bad_files=config.skip_bad_files,
                           bad_file_log=inputs.bad_file_log)
  items = item_stream(sampler.num_items, stream_seed, config.shuffle_videos)
  pairs = read_pairs(items, reader, source)
  return finish_pairs(pairs, batch_size, stream_seed, value_range=config.value_range,
                      horizontal_flip=config.horizontal_flip, time_flip=config.time_flip,
                      color_jitter=config.color_jitter, jitter=config.jitter.to_dict())
