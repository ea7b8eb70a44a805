"""Shared fixtures of the trainer tests.

The trainer tests compile the same tiny training step several times (in this process
and in subprocesses); a persistent compilation cache shared by the whole session lets
every compilation after the first be a cache hit.
"""

import os
import pathlib
import tempfile

import jax
import pytest

CACHE = pathlib.Path(tempfile.gettempdir()) / "mcc_jax_test_compilation_cache"
CACHE.mkdir(exist_ok=True)
jax.config.update("jax_compilation_cache_dir", str(CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def subprocess_environment() -> dict:
  """Environment for trainer subprocesses: the same compilation cache, the project on
  the path."""
  env = dict(os.environ)
  env["JAX_COMPILATION_CACHE_DIR"] = str(CACHE)
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  root = str(pathlib.Path(__file__).resolve().parents[2])
  env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  return env


@pytest.fixture
def subprocess_env():
  """:func:`subprocess_environment` as a fixture."""
  return subprocess_environment()


@pytest.fixture(scope="module")
def programs():
  """Compiled training programs shared by the runs of one test module (they compile once)."""
  from mcc_jax.train.program import CompiledPrograms  # pylint: disable=import-outside-toplevel
  kept = CompiledPrograms()
  yield kept
  kept.clear()


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
  """Frees each module's compiled programs and caches: they hold gigabytes on CPU."""
  yield
  jax.clear_caches()
  import gc  # pylint: disable=import-outside-toplevel
  gc.collect()
