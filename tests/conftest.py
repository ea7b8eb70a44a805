"""Test-session setup shared by every test file.

* Eight virtual CPU devices let the sharding tests build a real Mesh on one machine.
* The test models are tiny, so XLA's compile time dominates their run time; the
  lowest LLVM optimisation level roughly halves it without changing any result beyond
  float rounding.

Both flags must be set before JAX is first imported.
"""

import os

_FLAGS = ("--xla_force_host_platform_device_count=8", "--xla_backend_optimization_level=0")
_existing = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join(
    [_existing] + [flag for flag in _FLAGS if flag.split("=")[0] not in _existing]).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402  (imported after the flags on purpose)

# Reference comparisons are made in full float32.
jax.config.update("jax_default_matmul_precision", "highest")

import pytest  # noqa: E402


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
