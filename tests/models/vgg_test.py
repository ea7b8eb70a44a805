"""The perceptual networks: VGG19 against a torch model of torchvision's architecture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn

from mcc_jax import cli
from mcc_jax import losses
from mcc_jax.convert.state_dict import ConversionError
from mcc_jax.convert.vgg import convert_vgg
from mcc_jax.losses import perceptual
from mcc_jax.models.vgg import VGG_LAYERS, VGGFeatures


def _torchvision_features(architecture):
  """torchvision's vgg*.features as an nn.Sequential with the same indices (no download)."""
  layers, channels = [], 3
  for entry in VGG_LAYERS[architecture]:
    if entry == "M":
      layers.append(nn.MaxPool2d(2, 2))
    else:
      layers += [nn.Conv2d(channels, entry, 3, padding=1), nn.ReLU(inplace=True)]
      channels = entry
  return nn.Sequential(*layers)


def _torch_taps(features, images, taps):
  x = (torch.from_numpy(images).permute(0, 3, 1, 2)
       - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
           [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
  out = []
  for index, layer in enumerate(features):
    x = layer(x)
    if index in taps:
      out.append(x.clone().permute(0, 2, 3, 1).detach().numpy())
    if index == taps[-1]:
      break
  return out


def test_converted_random_vgg19_gives_torchvisions_five_taps():
  torch.manual_seed(0)
  features = _torchvision_features("vgg19")
  state = {f"features.{k}": v for k, v in features.state_dict().items()}
  state["classifier.0.weight"] = torch.zeros(4, 4)   # ignored, as in a real checkpoint
  params = convert_vgg(state, "vgg19")
  images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  ours = VGGFeatures("vgg19").apply(params, images)
  with torch.no_grad():
    theirs = _torch_taps(features, images, (1, 6, 11, 20, 29))
  assert len(ours) == 5
  for mine, reference in zip(ours, theirs):
    assert mine.shape == reference.shape
    rel = np.linalg.norm(np.asarray(mine) - reference) / np.linalg.norm(reference)
    assert rel <= 1e-5


def test_converter_names_missing_and_misshaped_tensors():
  features = _torchvision_features("vgg19")
  state = {f"features.{k}": v for k, v in features.state_dict().items()}
  missing = dict(state)
  del missing["features.21.weight"]
  with pytest.raises(ConversionError, match="features.21.weight"):
    convert_vgg(missing, "vgg19")
  wrong = dict(state)
  wrong["features.0.bias"] = torch.zeros(65)
  with pytest.raises(ConversionError, match=r"features.0.bias has shape \(65,\)"):
    convert_vgg(wrong, "vgg19")


def test_convert_command_writes_weights_the_loss_loads(tmp_path):
  torch.manual_seed(1)
  features = _torchvision_features("vgg19")
  path = tmp_path / "vgg19.pth"
  torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
  output = tmp_path / "vgg19.npz"
  assert cli.main(["convert-vgg19", str(path), "--output", str(output)]) == 0
  config = type("C", (), {"perceptual_network": "vgg19", "vgg19_weights": str(output)})
  network = losses.load_perceptual_network(config)
  expected = convert_vgg({f"features.{k}": v for k, v in features.state_dict().items()})
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(network.params), expected)


def test_missing_vgg19_weights_name_the_convert_command(tmp_path):
  config = type("C", (), {"perceptual_network": "vgg19",
                          "vgg19_weights": str(tmp_path / "absent.npz")})
  with pytest.raises(FileNotFoundError, match="mcc-jax convert-vgg19 vgg19.pth --output"):
    losses.load_perceptual_network(config)
  config.perceptual_network = "vgg20"
  with pytest.raises(ValueError, match="perceptual_network must be one of"):
    losses.load_perceptual_network(config)


def test_vgg16_lpips_loads_offline_with_the_lpips_taps():
  config = type("C", (), {"perceptual_network": "vgg16_lpips", "vgg19_weights": ""})
  network = losses.load_perceptual_network(config)
  images = jnp.zeros((1, 32, 32, 3))
  taps = network.features(network.params, images)
  assert [t.shape[-1] for t in taps] == [64, 128, 256, 512, 512]
  assert [t.shape[1] for t in taps] == [32, 16, 8, 4, 2]
  # Real weights, not an initialiser: the first conv's kernels are not uniform noise.
  first = np.asarray(network.params["params"]["features_0"]["kernel"])
  assert all(np.isfinite(np.asarray(t)).all() for t in taps) and np.abs(first).max() > 0.3
