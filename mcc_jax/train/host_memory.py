"""Returning freed heap memory to the operating system after a compilation.

XLA compiles a program on CPU threads. What the compiler frees afterwards stays in the C
allocator's per-thread arenas, still counted in the process's resident memory, and the
step's own buffers (allocated fresh for every execution) come on top of it. For the
vox256 training step at batch 2 on a CPU this was 2.1 GiB of a 12 GiB peak
(docs/performance.md). :func:`release_freed_host_memory` asks glibc to hand those pages
back (``malloc_trim(0)``, which also releases free pages inside an arena). The trainer
calls it after compiling each step variant; other programs may call it after their own
compilations. Elsewhere (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools


@functools.lru_cache(maxsize=None)
def _malloc_trim():
  try:
    return ctypes.CDLL(None).malloc_trim
  except (AttributeError, OSError):
    return None


def release_freed_host_memory() -> bool:
  """Returns freed heap pages to the operating system where the C library allows it.

  Returns:
    True if glibc's ``malloc_trim`` ran (whether or not it found pages to release),
    False where the C library has no such call.
  """
  trim = _malloc_trim()
  if trim is None:
    return False
  trim(0)
  return True
