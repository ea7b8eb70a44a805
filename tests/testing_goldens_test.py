"""Seeded weights and inputs for the golden-output checks."""

import numpy as np
import pytest
import torch

from mcc_jax.testing import goldens


def test_smooth_frames_equal_torch_bilinear_upsampling():
  frames = goldens.smooth_frames(3, 2, 40, coarse=8)
  coarse = np.random.default_rng(3).uniform(-1.0, 1.0, (2, 8, 8, 3))
  expected = torch.nn.functional.interpolate(
      torch.from_numpy(coarse).permute(0, 3, 1, 2), size=(40, 40), mode="bilinear",
      align_corners=False).permute(0, 2, 3, 1).numpy()
  assert frames.dtype == np.float32 and frames.shape == (2, 40, 40, 3)
  np.testing.assert_allclose(frames, expected, atol=1e-6)


def test_tensors_are_reproducible_and_depend_on_network_name_and_seed():
  draw = lambda *a, **k: goldens.draw_tensor(*a, **k)
  a = draw("generator", "encoder.blocks.0.weight", (8, 3, 3, 3), goldens.PARAMETER)
  np.testing.assert_array_equal(a, draw("generator", "encoder.blocks.0.weight", (8, 3, 3, 3),
                                        goldens.PARAMETER))
  for other in (draw("generator", "encoder.blocks.1.weight", (8, 3, 3, 3), goldens.PARAMETER),
                draw("discriminator", "encoder.blocks.0.weight", (8, 3, 3, 3), goldens.PARAMETER),
                draw("generator", "encoder.blocks.0.weight", (8, 3, 3, 3), goldens.PARAMETER,
                     seed=1)):
    assert not np.array_equal(a, other)
  assert np.abs(a).max() <= 1 / np.sqrt(27)                      # torch's default bound


def test_special_tensors_follow_the_documented_scheme():
  draw = goldens.draw_tensor
  bias = draw("m", "kp_detector.jacobian.bias", (40,), goldens.PARAMETER)
  identity = np.tile([1.0, 0.0, 0.0, 1.0], 10)
  assert 0 < np.abs(bias - identity).max() < 0.3
  var = draw("m", "x.norm.running_var", (1000,), goldens.RUNNING_VAR)
  assert var.min() >= 0.5 and var.max() <= 1.5
  scale = draw("m", "x.norm.weight", (1000,), goldens.PARAMETER)
  assert abs(scale.mean() - 1) < 0.02 and 0.08 < scale.std() < 0.12
  assert draw("m", "x.num_batches_tracked", (), goldens.COUNT).dtype == np.int64
  kp = draw("m", "kp_detector.kp.weight", (10, 32, 7, 7), goldens.PARAMETER)
  assert np.abs(kp).max() > 10 / np.sqrt(32 * 49)


def test_fixed_buffers_come_from_the_stored_values():
  manifest = [("conv.weight", (2, 2), goldens.PARAMETER), ("down.weight", (1, 3), goldens.FIXED)]
  stored = np.array([[0.25, 0.5, 0.25]], np.float32)
  state = goldens.state_dict("m", manifest, {"down.weight": stored})
  np.testing.assert_array_equal(state["down.weight"], stored)
  with pytest.raises(KeyError, match="down.weight"):
    goldens.state_dict("m", manifest, {})
  with pytest.raises(ValueError, match="fixed buffer"):
    goldens.draw_tensor("m", "down.weight", (1, 3), goldens.FIXED)
  assert goldens.tensor_kind("a.running_mean", False) == goldens.RUNNING_MEAN
  assert goldens.tensor_kind("a.weight", True) == goldens.PARAMETER


def test_vgg19_manifest_is_torchvision_vgg19_features():
  # torchvision's vgg19().features built from torch primitives (no download).
  layers, channels = [], 3
  for entry in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M"):
    if entry == "M":
      layers.append(torch.nn.MaxPool2d(2, 2))
    else:
      layers += [torch.nn.Conv2d(channels, entry, 3, padding=1), torch.nn.ReLU()]
      channels = entry
  features = torch.nn.Module()
  features.features = torch.nn.Sequential(*layers)
  expected = [(name, tuple(t.shape), goldens.PARAMETER)
              for name, t in features.state_dict().items()]
  assert goldens.vgg19_manifest() == expected


def test_equivariance_transform_is_seeded_near_identity():
  theta, control = goldens.equivariance_transform(0, 2)
  assert theta.dtype == np.float32 and theta.shape == (2, 2, 3) and control.shape == (2, 25)
  np.testing.assert_array_equal(theta, goldens.equivariance_transform(0, 2)[0])
  assert not np.array_equal(theta, goldens.equivariance_transform(1, 2)[0])
  deviation = theta - np.eye(2, 3)
  assert 0.01 < float(np.std(deviation)) < 0.1            # sigma_affine = 0.05
  assert 0.001 < float(np.std(control)) < 0.01            # sigma_tps = 0.005


def test_one_ulp_moves_every_element_to_a_neighbouring_float():
  x = goldens.smooth_frames(0, 1, 16)
  moved = goldens.one_ulp(x, 0, 1)
  up = moved == np.nextafter(x, np.float32(np.inf))
  down = moved == np.nextafter(x, np.float32(-np.inf))
  assert np.all(up | down)
  assert 0.4 < float(np.mean(up)) < 0.6                    # both directions, at random
  np.testing.assert_array_equal(moved, goldens.one_ulp(x, 0, 1))
  assert not np.array_equal(moved, goldens.one_ulp(x, 0, 2))
