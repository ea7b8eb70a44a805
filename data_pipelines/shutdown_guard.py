"""Keeps Python readers inside tf.data from deadlocking the interpreter at exit.

The readers run as ``tf.numpy_function`` calls on tf.data's own threads. If a script
ends while an endless pipeline is still reading ahead, the iterator is destroyed during
interpreter finalization: its destructor waits for the reads in flight, and those wait
forever for the GIL, which threads can no longer take at that point. The process hangs.

Every reader is therefore wrapped in a `GuardedReader`, whose first output says whether
reading has stopped; pipelines end their stream there with ``take_while``. An
``atexit`` hook (which runs before finalization) stops the readers, so that each new
call returns at once without reading, and waits until no call is in flight and
tf.data has stopped asking (the stream has ended), so that finalization finds the
pipeline idle. This is process-wide by nature, which is why the set of readers is
module state.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Callable

import numpy as np

# Readers alive in this process; weak, so that pipelines can still be collected.
_READERS: "weakref.WeakSet[GuardedReader]" = weakref.WeakSet()
_STOPPING = threading.Event()

# How long tf.data must stay idle before exit proceeds, and the longest wait.
_QUIET_SECONDS = 0.25
_MAX_WAIT_SECONDS = 10.0


class GuardedReader:
  """Wraps a reader, counting the calls in flight and stopping it at exit."""

  def __init__(self, reader: Callable[..., tuple], stopped_result: tuple):
    """Registers the reader with the exit hook.

    Args:
      reader: the function tf.data calls through ``tf.numpy_function``; it returns a
        tuple of arrays.
      stopped_result: what to return instead once stopped: a tuple with the same
        dtypes and ranks as the reader's result.
    """
    self._reader = reader
    self._stopped_result = stopped_result
    self._lock = threading.Lock()
    self._in_flight = 0
    self._last_start = 0.0
    _READERS.add(self)

  def __call__(self, *args) -> tuple:
    """Calls the reader unless the interpreter is exiting.

    Args:
      *args: the reader's arguments.

    Returns:
      ``(stopped, *result)``: ``stopped`` is a bool scalar, True once the exit hook
      has run, in which case ``result`` is `stopped_result`.
    """
    with self._lock:
      self._in_flight += 1
      self._last_start = time.monotonic()
    try:
      if _STOPPING.is_set():
        return (np.True_,) + tuple(self._stopped_result)
      return (np.False_,) + tuple(self._reader(*args))
    finally:
      with self._lock:
        self._in_flight -= 1

  def idle_since(self) -> float | None:
    """Returns when the last call started if none is in flight, else None."""
    with self._lock:
      return None if self._in_flight else self._last_start


def _wait_until_idle() -> None:
  _STOPPING.set()
  deadline = time.monotonic() + _MAX_WAIT_SECONDS
  while time.monotonic() < deadline:
    now = time.monotonic()
    starts = [reader.idle_since() for reader in list(_READERS)]
    if all(s is not None and now - s > _QUIET_SECONDS for s in starts):
      return
    time.sleep(0.01)


atexit.register(_wait_until_idle)
