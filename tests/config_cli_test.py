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


def test_a_shipped_configuration_is_found_by_name_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  by_name = config_cli.parse_config(["--config=sample", "--config.total_steps=7"])
  by_path = config_cli.load_config(str(config_cli.shipped_config_path("sample")))
  assert by_name.total_steps == 7
  by_name.total_steps = by_path.total_steps
  assert by_name.to_dict() == by_path.to_dict()
  # The space-separated form too, and each shipped file is the package's own.
  assert config_cli.parse_config(["--config", "vox256"]).model.image_size == 256
  assert set(config_cli.shipped_configs()) >= {"sample", "tiny", "vox256"}
  import mcc_jax.configs  # pylint: disable=import-outside-toplevel

  folder = config_cli.shipped_config_path("tiny").parent
  assert folder.samefile(mcc_jax.configs.__path__[0])


def test_a_config_value_that_looks_like_a_path_is_kept():
  assert config_cli.resolve_config_file("configs/sample.py") == "configs/sample.py"
  assert config_cli.resolve_config_file("mine.py:arg") == "mine.py:arg"
  assert config_cli.resolve_config_file("tiny:arg").endswith("tiny.py:arg")
  with pytest.raises(config_cli.ConfigArgumentError, match=r"no shipped configuration 'nope'.*"
                     r"'sample', 'tiny', 'vox256'"):
    config_cli.parse_config(["--config=nope"])


@pytest.mark.parametrize("name", ["sample", "tiny", "heads"])   # vox256 needs a data root
def test_every_shipped_configuration_passes_the_trainers_checks(name):
  from mcc_jax.train import run_checks  # pylint: disable=import-outside-toplevel
  config = config_cli.parse_config([f"--config={name}"])
  run_checks.validate_config(config)


def test_the_heads_configuration_tests_on_people_it_does_not_train_on():
  datasets = config_cli.parse_config(["--config=heads"]).datasets
  assert datasets.name == "synthetic"
  assert (datasets.train_split, datasets.eval_split) == ("train", "test")
  from mcc_jax import data_pipelines  # pylint: disable=import-outside-toplevel
  source = data_pipelines.sources.get("synthetic")
  train = set(source(datasets, "train").video_names)
  test = set(source(datasets, "test").video_names)
  assert len(test) == 16 and len(train) == 512
  persons = lambda names: {name.split("#")[0].split("-", 2)[2] for name in names}
  # The splits' persons are drawn from disjoint seed streams (synthetic_test checks the
  # looks); here: the in-training evaluation reads the test split's persons.
  assert persons(test) == {f"{p:04d}" for p in range(8)}
  assert train.isdisjoint(test)
