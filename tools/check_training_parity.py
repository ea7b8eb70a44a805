"""Checks that one mcc-jax training step equals one step of the official training code.

    python tools/check_training_parity.py --official-repo PATH [--float64-reference]
        [--batch 1] [--seed 0]

The comparison itself is :mod:`mcc_jax.testing.training_parity` (what is compared, how
it is judged, the exit status); the test suite runs it through the same function.
"""

import sys

from mcc_jax.testing import training_parity

if __name__ == "__main__":
  sys.exit(training_parity.main())
