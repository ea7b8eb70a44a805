"""--config files and --config.x overrides through ml_collections' config_flags."""

import pytest

from mcc_jax import config_cli


def test_split_keeps_values_with_their_flags():
  config_args, rest = config_cli.split_config_args(
      ["--workdir", "w", "--config", "configs/tiny.py", "--config.batch_size=8",
       "--config.model.variant", "mmc", "--other=1"])
  assert config_args == ["--config", "configs/tiny.py", "--config.batch_size=8",
                         "--config.model.variant", "mmc"]
  assert rest == ["--workdir", "w", "--other=1"]


def test_overrides_are_typed_and_applied():
  config = config_cli.parse_config(["--config=configs/tiny.py", "--config.batch_size=8",
                                    "--config.model.variant", "mmc",
                                    "--config.model.generator.ch_mult=(1,2,2,4)"])
  assert config.batch_size == 8 and config.model.variant == "mmc"
  assert config.model.generator.ch_mult == (1, 2, 2, 4)


@pytest.mark.parametrize("args,match", [
    (["--config=configs/tiny.py", "--config.batch_sizes=3"], "batch_sizes"),
    (["--config=configs/tiny.py", "--config.batch_size=abc"], "batch_size=abc"),
    (["--config=configs/nope.py"], "nope.py"),
    ([], "--config is required"),
])
def test_bad_arguments_are_named(args, match):
  with pytest.raises(config_cli.ConfigArgumentError, match=match):
    config_cli.parse_config(args)


def test_default_file_when_absent():
  config = config_cli.parse_config(["--config.batch_size=2"], default="configs/tiny.py")
  assert config.batch_size == 2 and config.model.image_size == 64
