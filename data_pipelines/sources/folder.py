"""The on-disk layout of the video-preprocessing tool: ``root/<split>/<video>``.

``root/train`` and ``root/test`` each hold one entry per video (see `video_files`).
Entries that are not videos (``.DS_Store``, text files) are ignored. Listing a split
reads only its top folder; a video's own folder or file is opened only by the host
that reads it, and its frames only when they are read.
"""

from __future__ import annotations

import os
from typing import Sequence

from data_pipelines.bad_files import BadFileLog, BadVideoError, EmptyDatasetError
from data_pipelines.readers.video_files import (GIF_EXTENSION, VIDEO_EXTENSIONS, is_video_path,
                                        open_video)
from data_pipelines.readers.video import Video


def split_folder(root: str, split: str) -> str:
  """Returns the folder of a split, checking that it exists.

  Args:
    root: dataset root (the ``datasets.root`` field).
    split: split name, e.g. ``'train'``.

  Returns:
    ``root/split``.

  Raises:
    FileNotFoundError: naming the root or split folder that is missing.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"dataset root {root!r} (datasets.root) does not exist or is "
                            "not a folder")
  folder = os.path.join(root, split)
  if not os.path.isdir(folder):
    present = sorted(e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e)))
    raise FileNotFoundError(f"split folder {folder!r} does not exist; the dataset root "
                            f"holds the folders {present} (expected e.g. 'train' and "
                            "'test')")
  return folder


def list_video_paths(root: str, split: str) -> list[str]:
  """Lists the video entries of a split, sorted by name.

  Args:
    root: dataset root.
    split: split name.

  Returns:
    Paths of the frame folders and video/GIF/strip files of ``root/split``.

  Raises:
    FileNotFoundError: if the root or the split folder is missing.
    EmptyDatasetError: if the split holds no video.
  """
  folder = split_folder(root, split)
  paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
  paths = [p for p in paths if is_video_path(p)]
  if not paths:
    raise EmptyDatasetError(
        f"split folder {folder!r} holds no video: expected frame folders or files ending "
        f"in {', '.join(VIDEO_EXTENSIONS + (GIF_EXTENSION, '.png', '.jpg'))}")
  return paths


def open_videos(paths: Sequence[str], image_size: int, *, skip_bad_files: bool,
                bad_file_log: BadFileLog) -> dict[int, Video]:
  """Opens the readers of some videos, keyed by their position in `paths`.

  Args:
    paths: video entries (from `list_video_paths`).
    image_size: side of the frames the readers return.
    skip_bad_files: record videos that fail already here (unlistable frame folders,
      folders with fewer than two frames) in `bad_file_log` instead of raising.
    bad_file_log: where skipped videos are recorded.

  Returns:
    ``{position in paths: reader}`` for the videos that could be opened.

  Raises:
    BadVideoError: for a bad video when `skip_bad_files` is False.
  """
  videos = {}
  for position, path in enumerate(paths):
    try:
      videos[position] = open_video(path, image_size)
    except BadVideoError as error:
      if not skip_bad_files:
        raise
      bad_file_log.record(error)
  return videos


def open_split(root: str, split: str, image_size: int, *, skip_bad_files: bool,
               bad_file_log: BadFileLog | None = None) -> list[Video]:
  """Opens the readers of every video of a split.

  Args:
    root: dataset root.
    split: split name.
    image_size: side of the frames the readers return.
    skip_bad_files: skip videos that fail already here instead of raising.
    bad_file_log: where skipped videos are recorded; a fresh one if None.

  Returns:
    The readers, sorted by video name.

  Raises:
    FileNotFoundError: if the root or the split folder is missing.
    EmptyDatasetError: if the split holds no (usable) video.
    BadVideoError: for a bad video when `skip_bad_files` is False.
  """
  if bad_file_log is None:
    bad_file_log = BadFileLog(f"{split} split of {root}")
  videos = open_videos(list_video_paths(root, split), image_size,
                       skip_bad_files=skip_bad_files, bad_file_log=bad_file_log)
  if not videos:
    raise EmptyDatasetError(f"every video of {os.path.join(root, split)!r} is unusable "
                            f"({bad_file_log.count} skipped)")
  return list(videos.values())
