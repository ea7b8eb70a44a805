"""Preemption: SIGTERM becomes a request to save and stop that every process agrees on."""

from __future__ import annotations

import signal

import jax
from jax.experimental import multihost_utils


class StopRequest:
  """Turns SIGTERM into a flag the loop polls (and, on several hosts, agrees on).

  Use as a context manager around the loop; :meth:`should_stop` after a step says
  whether to save and stop there.
  """

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if jax.process_count() == 1:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def should_stop(self, step: int) -> bool:
    """Whether the run should save ``step`` and stop (the same answer on every host)."""
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False
