"""Entry points: training and evaluation pipelines for any ``datasets`` block.

`build_train_pipeline` and `build_eval_pipeline` dispatch on ``config.name``
(``'folder'``, ``'tfds'``, ``'sample'``, ``'synthetic'``), give each host its share of
the videos (decided from the video names alone, so a host never opens another host's
videos) and return a ``tf.data.Dataset`` of host-local batches; see
`global_arrays.to_global_batch` for turning them into global ``jax.Array``s.
"""

from __future__ import annotations

import os

import ml_collections
import tensorflow as tf

from data_pipelines.bad_files import BadFileLog, EmptyDatasetError
from data_pipelines.config import validate_datasets_config
from data_pipelines.eval_pipeline import VideoReader, frames_to_batches, read_videos
from data_pipelines.sources.folder import list_video_paths, open_videos
from data_pipelines.pair_sampling import PairSampler, host_seed, host_share, person_id
from data_pipelines.sources.sample import sample_videos
from data_pipelines.sources.synthetic import synthetic_videos
from data_pipelines.train_pipeline import (VideoPairReader, finish_pairs, item_stream,
                                           read_pairs)
from data_pipelines.readers.video import Video


def _host(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # Only when the caller leaves the host to JAX.
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  return int(process_index), int(process_count)


def _check_batch_size(batch_size: int) -> None:
  if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _generated_videos(config: ml_collections.ConfigDict, split: str) -> list[Video]:
  """The videos of the datasets that live in memory or are rendered."""
  if config.name == "sample":
    videos = sample_videos(split, config.image_size)
  else:
    synthetic = config.synthetic
    num_identities = (synthetic.num_train_identities if split == config.train_split
                      else synthetic.num_test_identities)
    videos = synthetic_videos(split, config.image_size, seed=synthetic.seed,
                              num_identities=num_identities,
                              videos_per_identity=synthetic.videos_per_identity,
                              num_frames=synthetic.num_frames)
  return videos[:config.max_videos]


def list_videos(config: ml_collections.ConfigDict, split: str) -> list[str]:
  """Names of the videos of a split, sorted; at most ``config.max_videos``.

  For ``'folder'`` only the split folder is listed; no video is opened.

  Args:
    config: a valid ``datasets`` block.
    split: split name.

  Returns:
    The video names.

  Raises:
    FileNotFoundError: for a missing root, split folder or TFDS build.
    EmptyDatasetError: for a split without videos.
  """
  if config.name == "folder":
    paths = list_video_paths(config.root, split)[:config.max_videos]
    return [os.path.basename(p) for p in paths]
  if config.name == "tfds":
    from data_pipelines.sources.tfds.split import TfdsSplit
    return list(TfdsSplit(config.root, split, config.image_size,
                          config.max_videos).video_names)
  return [v.name for v in _generated_videos(config, split)]


def _open_host_videos(config: ml_collections.ConfigDict, split: str,
                      positions: list[int], bad_file_log: BadFileLog
                      ) -> dict[int, Video]:
  """Opens the videos at `positions` of `list_videos`; bad ones are skipped or raise."""
  if config.name == "folder":
    paths = list_video_paths(config.root, split)[:config.max_videos]
    opened = open_videos([paths[p] for p in positions], config.image_size,
                         skip_bad_files=config.skip_bad_files, bad_file_log=bad_file_log)
    return {positions[i]: video for i, video in opened.items()}
  videos = _generated_videos(config, split)
  return {p: videos[p] for p in positions}


def eval_video_names(config: ml_collections.ConfigDict) -> list[str]:
  """Names of the evaluation videos; ``video_index`` in eval batches indexes this list.

  Args:
    config: a ``datasets`` block.

  Returns:
    Video names of ``config.eval_split``, sorted.
  """
  validate_datasets_config(config)
  return list_videos(config, config.eval_split)


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
    ``config.value_range``, both frames of a pair from the same video.

  Raises:
    ValueError: for an invalid config or batch size.
    FileNotFoundError: for a missing root or split.
    EmptyDatasetError: for a split (or host share) without usable videos.
    BadVideoError: for a bad video found while opening, unless skipping.
  """
  validate_datasets_config(config)
  _check_batch_size(batch_size)
  process_index, process_count = _host(process_index, process_count)
  split = config.train_split
  stream_seed = host_seed(seed, process_index)
  if bad_file_log is None:
    bad_file_log = BadFileLog(f"{split} split of the {config.name!r} dataset")
  if config.name == "tfds":
    from data_pipelines.sources.tfds.split import (RecordPairReader, TfdsSplit,
                                            read_record_pairs)
    records = TfdsSplit(config.root, split, config.image_size, config.max_videos)
    share = host_share(records.persons, config.id_sampling, process_index, process_count)
    sampler = PairSampler([records.persons[v] for v in share], config.id_sampling)
    items = item_stream(sampler.num_items, stream_seed, config.shuffle_videos)
    pairs = read_record_pairs(
        items, RecordPairReader(records, share, sampler, stream_seed), records)
  else:
    names = list_videos(config, split)
    share = host_share([person_id(n) for n in names], config.id_sampling, process_index,
                       process_count)
    videos = list(_open_host_videos(config, split, share, bad_file_log).values())
    if not videos:
      raise EmptyDatasetError(f"every video of host {process_index}'s share of the {split} "
                              f"split is unusable ({bad_file_log.count} skipped)")
    sampler = PairSampler([v.person for v in videos], config.id_sampling)
    reader = VideoPairReader(videos, sampler, stream_seed,
                             skip_bad_files=config.skip_bad_files,
                             bad_file_log=bad_file_log)
    items = item_stream(sampler.num_items, stream_seed, config.shuffle_videos)
    pairs = read_pairs(items, reader, config.image_size)
  return finish_pairs(pairs, batch_size, stream_seed, value_range=config.value_range,
                      horizontal_flip=config.horizontal_flip, time_flip=config.time_flip,
                      color_jitter=config.color_jitter, jitter=config.jitter.to_dict())


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
    float32 ``(batch_size, S, S, 3)``; ``video_index`` (into `eval_video_names`) and
    ``frame_index`` int32 ``(batch_size,)``; ``mask`` bool ``(batch_size,)``, False
    for the padding of the last batch.

  Raises:
    ValueError: for an invalid config or batch size.
    FileNotFoundError: for a missing root or split.
    EmptyDatasetError: for a split without videos.
    BadVideoError: for a bad video found while opening, unless skipping.
  """
  validate_datasets_config(config)
  _check_batch_size(batch_size)
  process_index, process_count = _host(process_index, process_count)
  split = config.eval_split
  if bad_file_log is None:
    bad_file_log = BadFileLog(f"{split} split of the {config.name!r} dataset")
  if config.name == "tfds":
    from data_pipelines.sources.tfds.split import RecordVideoReader, TfdsSplit, read_record_videos
    records = TfdsSplit(config.root, split, config.image_size, config.max_videos)
    share = host_share(records.video_names, False, process_index, process_count,
                       allow_empty=True)
    videos = read_record_videos(share, RecordVideoReader(records), records)
  else:
    names = list_videos(config, split)
    share = host_share(names, False, process_index, process_count, allow_empty=True)
    sources = _open_host_videos(config, split, share, bad_file_log)
    reader = VideoReader(sources, image_size=config.image_size,
                         skip_bad_files=config.skip_bad_files, bad_file_log=bad_file_log)
    videos = read_videos(sorted(sources), reader, config.image_size)
  return frames_to_batches(videos, batch_size, config.value_range)
