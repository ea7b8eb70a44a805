"""Initial parameters follow the official PyTorch code's distributions, family by family.

Training from scratch should start where the official code starts. The official
networks add no initialisation of their own except two (``AppMotionCompFormer.
_init_weights`` exists but is never applied):

* the codebooks, ``nn.Embedding`` rows overwritten by ``uniform_(-1/K, 1/K)``;
* the keypoint detector's jacobian head, zero weights and a ``[1, 0, 0, 1]`` bias;

and their position embeddings are ``torch.zeros`` parameters. Everything else is
PyTorch's default: ``nn.Conv2d`` / ``nn.Linear`` weights and biases ``U(+-1/sqrt(fan_in))``;
``nn.MultiheadAttention`` a Xavier-uniform packed (3D, D) input projection with zero
biases and an output projection with a default weight and a zero bias; norms with
weight 1 and bias 0 (BatchNorm: running mean 0, running variance 1).

Each test initialises our module and a PyTorch module of the same kind and fan-in
(widened where ours has few values, see ``REFERENCE_UNITS``) and compares the samples'
mean, standard deviation and extremes, with tolerances derived from the sample sizes
(see :func:`assert_same_distribution`), so a wrong bound, a wrong fan-in, a normal
instead of a uniform or a non-zero bias fails. Seeds are fixed, so the outcome is too.
"""

import math

import flax
import jax
import numpy as np
import pytest
import torch
from torch import nn

from mcc_jax.models.appearance_compensation import AppearanceCodebookCompensation
from mcc_jax.models.attention import MultiHeadAttention
from mcc_jax.models.codebook_transformer import CodebookTransformerLayer
from mcc_jax.models.discriminator import PatchDiscriminator
from mcc_jax.models.hourglass import Hourglass
from mcc_jax.models.keypoint_detector import KeypointDetector
from mcc_jax.models.motion_compensation import MotionCodebookCompensation
from mcc_jax.models.sft_fusion import SFTFusion
from mcc_jax.models.torch_layers import Conv2d, Linear
from mcc_jax.models import vqgan_blocks
from mcc_jax.ops.quantize import VectorQuantizer
from tests.models import torch_reference
from tests.models.model_testing import identity_grid

# Deviations beyond this many standard errors fail: for a sound initialiser the chance
# of that is below 1e-6 per comparison.
NUM_STANDARD_ERRORS = 5.0
# A uniform sample of size n falls short of its support's edge by an exponential gap of
# mean range / (n + 1); a gap of 20 range / n has probability e^-20.
EDGE_GAPS = 20.0
# PyTorch's laws depend on the fan-in (and, for the attention and the codebook, on the
# width and the code count) only, so reference layers are widened to at least this many
# output units: small layers of ours are then judged against a precisely known law.
REFERENCE_UNITS = 4096
# Reference weight matrices are widened to about this many values only: beyond it the
# reference law is known far better than a layer of ours can test it, and the moments of
# multi-million-value references would dominate the run time.
REFERENCE_WEIGHTS = 2**18


def _flat(x) -> np.ndarray:
  if isinstance(x, torch.Tensor):
    x = x.detach().numpy()
  return np.asarray(x, np.float64).ravel()


def _pooled_moments(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  """Variance and fourth central moment of the common law, from both samples (each
  centred on its own mean): under the hypothesis being tested they share it, and a
  small sample of ours borrows the precision of a large PyTorch sample."""
  centred = np.concatenate([a - a.mean(), b - b.mean()])
  return float(np.mean(centred**2)), float(np.mean(centred**4))


def assert_same_distribution(ours, theirs, name: str) -> None:
  """Our parameter sample and PyTorch's come from the same (uniform or constant) law.

  The sizes may differ (a small layer of ours is compared with a larger PyTorch layer
  of the same fan-in). Mean and standard deviation must agree within
  ``NUM_STANDARD_ERRORS`` standard errors of their difference (the standard error of a
  sample standard deviation is sqrt((m4 - var^2) / n) / (2 std)); our extremes must not
  pass PyTorch's support and must reach its edges, within ``EDGE_GAPS`` mean gaps.

  Args:
    ours: our parameter (any shape; the layout does not matter for the moments).
    theirs: PyTorch's parameter of the same kind.
    name: shown on failure.
  """
  a, b = _flat(ours), _flat(theirs)
  assert b.size > 1, f"{name}: one reference value cannot tell a constant from a law"
  if np.all(b == b[0]):  # a constant initialiser (zeros, ones): must match exactly
    np.testing.assert_array_equal(a, np.full_like(a, b[0]), err_msg=name)
    return
  var, m4 = _pooled_moments(a, b)
  sizes = 1.0 / a.size + 1.0 / b.size
  mean_tol = NUM_STANDARD_ERRORS * math.sqrt(var * sizes)
  assert abs(a.mean() - b.mean()) <= mean_tol, (name, "mean", a.mean(), b.mean(), mean_tol)
  std_tol = NUM_STANDARD_ERRORS * math.sqrt((m4 - var**2) * sizes) / (2 * math.sqrt(var))
  assert abs(a.std() - b.std()) <= std_tol, (name, "std", a.std(), b.std(), std_tol)
  spread = b.max() - b.min()
  outside = EDGE_GAPS * spread / b.size
  short = EDGE_GAPS * spread / a.size + outside
  assert b.max() - short <= a.max() <= b.max() + outside, (name, "max", a.max(), b.max())
  assert b.min() - outside <= a.min() <= b.min() + short, (name, "min", a.min(), b.min())


def _init(module, *args, seed=0, **kwargs):
  # One compiled program, cheaper than compiling every primitive of an eager init; lazy
  # initialisation drops the forward pass, whose output is not needed.
  init = jax.jit(lambda key: module.lazy_init(key, *args, **kwargs))
  return jax.tree.map(np.asarray, init(jax.random.PRNGKey(seed)))


def _compare_conv(ours, theirs: nn.Conv2d, name: str) -> None:
  """Our conv parameters against a PyTorch conv of the same shape; a layer with few
  outputs is judged against a widened copy (same fan-in, hence the same law), since a
  handful of values cannot pin a law down."""
  def widened(units):
    if theirs.out_channels >= units:
      return theirs
    return nn.Conv2d(theirs.in_channels, units, theirs.kernel_size, bias=theirs.bias is not None)

  fan_in = theirs.weight[0].numel()
  assert_same_distribution(ours["kernel"], widened(-(-REFERENCE_WEIGHTS // fan_in)).weight,
                           f"{name}.kernel")
  if theirs.bias is None:
    assert "bias" not in ours, name
  else:
    assert_same_distribution(ours["bias"], widened(REFERENCE_UNITS).bias, f"{name}.bias")


@pytest.mark.parametrize("kernel,c_in,c_out", [(3, 64, 256), (1, 16, 8192), (7, 2, 512)])
def test_conv2d_matches_torch_conv2d(kernel, c_in, c_out):
  """Weights and biases U(+-1/sqrt(c_in k^2)); the cases vary the fan-in by the kernel
  size, so a fan-in without the kernel area (Flax's LeCun fan-in is right, a per-kernel
  count is not) fails, and the 8192 biases pin the bias bound."""
  torch.manual_seed(0)
  ours = _init(Conv2d(c_out, kernel), np.zeros((1, kernel, kernel, c_in), np.float32))
  _compare_conv(ours["params"], nn.Conv2d(c_in, c_out, kernel), "conv")


def test_linear_matches_torch_linear():
  torch.manual_seed(1)
  ours = _init(Linear(4096), np.zeros((1, 64), np.float32))["params"]
  theirs = nn.Linear(64, 4096)
  assert_same_distribution(ours["kernel"], theirs.weight, "kernel")
  assert_same_distribution(ours["bias"], theirs.bias, "bias")


def _compare_attention(ours, theirs: nn.MultiheadAttention, name: str) -> None:
  # PyTorch packs q, k, v into one (3D, D) weight; every row has the same law, so each
  # of our (D, D) projections is compared with the whole packed matrix's law via the
  # matching third.
  width = theirs.embed_dim
  for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
    assert_same_distribution(ours[proj]["kernel"],
                             theirs.in_proj_weight[i * width:(i + 1) * width],
                             f"{name}.{proj}.kernel")
    assert_same_distribution(ours[proj]["bias"], theirs.in_proj_bias[i * width:(i + 1) * width],
                             f"{name}.{proj}.bias")
  assert_same_distribution(ours["out_proj"]["kernel"], theirs.out_proj.weight,
                           f"{name}.out_proj.kernel")
  assert_same_distribution(ours["out_proj"]["bias"], theirs.out_proj.bias,
                           f"{name}.out_proj.bias")


def test_attention_matches_torch_multihead_attention():
  """Xavier-uniform q/k/v projections with the packed (3D, D) matrix's bound
  sqrt(6 / (D + 3D)), not the (D, D) one; zero biases; default out projection weight."""
  torch.manual_seed(2)
  width = 256
  x = np.zeros((1, 2, width), np.float32)
  ours = _init(MultiHeadAttention(8), x, x, x)["params"]
  _compare_attention(ours, nn.MultiheadAttention(width, 8), "attention")


def test_codebook_matches_the_official_uniform_embedding():
  """Codes U(+-1/K): the official quantiser overwrites nn.Embedding's N(0, 1) rows."""
  torch.manual_seed(3)
  ours = _init(VectorQuantizer(1024, 256), np.zeros((1, 256), np.float32))["params"]
  theirs = nn.Embedding(1024, 256)
  theirs.weight.data.uniform_(-1.0 / 1024, 1.0 / 1024)
  assert_same_distribution(ours["codebook"], theirs.weight, "codebook")


def test_norms_start_as_the_identity_like_torch_norms():
  """LayerNorm (transformer), GroupNorm (autoencoder) and BatchNorm (hourglass,
  discriminator): weight 1, bias 0, running mean 0, running variance 1."""
  layer = _init(CodebookTransformerLayer(4), np.zeros((1, 2, 2, 64), np.float32),
                np.zeros((3, 64), np.float32), np.zeros((4, 64), np.float32))["params"]
  for name in ("norm1", "norm2", "norm3"):
    reference = nn.LayerNorm(64)
    assert_same_distribution(layer[name]["scale"], reference.weight, f"{name}.scale")
    assert_same_distribution(layer[name]["bias"], reference.bias, f"{name}.bias")
  block = _init(vqgan_blocks.ResBlock(64), np.zeros((1, 2, 2, 64), np.float32))["params"]
  reference = nn.GroupNorm(32, 64, eps=1e-6)
  for name in ("norm1", "norm2"):
    assert_same_distribution(block[name]["scale"], reference.weight, f"{name}.scale")
    assert_same_distribution(block[name]["bias"], reference.bias, f"{name}.bias")
  hourglass = _init(Hourglass(8, 16, 1), np.zeros((2, 2, 2, 3), np.float32), train=False)
  reference = nn.BatchNorm2d(16)
  norm, stats = hourglass["params"]["down_0"]["norm"], hourglass["batch_stats"]["down_0"]["norm"]
  assert_same_distribution(norm["scale"], reference.weight, "batch norm scale")
  assert_same_distribution(norm["bias"], reference.bias, "batch norm bias")
  assert_same_distribution(stats["mean"], reference.running_mean, "running mean")
  assert_same_distribution(stats["var"], reference.running_var, "running var")


def test_keypoint_detector_heads_match_the_official_initialisation():
  """The keypoint head is a default 7x7 conv; the jacobian head starts at zero weights and
  an identity bias, so every jacobian starts at the identity."""
  torch.manual_seed(4)
  k, width = 15, 32
  model = KeypointDetector(num_keypoints=k, block_expansion=width, max_features=64,
                           num_blocks=2)
  params = _init(model, np.zeros((1, 64, 64, 3), np.float32), train=False)["params"]
  features = width + 3  # the hourglass output: its last decoder block plus the input
  _compare_conv(params["keypoint_head"], nn.Conv2d(features, k, 7), "keypoint_head")
  jacobian = nn.Conv2d(features, 4 * k, 7)
  jacobian.weight.data.zero_()
  jacobian.bias.data.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * k))
  np.testing.assert_array_equal(params["jacobian_head"]["kernel"], 0.0)
  np.testing.assert_array_equal(params["jacobian_head"]["bias"], jacobian.bias.detach().numpy())


def test_discriminator_matches_torch_layer_by_layer():
  torch.manual_seed(5)
  ndf, num_layers = 32, 3
  variables = _init(PatchDiscriminator(ndf, num_layers), np.zeros((1, 64, 64, 3), np.float32),
                    train=False)
  reference = torch_reference.patch_discriminator(ndf, num_layers)
  convs = [m for m in reference if isinstance(m, nn.Conv2d)]
  norms = [m for m in reference if isinstance(m, nn.BatchNorm2d)]
  assert len(convs) == num_layers + 2 and len(norms) == num_layers
  for i, theirs in enumerate(convs):
    _compare_conv(variables["params"][f"conv_{i}"], theirs, f"conv_{i}")
  for i, theirs in enumerate(norms, start=1):
    ours, stats = variables["params"][f"norm_{i}"], variables["batch_stats"][f"norm_{i}"]
    assert_same_distribution(ours["scale"], theirs.weight, f"norm_{i}.scale")
    assert_same_distribution(ours["bias"], theirs.bias, f"norm_{i}.bias")
    assert_same_distribution(stats["mean"], theirs.running_mean, f"norm_{i}.mean")
    assert_same_distribution(stats["var"], theirs.running_var, f"norm_{i}.var")


def _torch_counterpart(path: tuple[str, ...], flat: dict) -> torch.Tensor:
  """A PyTorch tensor drawn as the official code would draw our parameter at ``path``."""
  value = flat[path]
  name, leaf = (path[-2] if len(path) > 1 else ""), path[-1]
  if leaf == "position_embedding":  # nn.Parameter(torch.zeros(...))
    return torch.zeros(value.shape)
  if leaf == "codebook":  # nn.Embedding, rows overwritten by uniform(-1/K, 1/K)
    k, d = value.shape
    return nn.Embedding(k, max(d, REFERENCE_UNITS)).weight.data.uniform_(-1.0 / k, 1.0 / k)
  if name.startswith("norm"):  # LayerNorm, GroupNorm
    return (torch.ones if leaf == "scale" else torch.zeros)(value.shape)
  if name in ("q_proj", "k_proj", "v_proj", "out_proj"):
    width = value.shape[-1]
    mha = nn.MultiheadAttention(width, 1)
    if name == "out_proj":  # default Linear weight, zero bias; widen the weight
      return nn.Linear(width, REFERENCE_UNITS).weight if leaf == "kernel" else mha.out_proj.bias
    return mha.in_proj_weight if leaf == "kernel" else mha.in_proj_bias
  kernel = flat[path[:-1] + ("kernel",)]
  fan_in = int(np.prod(kernel.shape[:-1]))
  units = max(kernel.shape[-1],
              -(-REFERENCE_WEIGHTS // fan_in) if leaf == "kernel" else REFERENCE_UNITS)
  if kernel.ndim == 4:  # HWIO convolution
    layer = nn.Conv2d(kernel.shape[2], units, kernel.shape[0])
  elif kernel.ndim == 2:  # (in, out) linear
    layer = nn.Linear(kernel.shape[0], units)
  else:
    raise AssertionError(f"unclassified parameter {'/'.join(path)}")
  return layer.weight if leaf == "kernel" else layer.bias


def _assert_every_parameter_follows_torch(params, name: str) -> None:
  flat = flax.traverse_util.flatten_dict(params)
  for path in sorted(flat):
    assert_same_distribution(flat[path], _torch_counterpart(path, flat), f"{name}/{'/'.join(path)}")


def test_every_parameter_of_the_compensation_modules_follows_the_official_code():
  """Walks every parameter of the motion and appearance compensation modules (flow
  encoder and decoder, query and context convolutions, both transformers, patch
  projections, codebooks, position embeddings, the flow refiner), the SFT fusion block
  and the autoencoder's attention block, and compares each with the PyTorch tensor of the
  same kind and shape: a layer that slipped to Flax's default initialisers (LeCun normal
  kernels, zero biases) fails here."""
  torch.manual_seed(6)
  g, f = 4, 8
  motion = MotionCodebookCompensation(num_scales=1, grid_size=g, code_dim=32, codebook_size=64,
                                      num_layers=1, num_heads=4, num_code_scales=1)
  flow = identity_grid(f)[None]
  motion_params = _init(motion, 0, 0, flow, np.ones((1, f, f, 1), np.float32),
                        np.zeros((1, g, g, 64), np.float32), np.zeros((1, g, g, 32), np.float32),
                        train=True)["params"]
  assert {"codebook", "position_embedding", "layers_0", "flow_refiner"} <= set(motion_params)
  _assert_every_parameter_follows_torch(motion_params, "motion")

  appearance = AppearanceCodebookCompensation(feature_channels=(64,), grid_size=g, code_dim=64,
                                              codebook_size=64, num_layers=1, num_heads=4,
                                              num_code_scales=1)
  appearance_params = _init(appearance, 0, 0, np.zeros((1, g, g, 64), np.float32),
                            flow)["params"]
  assert {"codebook", "position_embedding", "embeddings_0"} <= set(appearance_params)
  _assert_every_parameter_follows_torch(appearance_params, "appearance")

  # The decoder's fusion block and the autoencoder's attention block.
  feature = np.zeros((1, 4, 4, 64), np.float32)
  _assert_every_parameter_follows_torch(_init(SFTFusion(), feature, feature)["params"], "fusion")
  _assert_every_parameter_follows_torch(_init(vqgan_blocks.AttnBlock(), feature)["params"],
                                        "attn_block")
