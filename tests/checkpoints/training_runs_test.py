"""Checkpoint compatibility checks and the public restore functions (no training)."""

import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.configs import tiny
from mcc_jax import checkpoints
from mcc_jax.checkpoints import training_runs


def test_config_differences_name_each_model_field():
  saved, current = tiny.get_config(), tiny.get_config()
  current.model.generator.nf = 64
  current.model.num_keypoints = 5
  current.batch_size = 128             # not a model field: resuming may change it
  current.model.dtype = "bfloat16"     # computation only: compatible
  lines = training_runs.config_differences(saved, current)
  assert lines == ["model.generator.nf: 32 in the checkpoint, 64 now",
                   "model.num_keypoints: 10 in the checkpoint, 5 now"]
  assert training_runs.config_differences(saved, tiny.get_config()) == []


def test_restore_functions_name_a_workdir_without_checkpoints(tmp_path):
  with pytest.raises(FileNotFoundError, match="holds no training checkpoints"):
    checkpoints.restore_params(tmp_path)
  assert checkpoints.latest_step(tmp_path) is None


def test_incompatible_resume_is_refused(tmp_path):
  config = tiny.get_config()
  saver = training_runs.Checkpointer(tmp_path, max_to_keep=2, asynchronous=False)
  state = {"step": jnp.array(1)}
  assert saver.save(1, state, config)
  saver.wait_until_finished()
  saver.check_compatible(config)
  other = tiny.get_config()
  other.model.variant = "mmc"
  with pytest.raises(training_runs.IncompatibleCheckpointError, match="model.variant: 'full'"):
    saver.check_compatible(other)
  assert checkpoints.restore_config(tmp_path).model.variant == "full"
  assert checkpoints.latest_step(tmp_path) == 1
  restored = saver.restore({"step": jnp.array(0)})
  np.testing.assert_array_equal(restored["step"], 1)
  saver.close()


def test_readers_leave_a_save_in_progress_alone(tmp_path):
  # Another process (a multi-host run's other hosts, an evaluation job following a live
  # run) may be writing step 2 while this one reads: opening the run to read must not
  # remove the save's temporary directory, or the writer fails mid-save.
  config = tiny.get_config()
  saver = training_runs.Checkpointer(tmp_path, max_to_keep=2, asynchronous=False)
  assert saver.save(1, {"step": jnp.array(1)}, config)
  saver.close()
  in_progress = tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp" / "state"
  in_progress.mkdir(parents=True)
  (in_progress / "part").write_bytes(b"written so far")
  assert checkpoints.latest_step(tmp_path) == 1
  assert checkpoints.restore_config(tmp_path).model.variant == "full"
  assert (in_progress / "part").read_bytes() == b"written so far"
