"""Shared fixtures of the trainer tests.

The trainer tests compile the same tiny training step several times (in this process
and in subprocesses); the persistent compilation cache that tests/conftest.py sets up
for the whole session (through the environment, so subprocesses share it) lets every
compilation after the first be a cache hit.
"""

import os
import pathlib

import jax
import pytest


def subprocess_environment() -> dict:
  """Environment for trainer subprocesses: the session's compilation cache (inherited),
  the project on the path."""
  env = dict(os.environ)
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
