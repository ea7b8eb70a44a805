"""The ``folder`` dataset kind: the video-preprocessing layout, ``root/<split>/<video>``.

``root/train`` and ``root/test`` each hold one entry per video, in any format of
`data_pipelines.readers.video_files` (frame folder, mp4 and other containers, gif,
PNG/JPEG strip). Entries that are not videos (``.DS_Store``, text files) are ignored.
Listing a split is one pass over its top folder's entries; a video's own folder or
file is opened only by the host that reads it, when it first reads it.
"""

from __future__ import annotations

import os

import ml_collections

from mcc_jax.data_pipelines.bad_files import BadFileLog, EmptyDatasetError
from mcc_jax.data_pipelines.readers.video import Video
from mcc_jax.data_pipelines.readers.video_files import (GIF_EXTENSION, VIDEO_EXTENSIONS,
                                                open_video, video_format)
from mcc_jax.data_pipelines.sources.base import DatasetSource


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


def list_video_entries(root: str, split: str) -> list[tuple[str, bool]]:
  """Lists the video entries of a split in one pass over its directory entries.

  Only the split folder is read: whether an entry is a folder comes from the
  directory listing itself (``os.scandir``; file systems that do not report entry
  types make Python look each one up), and no video folder or file is opened.

  Args:
    root: dataset root.
    split: split name.

  Returns:
    ``(path, is_dir)`` of the frame folders and video/GIF/strip files of
    ``root/split``, sorted by name.

  Raises:
    FileNotFoundError: if the root or the split folder is missing.
    EmptyDatasetError: if the split holds no video.
  """
  folder = split_folder(root, split)
  with os.scandir(folder) as scan:
    entries = [(entry.name, entry.is_dir()) for entry in scan]
  entries = sorted((name, is_dir) for name, is_dir in entries
                   if video_format(name, is_dir) is not None)
  if not entries:
    raise EmptyDatasetError(
        f"split folder {folder!r} holds no video: expected frame folders or files ending "
        f"in {', '.join(VIDEO_EXTENSIONS + (GIF_EXTENSION, '.png', '.jpg'))}")
  return [(os.path.join(folder, name), is_dir) for name, is_dir in entries]


def list_video_paths(root: str, split: str) -> list[str]:
  """Lists the video entries of a split, sorted by name (see `list_video_entries`).

  Args:
    root: dataset root.
    split: split name.

  Returns:
    Paths of the frame folders and video/GIF/strip files of ``root/split``.

  Raises:
    FileNotFoundError: if the root or the split folder is missing.
    EmptyDatasetError: if the split holds no video.
  """
  return [path for path, _ in list_video_entries(root, split)]


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
  # The fields of a ``datasets`` block that `FolderSource` reads.
  fields = ml_collections.ConfigDict(dict(root=root, image_size=image_size, max_videos=None))
  source = FolderSource(fields, split)
  videos = source.open_videos(range(len(source.video_names)),
                              skip_bad_files=skip_bad_files, bad_file_log=bad_file_log)
  if not videos:
    raise EmptyDatasetError(f"every video of {os.path.join(root, split)!r} is unusable "
                            f"({bad_file_log.count} skipped)")
  return list(videos.values())


class FolderSource(DatasetSource):
  """A split of a folder tree; its videos are opened by `readers.video_files`."""

  requires_root = True

  def __init__(self, config: ml_collections.ConfigDict, split: str):
    """Lists ``config.root/split``.

    Args:
      config: the ``datasets`` block (``root``, ``image_size``, ``max_videos``).
      split: split folder name.

    Raises:
      FileNotFoundError: if the root or the split folder is missing.
      EmptyDatasetError: if the split holds no video.
    """
    super().__init__(config, split)
    self._entries = list_video_entries(config.root, split)[:config.max_videos]
    self._names = [os.path.basename(path) for path, _ in self._entries]

  @property
  def video_names(self) -> list[str]:
    """File and folder names of the split's videos, sorted."""
    return self._names

  def open(self, position: int) -> Video:
    """See `DatasetSource.open`; reads nothing (frame folders are listed when read)."""
    path, is_dir = self._entries[position]
    return open_video(path, self.image_size, is_dir=is_dir)


DATASET_SOURCE = FolderSource
