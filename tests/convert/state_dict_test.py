"""StateDictMapper: layout conversions agree with PyTorch layers; every error is named."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from mcc_jax.convert.state_dict import ConversionError, StateDictMapper, check_tree_matches
from mcc_jax.models.torch_layers import Conv2d, Linear


def _numpy_state(module):
  return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def test_conv_layout_matches_torch():
  torch.manual_seed(0)
  conv = torch.nn.Conv2d(5, 7, 3, stride=2, padding=1)
  x = np.random.default_rng(0).normal(size=(2, 5, 9, 9)).astype(np.float32)
  mapper = StateDictMapper(_numpy_state(torch.nn.Sequential(conv)))
  params = mapper.conv("0")
  mapper.finish()
  got = Conv2d(7, 3, stride=2, padding=1).apply({"params": params}, x.transpose(0, 2, 3, 1))
  expected = conv(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_linear_and_conv1x1_layouts_match_torch():
  torch.manual_seed(1)
  linear, conv = torch.nn.Linear(6, 4), torch.nn.Conv2d(6, 4, 1)
  x = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
  mapper = StateDictMapper({**{f"l.{k}": v for k, v in _numpy_state(linear).items()},
                            **{f"c.{k}": v for k, v in _numpy_state(conv).items()}})
  for params, reference in ((mapper.dense("l"), linear), (mapper.conv1x1_as_dense("c"), None)):
    got = Linear(4).apply({"params": params}, x)
    if reference is None:
      expected = conv(torch.from_numpy(x)[:, :, None, None])[:, :, 0, 0]
    else:
      expected = reference(torch.from_numpy(x))
    np.testing.assert_allclose(np.asarray(got), expected.detach().numpy(), atol=1e-6)
  mapper.finish()


def test_batch_norm_running_statistics_match_torch_eval_mode():
  torch.manual_seed(2)
  bn = torch.nn.BatchNorm2d(4)
  with torch.no_grad():
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.uniform_(-1, 1)
  bn.eval()
  x = np.random.default_rng(2).normal(size=(2, 4, 3, 3)).astype(np.float32)
  mapper = StateDictMapper({f"bn.{k}": v for k, v in _numpy_state(bn).items()})
  params, stats = mapper.batch_norm("bn")
  mapper.finish()  # num_batches_tracked was consumed too
  got = nn.BatchNorm(use_running_average=True, epsilon=1e-5).apply(
      {"params": params, "batch_stats": stats}, x.transpose(0, 2, 3, 1))
  expected = bn(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_errors_name_the_tensors():
  state = {"a.weight": np.zeros((2, 3)), "a.bias": np.zeros(2), "b.weight": np.zeros(1)}
  mapper = StateDictMapper(state)
  with pytest.raises(ConversionError, match="no tensor 'c.weight'"):
    mapper.take("c.weight")
  with pytest.raises(ConversionError, match=r"'a.weight' has shape \(2, 3\), expected \(3, 2\)"):
    mapper.take("a.weight", (3, 2))
  mapper.dense("a")
  with pytest.raises(ConversionError, match="mapped twice"):
    mapper.take("a.bias")
  with pytest.raises(ConversionError, match="not mapped: b.weight"):
    mapper.finish()


def test_tree_check_lists_missing_unexpected_and_wrong_shapes():
  expected = {"x": {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)}, "y": jnp.zeros(3)}
  converted = {"x": {"kernel": np.zeros((2, 3))}, "z": np.zeros(1)}
  with pytest.raises(ConversionError) as error:
    check_tree_matches(converted, expected)
  message = str(error.value)
  assert "missing 2: x/bias, y" in message
  assert "unexpected 1: z" in message
  assert "x/kernel: (2, 3) vs expected (2, 2)" in message
