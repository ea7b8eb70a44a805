"""What happens to unreadable videos: one exception type and a thread-safe tally.

Crawled video collections always contain a few broken files. Every reader raises
`BadVideoError` naming the file and the problem; pipelines either let it propagate or,
when ``skip_bad_files`` is set, record it in a `BadFileLog` and move on. The log warns
once per file with the running count, so a multi-day job shows how much data it lost;
it knows how many videos the pipelines read from it (`BadFileLog.cover`), and once the
share of bad ones exceeds ``datasets.max_bad_file_share`` it raises
`TooManyBadFilesError` naming them. `BadFileLog.append_new_to` keeps a text file of
the bad files up to date (one ``path<TAB>reason`` line each).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

_LOGGER = logging.getLogger(__name__)


class BadVideoError(ValueError):
  """A video (or one of its frames) that cannot be used.

  Attributes:
    path: the offending file or folder.
    reason: what was wrong, in words.
  """

  def __init__(self, path: str, reason: str):
    """Builds the error; its message is ``'<path>: <reason>'``.

    Args:
      path: the offending file or folder.
      reason: what was wrong, in words.
    """
    super().__init__(f"{path}: {reason}")
    self.path = str(path)
    self.reason = reason


class BadFrameError(BadVideoError):
  """A video whose container or folder is fine but one of whose frames is not.

  Only reads that touch the frame fail; the pipelines never take it for a video that
  fails whatever is read (see `train_pipeline.VideoPairReader`).
  """


class EmptyDatasetError(ValueError):
  """A split (or a host's share of it) that has no usable video."""


class TooManyBadFilesError(ValueError):
  """More of the videos read than ``datasets.max_bad_file_share`` turned out bad."""

# How many bad files an error message names; the rest are counted.
_NAMED_IN_ERRORS = 10


@dataclasses.dataclass(frozen=True)
class BadFile:
  """One skipped file and why it was skipped."""
  path: str
  reason: str


class BadFileLog:
  """Collects skipped files; safe to share between tf.data worker threads.

  Attributes:
    description: what the files belong to, for messages.
  """

  def __init__(self, description: str = "data"):
    """Creates an empty log that covers no video yet.

    Args:
      description: what the files belong to (e.g. ``'train split of /data/vox'``);
        used in the warnings.
    """
    self.description = description
    self._lock = threading.Lock()
    self._entries: dict[str, BadFile] = {}
    self._covered: dict[str, int] = {}
    self._max_share: float | None = None
    # Per text file (absolute path): the bad-file paths it already holds.
    self._written: dict[str, set[str]] = {}

  def cover(self, videos: str, count: int, max_share: float | None) -> None:
    """Declares videos a pipeline reads through this log, and the bad share allowed.

    Covering the same ``videos`` again (an evaluation pipeline rebuilt for every
    evaluation) replaces the earlier count instead of adding to it.

    Args:
      videos: names the set, e.g. ``'train split of /data/vox, host 0 of 4'``.
      count: how many videos the set holds.
      max_share: the largest allowed `share` (``datasets.max_bad_file_share``); None
        for no limit. The last call's value holds.

    Raises:
      TooManyBadFilesError: if the files recorded so far already exceed it.
    """
    with self._lock:
      self._covered[videos] = int(count)
      self._max_share = max_share
      error = self._limit_error_locked()
    if error:
      raise TooManyBadFilesError(error)

  def record(self, error: BadVideoError) -> bool:
    """Adds a bad file; warns the first time a path is seen.

    Args:
      error: the reader's error for the file.

    Returns:
      True if the path was new to the log.

    Raises:
      TooManyBadFilesError: if the bad files now exceed the allowed share of the
        covered videos (the file is recorded first).
    """
    with self._lock:
      if error.path in self._entries:
        return False
      self._entries[error.path] = BadFile(error.path, error.reason)
      count = len(self._entries)
      covered = sum(self._covered.values())
      limit_error = self._limit_error_locked()
    of = f" of {covered}" if covered else ""
    _LOGGER.warning("Skipping bad file %d%s in the %s: %s: %s", count, of,
                    self.description, error.path, error.reason)
    if limit_error:
      raise TooManyBadFilesError(limit_error)
    return True

  def _limit_error_locked(self) -> str | None:
    covered = sum(self._covered.values())
    count = len(self._entries)
    if self._max_share is None or not covered or count <= self._max_share * covered:
      return None
    paths = list(self._entries)
    named = ", ".join(paths[:_NAMED_IN_ERRORS])
    more = (f" and {len(paths) - _NAMED_IN_ERRORS} more" if len(paths) > _NAMED_IN_ERRORS
            else "")
    return (f"{count} of {covered} videos of the {self.description} are unreadable "
            f"({count / covered:.2%}), more than datasets.max_bad_file_share = "
            f"{self._max_share:g} allows: {named}{more}. Fix or remove them (mcc-jax "
            "check-data lists every bad file) or raise the limit")

  def is_bad(self, path: str) -> bool:
    """Returns whether a path was already recorded as bad.

    Args:
      path: a file or folder.

    Returns:
      True if `record` has seen it.
    """
    with self._lock:
      return str(path) in self._entries

  @property
  def count(self) -> int:
    """Number of distinct bad files recorded so far."""
    with self._lock:
      return len(self._entries)

  @property
  def entries(self) -> list[BadFile]:
    """The recorded files, in the order they were found."""
    with self._lock:
      return list(self._entries.values())

  @property
  def covered(self) -> int:
    """Number of videos the pipelines declared (`cover`); 0 if none did."""
    with self._lock:
      return sum(self._covered.values())

  @property
  def share(self) -> float:
    """Bad files over covered videos (0.0 while nothing is covered)."""
    with self._lock:
      covered = sum(self._covered.values())
      return len(self._entries) / covered if covered else 0.0

  def append_new_to(self, path: str) -> int:
    """Appends the files not yet in a text file to it, one ``path<TAB>reason`` line each.

    Paths already in the file (written by this log, or by an earlier run that wrote
    the same file) are not written again, so a resumed run can keep appending to its
    predecessor's file.

    Args:
      path: the text file, created if missing (e.g. ``<workdir>/bad_files.txt``).

    Returns:
      The number of lines appended.
    """
    with self._lock:
      written = self._written.get(os.path.abspath(path))
      if written is None:
        written = self._written[os.path.abspath(path)] = set()
        if os.path.exists(path):
          with open(path, encoding="utf-8") as stream:
            written.update(line.split("\t", 1)[0] for line in stream.read().splitlines())
      new = [e for e in self._entries.values() if e.path not in written]
      if new:
        with open(path, "a", encoding="utf-8") as stream:
          for entry in new:
            stream.write(f"{entry.path}\t{' '.join(entry.reason.split())}\n")
        written.update(e.path for e in new)
      return len(new)
