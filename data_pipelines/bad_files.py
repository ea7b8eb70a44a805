"""What happens to unreadable videos: one exception type and a thread-safe tally.

Crawled video collections always contain a few broken files. Every reader raises
`BadVideoError` naming the file and the problem; pipelines either let it propagate or,
when ``skip_bad_files`` is set, record it in a `BadFileLog` and move on. The log warns
once per file with the running count, so a multi-day job shows how much data it lost.
"""

from __future__ import annotations

import dataclasses
import logging
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


class EmptyDatasetError(ValueError):
  """A split (or a host's share of it) that has no usable video."""


@dataclasses.dataclass(frozen=True)
class BadFile:
  """One skipped file and why it was skipped."""
  path: str
  reason: str


class BadFileLog:
  """Collects skipped files; safe to share between tf.data worker threads."""

  def __init__(self, description: str = "data"):
    """Creates an empty log.

    Args:
      description: what the files belong to (e.g. ``'train split of /data/vox'``);
        used in the warnings.
    """
    self._description = description
    self._lock = threading.Lock()
    self._entries: dict[str, BadFile] = {}

  def record(self, error: BadVideoError) -> bool:
    """Adds a bad file; warns the first time a path is seen.

    Args:
      error: the reader's error for the file.

    Returns:
      True if the path was new to the log.
    """
    with self._lock:
      if error.path in self._entries:
        return False
      self._entries[error.path] = BadFile(error.path, error.reason)
      count = len(self._entries)
    _LOGGER.warning("Skipping bad file %d in the %s: %s: %s", count, self._description,
                    error.path, error.reason)
    return True

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
