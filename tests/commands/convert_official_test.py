"""``mcc-jax convert-official`` end to end, on checkpoints with the official layout.

The .pth files are written here from the official state-dict layout (names and shapes
in tests/convert/official_state_dict_shapes.json); the values are arbitrary except the
fixed blur kernels, which the converter checks.
"""

import json
import pathlib

import numpy as np
import pytest
import torch

from mcc_jax import cli
from mcc_jax.checkpoints.model_files import load_model_checkpoint
from mcc_jax.ops.antialias import antialias_kernel

SHAPES = json.loads((pathlib.Path(__file__).parents[1] / "convert" /
                     "official_state_dict_shapes.json").read_text())


def _state(network, seed):
  rng = np.random.default_rng(seed)
  state = {}
  for name, shape in SHAPES[network].items():
    if name.endswith("down.weight"):
      value = np.broadcast_to(antialias_kernel(0.25), tuple(shape)).astype(np.float32)
    elif name.endswith("num_batches_tracked"):
      value = np.asarray(100, np.int64)
    elif name.endswith("running_var"):
      value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:  # zeros are cheap to write; a few entries mark where values land
      value = np.zeros(shape, np.float32)
      value.reshape(-1)[:3] = rng.normal(size=min(3, value.size))
    state[name] = torch.from_numpy(np.ascontiguousarray(value))
  return state


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
  root = tmp_path_factory.mktemp("official")
  generator = _state("generator", 0)
  torch.save({"params": _state("generator", 1), "params_ema": generator}, root / "net_g.pth")
  torch.save({"params": _state("motion_estimator", 2)}, root / "net_me.pth")
  torch.save({"params": _state("discriminator", 3)}, root / "net_d.pth")
  return root, generator


def test_converts_all_networks_into_a_model_checkpoint(checkpoints, tmp_path, capsys):
  root, generator = checkpoints
  output = tmp_path / "converted"
  code = cli.main(["convert-official", "--generator", str(root / "net_g.pth"),
                   "--motion-estimator", str(root / "net_me.pth"),
                   "--discriminator", str(root / "net_d.pth"), "--output", str(output)])
  assert code == 0
  assert f"wrote {output}" in capsys.readouterr().out
  variables, config = load_model_checkpoint(output)
  assert set(variables) == {"generator", "motion_estimator", "discriminator"}
  assert config.model.variant == "full" and config.model.image_size == 256
  # The EMA weights were converted (the default key), in HWIO layout.
  np.testing.assert_array_equal(
      variables["generator"]["params"]["encoder"]["conv_in"]["kernel"],
      generator["encoder.blocks.0.weight"].numpy().transpose(2, 3, 1, 0))
  assert variables["motion_estimator"]["batch_stats"]["dense_motion"]["hourglass"]["down_0"][
      "norm"]["var"].min() >= 0.5


def test_refuses_to_overwrite_and_names_missing_files(checkpoints, tmp_path):
  root, _ = checkpoints
  args = ["convert-official", "--generator", str(root / "net_g.pth"),
          "--motion-estimator", str(root / "net_me.pth"), "--output", str(tmp_path / "out")]
  assert cli.main(args) == 0
  with pytest.raises(FileExistsError, match="already exists"):
    cli.main(args)
  assert cli.main(args + ["--overwrite"]) == 0
  missing = list(args)
  missing[2] = str(root / "nope.pth")
  with pytest.raises(FileNotFoundError, match="nope.pth does not exist"):
    cli.main(missing + ["--overwrite"])


def test_wrong_key_and_mismatched_config_are_reported(checkpoints, tmp_path):
  root, _ = checkpoints
  base = ["convert-official", "--generator", str(root / "net_g.pth"),
          "--motion-estimator", str(root / "net_me.pth"), "--output", str(tmp_path / "o")]
  with pytest.raises(ValueError, match="has no entry 'ema'"):
    cli.main(base + ["--generator-key", "ema"])
  from mcc_jax.convert.state_dict import ConversionError  # pylint: disable=import-outside-toplevel
  with pytest.raises(ConversionError, match="not mapped"):
    cli.main(base + ["--config.model.variant=mmc"])
