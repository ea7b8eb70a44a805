"""Checks that mcc-jax computes the same function as the official PyTorch model.

    python tools/check_official_parity.py --official-repo PATH [--rtol 1e-4] [--batch 2]

The comparison itself is :mod:`mcc_jax.testing.official_parity` (what is compared, how it
is judged, the exit status); the test suite runs it through the same function.
"""

import sys

from mcc_jax.testing import official_parity

if __name__ == "__main__":
  sys.exit(official_parity.main())
