"""Whole-model parity with the official PyTorch code (needs a checkout of it).

Set MCC_OFFICIAL_REPO to a checkout of ShaelynZ/synergize-motion-appearance to run it;
it is skipped otherwise. See docs/parity.md.
"""

import io
import os
import pathlib

import pytest

OFFICIAL = os.environ.get("MCC_OFFICIAL_REPO")

pytestmark = [
    pytest.mark.parity,
    pytest.mark.skipif(not OFFICIAL, reason="set MCC_OFFICIAL_REPO to the official checkout"),
]


def test_converted_official_networks_compute_the_same_outputs():
  from mcc_jax.testing import official_parity  # pylint: disable=import-outside-toplevel

  report = io.StringIO()
  # Judged against a float64 run of the official networks: float32 rounding differs
  # between machines (AVX2, AVX-512), the port's distance to float64 does not.
  passed = official_parity.run(pathlib.Path(OFFICIAL), rtol=1e-4, batch=2, seed=0,
                               float64_reference=True, out=report)
  print(report.getvalue())
  assert passed, report.getvalue()
  assert "DIFFERENT" not in report.getvalue()
