"""Checking a whole folder tree before a long training job (``mcc-jax check-data``).

Every video is listed and fully decoded through the same readers the pipelines use,
at the configured frame size, so a file that would stop (or be skipped by) a
multi-day job shows up here first, with the reason. The training pipeline decodes
only the frames it samples; this check decodes them all. A video needs one frame to
give training pairs and two (a source and another frame) for evaluation, so videos
of the evaluation splits (``test``) are held to the second rule.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from typing import Callable, Sequence

from mcc_jax.data_pipelines.bad_files import BadFile, BadVideoError, EmptyDatasetError
from mcc_jax.data_pipelines.pair_sampling import person_id
from mcc_jax.data_pipelines.readers.video import MIN_EVAL_FRAMES, check_frame_count
from mcc_jax.data_pipelines.readers.video_files import open_video
from mcc_jax.data_pipelines.sources.folder import list_video_entries


@dataclasses.dataclass
class SplitReport:
  """What a check found in one split.

  Attributes:
    split: split name.
    folder: the split folder.
    problem: why the split as a whole is unusable (missing, empty), else None.
    videos: number of readable videos.
    persons: number of distinct persons among them (for id sampling).
    frames: total frames of the readable videos.
    bad_files: every unreadable video and why.
  """
  split: str
  folder: str
  problem: str | None = None
  videos: int = 0
  persons: int = 0
  frames: int = 0
  bad_files: list[BadFile] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class DatasetReport:
  """What a check found in a dataset.

  Attributes:
    root: the dataset root.
    image_size: the frame size the videos were read at.
    splits: one report per checked split.
  """
  root: str
  image_size: int
  splits: list[SplitReport]

  @property
  def bad_file_count(self) -> int:
    """Number of unreadable videos over all splits."""
    return sum(len(s.bad_files) for s in self.splits)

  @property
  def split_problems(self) -> list[str]:
    """Problems that make a whole split unusable."""
    return [f"{s.folder}: {s.problem}" for s in self.splits if s.problem]

  def format(self) -> str:
    """Renders the report as a table followed by the list of bad files.

    Returns:
      Multi-line text.
    """
    lines = [f"dataset {self.root} at {self.image_size}x{self.image_size}",
             f"{'split':<10} {'videos':>8} {'persons':>8} {'frames':>10} {'bad':>6}"]
    for s in self.splits:
      if s.problem:
        lines.append(f"{s.split:<10} {s.problem}")
      else:
        lines.append(f"{s.split:<10} {s.videos:>8} {s.persons:>8} {s.frames:>10} "
                     f"{len(s.bad_files):>6}")
    bad = [f for s in self.splits for f in s.bad_files]
    if bad:
      lines.append(f"{len(bad)} bad file(s):")
      lines.extend(f"  {f.path}: {f.reason}" for f in bad)
    return "\n".join(lines)


def _check_video(path: str, is_dir: bool, image_size: int, for_evaluation: bool) -> int:
  # read_all already requires `MIN_PAIR_FRAMES` (one frame).
  frames = len(open_video(path, image_size, is_dir=is_dir).read_all())
  if for_evaluation:
    check_frame_count(path, frames, MIN_EVAL_FRAMES, "evaluation")
  return frames


def check_split(root: str, split: str, image_size: int, *, for_evaluation: bool = False,
                workers: int = 2,
                progress: Callable[[int, int], None] | None = None) -> SplitReport:
  """Reads every video of one split.

  Args:
    root: dataset root.
    split: split name.
    image_size: frame size to read at.
    for_evaluation: hold videos to `MIN_EVAL_FRAMES` (a source and another frame)
      instead of one frame.
    workers: videos decoded in parallel.
    progress: called with ``(videos done, videos total)`` after each video.

  Returns:
    The split's report.
  """
  report = SplitReport(split=split, folder=os.path.join(root, split))
  try:
    entries = list_video_entries(root, split)
  except (FileNotFoundError, EmptyDatasetError) as error:
    report.problem = str(error)
    return report
  paths = [path for path, _ in entries]
  persons = set()
  with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
    futures = [pool.submit(_check_video, path, is_dir, image_size, for_evaluation)
               for path, is_dir in entries]
    for done, (path, future) in enumerate(zip(paths, futures), start=1):
      try:
        report.frames += future.result()
        report.videos += 1
        persons.add(person_id(os.path.basename(path)))
      except BadVideoError as error:
        report.bad_files.append(BadFile(error.path, error.reason))
      if progress is not None:
        progress(done, len(paths))
  report.persons = len(persons)
  if not report.videos:
    report.problem = f"none of its {len(paths)} videos is readable"
  return report


def scan_dataset(root: str, image_size: int, splits: Sequence[str] = ("train", "test"),
                 *, eval_splits: Sequence[str] = ("test",), workers: int = 2,
                 progress: Callable[[str, int, int], None] | None = None
                 ) -> DatasetReport:
  """Reads every video of a folder tree.

  Args:
    root: dataset root (``root/<split>/<video>``).
    image_size: frame size to read at.
    splits: splits to check.
    eval_splits: those of `splits` that evaluation reads (their videos need
      `MIN_EVAL_FRAMES`; the default ``datasets.eval_split`` is ``'test'``).
    workers: videos decoded in parallel.
    progress: called with ``(split, videos done, videos total)``.

  Returns:
    The dataset's report.

  Raises:
    FileNotFoundError: if `root` is not a folder.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"dataset root {root!r} does not exist or is not a folder")
  reports = []
  for split in splits:
    callback = None if progress is None else (
        lambda done, total, split=split: progress(split, done, total))
    reports.append(check_split(root, split, image_size,
                               for_evaluation=split in eval_splits, workers=workers,
                               progress=callback))
  return DatasetReport(root=root, image_size=image_size, splits=reports)
