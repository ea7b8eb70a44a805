"""Test-session setup shared by every test file.

Eight virtual CPU devices let the sharding tests build a real Mesh on one machine;
the flag must be set before JAX is first imported.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402  (imported after the flag on purpose)

# Reference comparisons are made in full float32.
jax.config.update("jax_default_matmul_precision", "highest")
