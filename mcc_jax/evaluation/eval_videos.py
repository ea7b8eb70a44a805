"""The test videos of a ``datasets`` block, one whole video at a time, as ``uint8`` frames.

:func:`data_pipelines.build_eval_pipeline` plays every test video frame by frame in
batches of uint8 frames that may span videos; this module regroups them into videos.
Unreadable videos are
skipped and recorded in a :class:`data_pipelines.BadFileLog`, so one broken file does
not end an evaluation.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import ml_collections
import numpy as np

# Frames per pipeline batch; it only sets how much is decoded at a time.
_PIPELINE_BATCH = 32


class EmptyTestSplitError(ValueError):
  """The test split has no video that can be evaluated."""


@dataclasses.dataclass(frozen=True)
class EvalVideo:
  """One test video.

  Attributes:
    index: position in :func:`data_pipelines.eval_video_names`.
    name: the video's name (file or folder name; the person is the part before ``#``).
    frames: ``uint8`` (T, S, S, 3), at most ``max_frames`` of them.
    total_frames: frames the video has (before ``max_frames``).
  """

  index: int
  name: str
  frames: np.ndarray
  total_frames: int


def evaluation_datasets_config(datasets: ml_collections.ConfigDict, *,
                               max_videos: int | None = None) -> ml_collections.ConfigDict:
  """A copy of a ``datasets`` block set up for evaluation.

  Unreadable videos are skipped (and counted) whatever ``skip_bad_files`` says, and
  however many there are (``max_bad_file_share`` 1: the report says how many were
  skipped; the share limit is for training runs); ``max_videos`` keeps the first
  videos by name.

  Args:
    datasets: the ``datasets`` block.
    max_videos: None, or how many test videos to use.

  Returns:
    The modified copy.
  """
  config = ml_collections.ConfigDict(datasets.to_dict())
  config.skip_bad_files = True
  # Also fills the field in blocks saved before it existed.
  config.max_bad_file_share = 1.0
  if max_videos is not None:
    if max_videos < 1:
      raise ValueError(f"max_videos must be at least 1, got {max_videos}")
    current = config.max_videos
    config.max_videos = max_videos if current is None else min(current, max_videos)
  return config


def video_names(datasets: ml_collections.ConfigDict) -> list[str]:
  """Names of the test videos, sorted (the ``index`` of :class:`EvalVideo`).

  Args:
    datasets: a ``datasets`` block.

  Returns:
    The names of ``datasets.eval_split`` (at most ``datasets.max_videos``).

  Raises:
    EmptyTestSplitError: the split has no video.
  """
  from mcc_jax import data_pipelines  # pylint: disable=import-outside-toplevel

  try:
    names = data_pipelines.eval_video_names(datasets)
  except data_pipelines.EmptyDatasetError as error:
    raise EmptyTestSplitError(_empty_message(datasets, str(error))) from error
  if not names:
    raise EmptyTestSplitError(_empty_message(datasets, "no video"))
  return names


def _empty_message(datasets: ml_collections.ConfigDict, detail: str) -> str:
  where = f" under {datasets.root}" if datasets.root else ""
  return (f"the {datasets.eval_split!r} split of the {datasets.name!r} dataset{where} has "
          f"nothing to evaluate: {detail}")


def read_test_videos(datasets: ml_collections.ConfigDict, *, max_frames: int | None = None,
                     bad_file_log=None) -> Iterator[EvalVideo]:
  """Yields the readable test videos in name order.

  Args:
    datasets: a ``datasets`` block (see :func:`evaluation_datasets_config`).
    max_frames: keep only the first frames of each video (None: all).
    bad_file_log: a :class:`data_pipelines.BadFileLog` that records skipped videos.

  Yields:
    :class:`EvalVideo`.
  """
  from mcc_jax import data_pipelines  # pylint: disable=import-outside-toplevel

  names = video_names(datasets)
  pipeline = data_pipelines.build_eval_pipeline(datasets, _PIPELINE_BATCH, process_index=0,
                                                process_count=1, bad_file_log=bad_file_log)
  current, parts, count = None, [], 0

  def finish():
    frames = np.concatenate(parts)  # The pipeline's frames are uint8 already.
    return EvalVideo(index=current, name=names[current], frames=frames, total_frames=count)

  for batch in pipeline.as_numpy_iterator():
    mask = batch["mask"]
    for video_index in np.unique(batch["video_index"][mask]):
      video_index = int(video_index)
      rows = mask & (batch["video_index"] == video_index)
      if video_index != current:
        if current is not None:
          yield finish()
        current, parts, count = video_index, [], 0
      kept = sum(len(p) for p in parts)
      frames = batch["driving"][rows]
      count += len(frames)
      if max_frames is None or kept < max_frames:
        room = len(frames) if max_frames is None else max_frames - kept
        parts.append(frames[:room])
  if current is not None:
    yield finish()
