"""load_model: workdir or checkpoint, and weights checked against the configuration."""

import numpy as np
import pytest

from mcc_jax import config_cli
from mcc_jax import inference


def test_loads_the_checkpoint_it_was_given(tiny_checkpoint):
  path, config = tiny_checkpoint
  model = inference.load_model(checkpoint=path)
  assert model.image_size == config.model.image_size == 64
  assert str(path) in model.description
  assert set(model.variables) == {"motion_estimator", "generator"}
  assert all(isinstance(x, np.ndarray) for x in
             __import__("jax").tree.leaves(model.variables))


def test_a_configuration_the_weights_do_not_fit_is_refused(tiny_checkpoint):
  path, _ = tiny_checkpoint
  other = config_cli.load_config("configs/tiny.py", ["--config.model.variant=mmc"])
  with pytest.raises(inference.CheckpointMismatchError) as error:
    inference.load_model(checkpoint=path, config=other)
  message = str(error.value)
  assert str(path) in message and "does not match the configuration" in message
  assert "unexpected" in message  # the appearance codebooks mmc does not have
  wider = config_cli.load_config("configs/tiny.py",
                                 ["--config.model.generator.motion_codebook_size=32"])
  with pytest.raises(inference.CheckpointMismatchError, match="shape differs"):
    inference.load_model(checkpoint=path, config=wider)


def test_missing_sources_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="nowhere: no such checkpoint"):
    inference.load_model(checkpoint=tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="no such workdir"):
    inference.load_model(workdir=tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="holds no training checkpoints"):
    inference.load_model(workdir=tmp_path)
  with pytest.raises(ValueError, match="exactly one"):
    inference.load_model()
