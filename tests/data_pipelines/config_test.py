"""Tests of the ``datasets`` configuration block."""

import os
import subprocess
import sys

import ml_collections
import pytest

from mcc_jax.data_pipelines import config as config_lib


def test_defaults_follow_the_official_training_config():
  config = config_lib.datasets_config()
  config_lib.validate_datasets_config(config)
  assert config.image_size == 256
  assert tuple(config.value_range) == (-1.0, 1.0)
  assert config.id_sampling and config.horizontal_flip and config.time_flip
  assert not config.color_jitter and not config.skip_bad_files
  assert config.max_videos is None
  assert config.max_bad_file_share == 0.01
  assert set(config_lib.DATASET_NAMES) == {"folder", "tfds", "sample", "synthetic"}


def test_overrides_replace_fields_and_update_nested_blocks():
  config = config_lib.datasets_config(name="folder", root="/data/vox", image_size=64,
                                      jitter={"hue": 0.05},
                                      synthetic={"num_frames": 8})
  assert (config.name, config.root, config.image_size) == ("folder", "/data/vox", 64)
  assert config.jitter.hue == 0.05 and config.jitter.brightness == 0.1
  assert config.synthetic.num_frames == 8 and config.synthetic.seed == 0
  config.max_videos = 3  # The placeholder accepts an int later.
  config_lib.validate_datasets_config(config)


@pytest.mark.parametrize("overrides", [{"image_sise": 64}, {"jitter": {"gamma": 1.0}}])
def test_unknown_override_names_the_field(overrides):
  name = next(iter(overrides))
  with pytest.raises(KeyError, match=name if name != "jitter" else "jitter.gamma"):
    config_lib.datasets_config(**overrides)


@pytest.mark.parametrize("field, value, message", [
    ("name", "voxceleb", "datasets.name"),
    ("image_size", 0, "datasets.image_size"),
    ("image_size", -3, "datasets.image_size"),
    ("image_size", 64.0, "datasets.image_size"),
    ("value_range", (1.0, -1.0), "datasets.value_range"),
    ("value_range", (0.0,), "datasets.value_range"),
    ("id_sampling", 1, "datasets.id_sampling"),
    ("skip_bad_files", "yes", "datasets.skip_bad_files"),
    ("train_split", "", "datasets.train_split"),
    ("max_videos", 0, "datasets.max_videos"),
    ("max_bad_file_share", 1.5, "datasets.max_bad_file_share"),
    ("max_bad_file_share", "1%", "datasets.max_bad_file_share"),
])
def test_validation_names_the_invalid_field(field, value, message):
  # Without type safety, as for a block assembled from a plain dict or a flag file.
  config = ml_collections.ConfigDict(config_lib.datasets_config().to_dict(),
                                     type_safe=False)
  config[field] = value
  with pytest.raises(ValueError, match=message):
    config_lib.validate_datasets_config(config)


@pytest.mark.parametrize("name", ["folder", "tfds"])
def test_validation_requires_a_root_for_datasets_on_disk(name):
  with pytest.raises(ValueError, match="datasets.root"):
    config_lib.validate_datasets_config(config_lib.datasets_config(name=name))
  config_lib.validate_datasets_config(config_lib.datasets_config(name=name, root="/x"))


@pytest.mark.parametrize("block, field, value", [
    ("jitter", "hue", 0.7), ("jitter", "brightness", -0.1),
    ("synthetic", "num_frames", 1), ("synthetic", "videos_per_identity", 0)])
def test_validation_checks_nested_fields(block, field, value):
  config = config_lib.datasets_config(**{block: {field: value}})
  with pytest.raises(ValueError, match=f"datasets.{block}.{field}"):
    config_lib.validate_datasets_config(config)


def test_validation_reports_a_missing_field():
  config = config_lib.datasets_config()
  del config["time_flip"]
  with pytest.raises(ValueError, match="datasets.time_flip is missing"):
    config_lib.validate_datasets_config(config)


def test_package_and_config_import_without_tensorflow():
  code = ("import sys\n"
          "import mcc_jax.data_pipelines.config\n"
          "from mcc_jax import data_pipelines\n"
          "data_pipelines.datasets_config(name='sample')\n"
          "heavy = [m for m in ('tensorflow', 'tensorflow_datasets', 'av') "
          "if m in sys.modules]\n"
          "assert not heavy, heavy\n"
          # The kinds are listed without importing them ...
          "kinds = [m for m in sys.modules if m.startswith('mcc_jax.data_pipelines.sources.')]\n"
          "assert not kinds, kinds\n"
          # ... and validating a block imports its kind, still without TensorFlow.
          "for name in data_pipelines.config.DATASET_NAMES:\n"
          "  data_pipelines.validate_datasets_config(\n"
          "      data_pipelines.datasets_config(name=name, root='/data'))\n"
          "heavy = [m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules]\n"
          "assert not heavy, heavy\n")
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr
