"""The tf.data training pipeline: an endless, batched stream of (source, driving) pairs.

`build_train_pipeline` gives each host its share of the split's videos (decided from
the video names alone, so a host never opens another host's videos), opens them
through the dataset kind (`data_pipelines.sources`; opening reads nothing) and chains
the stages:

1. A counter: element ``c = start_batch * batch_size, ...``; batch ``k`` holds
   elements ``k * batch_size`` to ``(k + 1) * batch_size - 1``.
2. `read_pairs`: a `VideoPairReader` turns each counter into a pair of frames as the
   kind stores them: `pair_sampling.ElementSchedule` says which item (person or
   video) element ``c`` visits (epochs of permutations, computed directly for any
   ``c``), a generator seeded by ``(seed, c)`` picks the video and the two frames;
   kinds that decode in the graph are decoded next. Readers run in parallel;
   ``deterministic=True`` keeps the order.
3. `finish_pairs`: augmentation (seeded by ``(seed, c)`` too), batching and
   prefetching. Frames stay uint8; with colour jitter they become float32 in [0, 1].

Element ``c`` is thus a function of the dataset, the seed, the host and ``c`` alone:
the same whatever the number of parallel readers, and a run resumed at batch ``n``
(``start_batch=n``) continues exactly as the uninterrupted stream, without reading the
batches before it.

Unreadable videos either stop the pipeline with an error naming the file or, with
``skip_bad_files``, are recorded in the `BadFileLog` and the element is drawn again
from a generator seeded by ``(seed, c, attempt)``, so every counter still yields one
pair and a bad video does not shift the stream. A video that fails whatever is read
(it cannot be opened or listed, has no frame, its container does not decode) is not
read again; one with a bad frame fails only the elements that draw that frame. When
every video of a host has turned out bad the reader raises instead of looping
forever; when more than ``datasets.max_bad_file_share`` of them have, the log raises.
"""

from __future__ import annotations

import threading
from typing import Callable, Mapping, Sequence

import ml_collections
import numpy as np
import tensorflow as tf

from mcc_jax.data_pipelines.augment import augment_pair
from mcc_jax.data_pipelines.bad_files import (BadFileLog, BadFrameError, BadVideoError,
                                      EmptyDatasetError)
from mcc_jax.data_pipelines.pair_sampling import (ElementSchedule, PairSampler, element_rng,
                                          host_seed, host_share, redraw_rng)
from mcc_jax.data_pipelines.pipeline_inputs import open_pipeline_inputs
from mcc_jax.data_pipelines.readers.video import Video
from mcc_jax.data_pipelines.shutdown_guard import GuardedReader
from mcc_jax.data_pipelines.sources.base import DatasetSource

AUTOTUNE = tf.data.AUTOTUNE


# Draws of one element (the first and its replacements) before the reader gives up;
# a draw of a video already known to be unreadable costs no read.
MAX_DRAWS = 1000


class VideoPairReader:
  """Reads the pair of one element from a list of `Video`s (numpy side)."""

  def __init__(self, videos: Sequence[Video | None], sampler: PairSampler,
               schedule: ElementSchedule, seed: int, *, skip_bad_files: bool,
               bad_file_log: BadFileLog):
    """Stores what the reader needs.

    Args:
      videos: this host's videos; None for one that could not be opened (skipped).
      sampler: maps items to videos (built from the same videos).
      schedule: which item each element visits.
      seed: pipeline seed.
      skip_bad_files: replace the elements of unreadable videos instead of raising.
      bad_file_log: where unreadable videos are recorded.
    """
    self._videos = list(videos)
    self._sampler = sampler
    self._schedule = schedule
    self._seed = seed
    self._skip_bad_files = skip_bad_files
    self._log = bad_file_log
    # Videos that fail whatever is read; skipping them gives what reading would.
    self._unreadable = {i for i, video in enumerate(self._videos) if video is None}
    self._last_error: BadVideoError | None = None
    self._lock = threading.Lock()

  def _draw(self, counter: int, attempt: int) -> tuple[int, np.random.Generator]:
    """The video of one draw of an element and the generator that picks its frames."""
    if attempt == 0:
      rng = element_rng(self._seed, counter)
      item = self._schedule.item(counter)
    else:
      rng = redraw_rng(self._seed, counter, attempt)
      item = int(rng.integers(self._schedule.num_items))
    return self._sampler.video_for_item(item, rng), rng

  def __call__(self, counter: np.int64) -> tuple[np.ndarray]:
    """Reads one element.

    Args:
      counter: element counter (decides the item and seeds the choices).

    Returns:
      ``(frames,)``: the two frames as the kind stores them (uint8 ``(2, S, S, 3)``
      for most kinds).

    Raises:
      BadVideoError: for an unreadable video unless bad files are skipped.
      TooManyBadFilesError: once the bad share exceeds the configured limit.
      EmptyDatasetError: once every video has turned out bad, or after `MAX_DRAWS`
        unreadable draws.
    """
    counter = int(counter)
    for attempt in range(MAX_DRAWS):
      index, rng = self._draw(counter, attempt)
      if self._known_unreadable(index):
        continue
      try:
        return (self._videos[index].read_pair(rng),)
      except BadVideoError as error:
        if not self._skip_bad_files:
          raise
        self._log.record(error)
        if not isinstance(error, BadFrameError):
          with self._lock:
            self._unreadable.add(index)
            self._last_error = error
          self._known_unreadable(index)
    raise EmptyDatasetError(f"element {counter}: no readable pair in {MAX_DRAWS} draws; "
                            f"{self._log.count} bad file(s) so far")

  def _known_unreadable(self, index: int) -> bool:
    """Whether a video is known to fail whatever is read; raises once all are."""
    with self._lock:
      if len(self._unreadable) == len(self._videos):
        raise EmptyDatasetError(f"all {len(self._videos)} videos of this host are "
                                f"unreadable; last: {self._last_error}")
      return index in self._unreadable


def read_pairs(counters: tf.data.Dataset, reader: Callable, source: DatasetSource
               ) -> tf.data.Dataset:
  """Runs a numpy pair reader over element counters and decodes.

  Args:
    counters: dataset of int64 element counters.
    reader: ``counter -> (two stored frames,)``, e.g. a `VideoPairReader`.
    source: the dataset kind's split: what the reader returns (`stored_frame`) and
      how it becomes frames (`decode`).

  Returns:
    Dataset of ``(counter, frames)`` with uint8 ``(2, S, S, 3)`` frames, one per
    counter.
  """
  stored = source.stored_frame
  guarded = GuardedReader(reader, stopped_result=(stored.empty(2),))

  def read(counter):
    stopped, frames = tf.numpy_function(
        guarded, [counter], [tf.bool, tf.as_dtype(stored.dtype)], name="read_pair")
    stopped.set_shape([])
    frames.set_shape((2,) + tuple(stored.shape))
    return stopped, counter, frames

  pairs = counters.map(read, num_parallel_calls=AUTOTUNE, deterministic=True)
  pairs = pairs.take_while(lambda stopped, counter, frames: tf.logical_not(stopped))
  pairs = pairs.map(lambda stopped, counter, frames: (counter, frames))
  if source.decodes_in_graph:
    # Parsing and image decoding are the costly part: parallel, outside the GIL.
    pairs = pairs.map(lambda counter, frames: (counter, source.decode(frames)),
                      num_parallel_calls=AUTOTUNE, deterministic=True)
  return pairs


def finish_pairs(pairs: tf.data.Dataset, batch_size: int, seed: int, *,
                 horizontal_flip: bool, time_flip: bool, color_jitter: bool,
                 jitter: Mapping[str, float]) -> tf.data.Dataset:
  """Augments, batches and prefetches pairs.

  Args:
    pairs: dataset of ``(counter, uint8 (2, S, S, 3))``.
    batch_size: pairs per batch on this host.
    seed: pipeline seed (augmentation uses the stateless seed ``(seed, counter)``).
    horizontal_flip: random left-right flip of both frames.
    time_flip: random swap of source and driving.
    color_jitter: FOMM colour jitter.
    jitter: colour-jitter strengths.

  Returns:
    Dataset of ``{'source', 'driving'}`` ``(batch_size, S, S, 3)`` batches: uint8,
    or float32 in [0, 1] with colour jitter.
  """
  jitter = dict(jitter)

  def augment(counter, frames):
    element_seed = tf.stack([tf.constant(seed, tf.int64), counter])
    frames = augment_pair(frames, element_seed, horizontal_flip=horizontal_flip,
                          time_flip=time_flip, use_color_jitter=color_jitter,
                          jitter=jitter)
    return {"source": frames[0], "driving": frames[1]}

  batches = pairs.map(augment, num_parallel_calls=AUTOTUNE, deterministic=True)
  batches = batches.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE,
                          deterministic=True)
  options = tf.data.Options()
  options.deterministic = True
  return batches.with_options(options).prefetch(AUTOTUNE)


def _check_start_batch(start_batch: int) -> None:
  if (not isinstance(start_batch, (int, np.integer)) or isinstance(start_batch, bool)
      or start_batch < 0):
    raise ValueError(f"start_batch must be a non-negative integer, got {start_batch!r}")


def build_train_pipeline(config: ml_collections.ConfigDict, batch_size: int, *,
                         seed: int, start_batch: int = 0,
                         process_index: int | None = None,
                         process_count: int | None = None,
                         bad_file_log: BadFileLog | None = None) -> tf.data.Dataset:
  """Builds the endless stream of training batches of this host.

  Args:
    config: a ``datasets`` block (see `config.datasets_config`).
    batch_size: pairs per batch on this host.
    seed: the stream is a deterministic function of the seed (and of the host).
    start_batch: the first batch to yield: the stream then yields batches
      ``start_batch, start_batch + 1, ...``, identical to those of the stream started
      at 0, without reading the earlier ones (a resumed run passes its step).
    process_index: this host; ``jax.process_index()`` if None.
    process_count: number of hosts; ``jax.process_count()`` if None.
    bad_file_log: where skipped videos are recorded (with ``skip_bad_files``); a
      fresh log, reported through ``logging``, if None. The pipeline declares this
      host's videos to it (`BadFileLog.cover`) with ``config.max_bad_file_share``.

  Returns:
    Dataset of ``{'source', 'driving'}`` ``(batch_size, S, S, 3)``, both frames of a
    pair from the same video: uint8, or float32 in [0, 1] when
    ``config.color_jitter`` is set (jitter works on floats, and quantising its result
    would change the numbers). The trainer maps them to ``config.value_range``
    (`data_pipelines.value_table` for uint8). See `global_arrays.to_global_batch` for
    turning them into global ``jax.Array``s.

  Raises:
    ValueError: for an invalid config, batch size or start batch.
    FileNotFoundError: for a missing root or split.
    EmptyDatasetError: for a split (or host share) without usable videos.
    BadVideoError: for a bad video found while opening, unless skipping.
  """
  _check_start_batch(start_batch)
  inputs = open_pipeline_inputs(config, config.train_split, batch_size, process_index,
                                process_count, bad_file_log)
  source = inputs.source
  log = inputs.bad_file_log
  stream_seed = host_seed(seed, inputs.process_index)
  share = host_share(source.persons, config.id_sampling, inputs.process_index,
                     inputs.process_count)
  log.cover(f"{source.split} split of the {config.name!r} dataset, host "
            f"{inputs.process_index} of {inputs.process_count}", len(share),
            config.max_bad_file_share)
  opened = source.open_videos(share, skip_bad_files=config.skip_bad_files,
                              bad_file_log=log)
  if not opened:
    raise EmptyDatasetError(f"every video of host {inputs.process_index}'s share of the "
                            f"{source.split} split is unusable ({log.count} skipped)")
  persons = source.persons
  sampler = PairSampler([persons[p] for p in share], config.id_sampling)
  schedule = ElementSchedule(sampler.num_items, stream_seed, config.shuffle_videos)
  reader = VideoPairReader([opened.get(p) for p in share], sampler, schedule,
                           stream_seed, skip_bad_files=config.skip_bad_files,
                           bad_file_log=log)
  counters = tf.data.Dataset.counter(start=int(start_batch) * batch_size)
  pairs = read_pairs(counters, reader, source)
  return finish_pairs(pairs, batch_size, stream_seed,
                      horizontal_flip=config.horizontal_flip, time_flip=config.time_flip,
                      color_jitter=config.color_jitter, jitter=config.jitter.to_dict())
