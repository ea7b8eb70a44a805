"""A script that ends while an endless pipeline is reading ahead must exit cleanly."""

import os
import subprocess
import sys

import pytest

_SCRIPT = """
from mcc_jax import data_pipelines
config = data_pipelines.datasets_config(
    name="synthetic", image_size=16, synthetic=dict(num_train_identities=2, num_frames=4))
batches = data_pipelines.build_train_pipeline(
    config, 4, seed=0, process_index=0, process_count=1).as_numpy_iterator()
next(batches)  # Readers are still busy filling the prefetch buffers at exit.
print("done", flush=True)
"""


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_interpreter_exits_with_a_live_iterator():
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "done"
  assert "Traceback" not in result.stderr
