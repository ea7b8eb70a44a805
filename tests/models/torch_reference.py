"""Float64 PyTorch re-computations of small building blocks (not a test file itself).

The references are written from the documented architecture with ``torch.nn.functional``
and take our Flax parameters (NHWC maps, HWIO kernels); they share no code with the
modules under test, so a wrong concatenation order, channel layout or normalisation in
a module shows as a mismatch. Everything runs in float64: differences then measure our
float32 arithmetic, not the reference's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def nchw(x) -> torch.Tensor:
  """NHWC array -> float64 NCHW tensor."""
  return torch.from_numpy(np.asarray(x, np.float64)).permute(0, 3, 1, 2).contiguous()


def nhwc(x: torch.Tensor) -> np.ndarray:
  """NCHW tensor -> float64 NHWC array."""
  return x.detach().permute(0, 2, 3, 1).numpy()


def tensor(x) -> torch.Tensor:
  return torch.from_numpy(np.asarray(x, np.float64))


def conv(params, x: torch.Tensor, padding=0, stride=1) -> torch.Tensor:
  """``nn.Conv2d`` with our ``{'kernel': HWIO, 'bias'?}`` parameters; padding as in PyTorch
  (an int) or ``((top, bottom), (left, right))``."""
  weight = tensor(params["kernel"]).permute(3, 2, 0, 1)
  if not isinstance(padding, int):
    (top, bottom), (left, right) = padding
    x = F.pad(x, (left, right, top, bottom))
    padding = 0
  bias = tensor(params["bias"]) if "bias" in params else None
  return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def group_norm(params, x: torch.Tensor, groups: int = 32, eps: float = 1e-6) -> torch.Tensor:
  return F.group_norm(x, groups, tensor(params["scale"]), tensor(params["bias"]), eps)


def batch_norm_eval(params, stats, x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
  return F.batch_norm(x, tensor(stats["mean"]), tensor(stats["var"]), tensor(params["scale"]),
                      tensor(params["bias"]), training=False, eps=eps)


def swish(x: torch.Tensor) -> torch.Tensor:
  return x * torch.sigmoid(x)


def vqgan_res_block(params, x: torch.Tensor) -> torch.Tensor:
  """The VQGAN residual block: norm, swish, 3x3 conv, twice, plus a 1x1 shortcut when the
  width changes."""
  h = conv(params["conv1"], swish(group_norm(params["norm1"], x)), padding=1)
  h = conv(params["conv2"], swish(group_norm(params["norm2"], h)), padding=1)
  if "shortcut" in params:
    x = conv(params["shortcut"], x)
  return x + h


def vqgan_attn_block(params, x: torch.Tensor) -> torch.Tensor:
  """Single-head attention over all positions: softmax(q^T k / sqrt(C)) v, 1x1 projections,
  a residual."""
  b, c, h, w = x.shape
  normed = group_norm(params["norm"], x)
  q, k, v = (conv(params[n], normed).reshape(b, c, h * w) for n in ("q", "k", "v"))
  weights = torch.softmax(torch.einsum("bcq,bck->bqk", q, k) * c**-0.5, dim=-1)
  out = torch.einsum("bqk,bck->bcq", weights, v).reshape(b, c, h, w)
  return x + conv(params["proj_out"], out)


def vqgan_downsample(params, x: torch.Tensor) -> torch.Tensor:
  """Zero padding of one row and column at the bottom and right, stride-2 3x3 conv."""
  return conv(params["conv"], F.pad(x, (0, 1, 0, 1)), stride=2)


def vqgan_upsample(params, x: torch.Tensor) -> torch.Tensor:
  return conv(params["conv"], F.interpolate(x, scale_factor=2, mode="nearest"), padding=1)


def sft_fusion(params, enc: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
  """The official Fuse_sft_block (w = 1) plus the multi-scale fusion convolution of ``enc``:
  ``h = ResBlock(cat([enc, dec]))``, ``dec + dec * scale(h) + shift(h) + conv(enc)``."""
  h = vqgan_res_block(params["encode"], torch.cat([enc, dec], dim=1))

  def branch(p):
    return conv(p["conv2"], F.leaky_relu(conv(p["conv1"], h, padding=1), 0.2), padding=1)

  out = dec + (dec * branch(params["scale"]) + branch(params["shift"]))
  return out + conv(params["feature_conv"], enc, padding=1)


def patch_discriminator(ndf: int, num_layers: int, in_channels: int = 3) -> torch.nn.Sequential:
  """The VQGAN PatchGAN discriminator as a ``torch.nn.Sequential`` (float32, PyTorch's
  default initialisation): 4x4 convolutions, BatchNorm after all but the first and last."""
  nn = torch.nn
  layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
  mult = 1
  for n in range(1, num_layers):
    previous, mult = mult, min(2**n, 8)
    layers += [nn.Conv2d(ndf * previous, ndf * mult, 4, 2, 1, bias=False),
               nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2)]
  previous, mult = mult, min(2**num_layers, 8)
  layers += [nn.Conv2d(ndf * previous, ndf * mult, 4, 1, 1, bias=False),
             nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
  return nn.Sequential(*layers)


def relative_error(got, expected) -> float:
  """``|got - expected| / |expected|`` in the L2 norm over all elements."""
  got = np.asarray(got, np.float64)
  expected = np.asarray(expected, np.float64)
  return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def randomise_norms(params, rng: np.random.Generator):
  """A copy of a parameter tree whose norm layers have random (non-identity) scales and
  biases: with the initial scale 1 and bias 0 a norm cannot tell its channels apart, and
  a channel permutation before it would partly cancel."""
  def visit(node):
    if not isinstance(node, dict):
      return np.asarray(node)
    out = {k: visit(v) for k, v in node.items()}
    if set(out) == {"scale", "bias"}:
      n = out["scale"].shape
      out = {"scale": rng.uniform(0.5, 1.5, n).astype(np.float32),
             "bias": (0.3 * rng.normal(size=n)).astype(np.float32)}
    return out
  return visit(dict(params))
