"""release_freed_host_memory returns freed heap pages to the operating system."""

import ctypes
import subprocess
import sys
import textwrap

import pytest

from mcc_jax.train import host_memory

_CHILD = textwrap.dedent("""
    import ctypes, sys
    from mcc_jax.train import host_memory

    def resident_mib():
      with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 256 MiB in 64 KiB blocks (below glibc's mmap threshold, so they come from the
    # heap), each written; then every block freed but the last, which pins the top of
    # the heap so that free() alone cannot shrink it.
    blocks = [libc.malloc(65536) for _ in range(4096)]
    for b in blocks:
      ctypes.memset(b, 1, 65536)
    for b in blocks[:-1]:
      libc.free(b)
    before = resident_mib()
    trimmed = host_memory.release_freed_host_memory()
    after = resident_mib()
    print(trimmed, before, after)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc only")
def test_freed_heap_pages_leave_the_resident_set():
  if host_memory._malloc_trim() is None:  # pylint: disable=protected-access
    pytest.skip("the C library has no malloc_trim (not glibc)")
  out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                       check=True).stdout.split()
  trimmed, before, after = out[0] == "True", float(out[1]), float(out[2])
  assert trimmed
  assert before - after > 200, (before, after)   # most of the 256 MiB went back


def test_reports_false_without_malloc_trim(monkeypatch):
  monkeypatch.setattr(host_memory, "_malloc_trim", lambda: None)
  assert host_memory.release_freed_host_memory() is False
