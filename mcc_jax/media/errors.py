"""The error raised for unreadable, empty or unwritable media files."""

from __future__ import annotations

import os


class MediaError(ValueError):
  """A media file cannot be read or written; the message names the file and why."""

  def __init__(self, path: str | os.PathLike, reason: str):
    self.path = os.fspath(path)
    self.reason = reason
    super().__init__(f"{self.path}: {reason}")
