"""One training step against the official training code (needs a checkout of it).

Set MCC_OFFICIAL_REPO to a checkout of ShaelynZ/synergize-motion-appearance to run it;
it is skipped otherwise. Full 256x256 model, both frameworks in one process: several
minutes and more than 24 GB of memory (on a 24 GiB machine the kernel's out-of-memory
killer stopped it at 24.3 GB resident; each framework's vox256 step alone peaks at
11.6-13.5 GB, docs/performance.md). See docs/training.md.
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


def test_one_training_step_equals_the_official_step():
  from mcc_jax.testing import training_parity  # pylint: disable=import-outside-toplevel

  report = io.StringIO()
  passed = training_parity.run(pathlib.Path(OFFICIAL), batch=1, seed=0,
                               float64_reference=True, out=report)
  print(report.getvalue())
  assert passed, report.getvalue()
