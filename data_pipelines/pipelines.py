"""Entry points: training and evaluation pipelines for any ``datasets`` block.

`build_train_pipeline` and `build_eval_pipeline` dispatch on ``config.name``
(``'folder'``, ``'tfds'``, ``'sample'``, ``'synthetic'``), give each host its share of
the videos and return a ``tf.data.Dataset`` of host-local batches; see
`global_arrays.to_global_batch` for turning them into global ``jax.Array``s.
"""

from __future__ import annotations

import ml_collections
import tensorflow as tf

from data_pipelines.bad_files import BadFileLog
from data_pipelines.config import validate_datasets_config
from data_pipelines.eval_pipeline import VideoReader, frames_to_batches, read_videos
from data_pipelines.folder_layout import open_split
from data_pipelines.pair_sampling import PairSampler, host_share, host_seed
from data_pipelines.sample_clip import sample_videos
from data_pipelines.synthetic_dataset import synthetic_videos
from data_pipelines.train_pipeline import (VideoPairReader, finish_pairs, item_stream,
                                           read_pairs)
from data_pipelines.video_source import VideoSource


def _host(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # Only when the caller leaves the host to JAX.
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  return int(process_index), int(process_count)


def _split_name(config: ml_collections.ConfigDict, training: bool) -> str:
  return config.train_split if training else config.eval_split


def open_videos(config: ml_collections.ConfigDict, split: str,
                bad_file_log: BadFileLog | None = None) -> list[VideoSource]:
  """Opens the readers of a split of a ``'folder'``, ``'sample'`` or ``'synthetic'`` set.

  Args:
    config: a valid ``datasets`` block.
    split: split name.
    bad_file_log: where videos skipped while listing are recorded.

  Returns:
    The split's videos, sorted by name; at most ``config.max_videos``.

  Raises:
    ValueError: for ``name == 'tfds'``, which has no `VideoSource`s.
  """
  size = config.image_size
  if config.name == "folder":
    return open_split(config.root, split, size, skip_bad_files=config.skip_bad_files,
                      bad_file_log=bad_file_log, max_videos=config.max_videos)
  if config.name == "sample":
    videos = sample_videos(split, size)
  elif config.name == "synthetic":
    synthetic = config.synthetic
    num_identities = (synthetic.num_train_identities if split == config.train_split
                      else synthetic.num_test_identities)
    videos = synthetic_videos(split, size, seed=synthetic.seed,
                              num_identities=num_identities,
                              videos_per_identity=synthetic.videos_per_identity,
                              num_frames=synthetic.num_frames)
  else:
    raise ValueError(f"datasets.name {config.name!r} has no video readers")
  return videos[:config.max_videos]


def eval_video_names(config: ml_collections.ConfigDict) -> list[str]:
  """Names of the evaluation videos; ``video_index`` in eval batches indexes this list.

  Args:
    config: a ``datasets`` block.

  Returns:
    Video names of ``config.eval_split``, sorted.
  """
  validate_datasets_config(config)
  if config.name == "tfds":
    from data_pipelines.tfds_reader import TfdsSplit
    return list(TfdsSplit(config.root, config.eval_split, config.image_size,
                          config.max_videos).video_names)
  return [v.name for v in open_videos(config, config.eval_split, BadFileLog())]


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
    BadVideoError: for a bad video found while listing, unless skipping.
  """
  validate_datasets_config(config)
  if not isinstance(batch_size, int) or batch_size <= 0:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
  process_index, process_count = _host(process_index, process_count)
  split = _split_name(config, training=True)
  stream_seed = host_seed(seed, process_index)
  if bad_file_log is None:
    bad_file_log = BadFileLog(f"{split} split of the {config.name!r} dataset")
  if config.name == "tfds":
    from data_pipelines.tfds_reader import (RecordPairReader, TfdsSplit,
                                            read_record_pairs)
    records = TfdsSplit(config.root, split, config.image_size, config.max_videos)
    share = host_share(records.persons, config.id_sampling, process_index, process_count)
    sampler = PairSampler([records.persons[v] for v in share], config.id_sampling)
    items = item_stream(sampler.num_items, stream_seed, config.shuffle_videos)
    pairs = read_record_pairs(
        items, RecordPairReader(records, share, sampler, stream_seed), records)
  else:
    videos = open_videos(config, split, bad_file_log)
    share = host_share([v.person for v in videos], config.id_sampling, process_index,
                       process_count)
    mine = [videos[i] for i in share]
    sampler = PairSampler([v.person for v in mine], config.id_sampling)
    reader = VideoPairReader(mine, sampler, stream_seed,
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
    EmptyDatasetError: for a split without usable videos.
  """
  validate_datasets_config(config)
  if not isinstance(batch_size, int) or batch_size <= 0:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
  process_index, process_count = _host(process_index, process_count)
  split = _split_name(config, training=False)
  if bad_file_log is None:
    bad_file_log = BadFileLog(f"{split} split of the {config.name!r} dataset")
  if config.name == "tfds":
    from data_pipelines.tfds_reader import RecordVideoReader, TfdsSplit, read_record_videos
    records = TfdsSplit(config.root, split, config.image_size, config.max_videos)
    share = host_share(records.video_names, False, process_index, process_count,
                       allow_empty=True)
    videos = read_record_videos(share, RecordVideoReader(records), records)
  else:
    sources = open_videos(config, split, bad_file_log)
    share = host_share([v.name for v in sources], False, process_index, process_count,
                       allow_empty=True)
    reader = VideoReader(sources, skip_bad_files=config.skip_bad_files,
                         bad_file_log=bad_file_log)
    videos = read_videos(share, reader, config.image_size)
  return frames_to_batches(videos, batch_size, config.value_range)
