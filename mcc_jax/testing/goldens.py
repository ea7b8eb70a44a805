"""Seeded weights and inputs that both sides of a golden-output check can rebuild.

Golden outputs of the official PyTorch networks (``tests/goldens/``, written by
``tools/make_official_goldens.py`` from a checkout of the official code) are only
useful if our side can run the same networks without torch or that checkout. So every
weight is drawn here, with numpy alone, from the tensor's name, shape and a seed; the
golden file records each state-dict tensor's name, shape and kind, and keeps the few
fixed buffers (blur kernels) as values.

Seeding scheme (record of what the goldens were made with; changing it invalidates
them): tensor ``name`` of network ``network`` gets the values of
``np.random.default_rng([seed, zlib.crc32(f"{network}/{name}".encode())])``:

* weights with two or more dimensions: uniform in +-1/sqrt(fan_in) (torch's default
  bound; fan_in = the product of all dimensions but the first), except
  ``kp_detector.kp.weight`` (times 30: sharp heatmaps spread the keypoints over the
  frame) and ``jacobian.weight`` (normal, std 0.01);
* codebooks and position embeddings (``embedding.weight``, ``position_emb``): normal,
  std 0.5, so that no code or position is trivially zero;
* one-dimensional ``weight`` (normalisation scales): 1 + normal(0.1); biases:
  normal(0.1), except ``jacobian.bias``: the identity per map + normal(0.05);
* BatchNorm ``running_mean``: normal(0.1); ``running_var``: uniform in [0.5, 1.5];
  ``num_batches_tracked``: 0.
"""

from __future__ import annotations

import zlib
from typing import Iterable, Mapping

import numpy as np

PARAMETER = "parameter"
RUNNING_MEAN = "running_mean"
RUNNING_VAR = "running_var"
COUNT = "count"
FIXED = "fixed"
KINDS = (PARAMETER, RUNNING_MEAN, RUNNING_VAR, COUNT, FIXED)


def tensor_kind(name: str, is_parameter: bool) -> str:
  """The kind of a state-dict tensor, from its name and whether it is a parameter."""
  if is_parameter:
    return PARAMETER
  if name.endswith("running_mean"):
    return RUNNING_MEAN
  if name.endswith("running_var"):
    return RUNNING_VAR
  if name.endswith("num_batches_tracked"):
    return COUNT
  return FIXED


def _rng(network: str, name: str, seed: int) -> np.random.Generator:
  return np.random.default_rng([seed, zlib.crc32(f"{network}/{name}".encode())])


def draw_tensor(network: str, name: str, shape: Iterable[int], kind: str,
                seed: int = 0) -> np.ndarray:
  """The seeded value of one state-dict tensor (float32; int64 for counters).

  Raises:
    ValueError: for a ``fixed`` tensor (its value is stored, not drawn) or an unknown kind.
  """
  shape = tuple(int(s) for s in shape)
  rng = _rng(network, name, seed)
  if kind == COUNT:
    return np.zeros(shape, np.int64)
  if kind == RUNNING_MEAN:
    value = 0.1 * rng.standard_normal(shape)
  elif kind == RUNNING_VAR:
    value = rng.uniform(0.5, 1.5, shape)
  elif kind == PARAMETER:
    value = _draw_parameter(rng, name, shape)
  elif kind == FIXED:
    raise ValueError(f"{network}/{name} is a fixed buffer: its value is stored, not drawn")
  else:
    raise ValueError(f"unknown tensor kind {kind!r} for {network}/{name}; expected one of "
                     f"{KINDS}")
  return value.astype(np.float32)


def _draw_parameter(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
  if "position_emb" in name or name.endswith("embedding.weight"):
    return 0.5 * rng.standard_normal(shape)
  if name.endswith("jacobian.weight"):
    return 0.01 * rng.standard_normal(shape)
  if name.endswith("jacobian.bias"):
    identity = np.tile(np.array([1.0, 0.0, 0.0, 1.0]), shape[0] // 4)
    return identity + 0.05 * rng.standard_normal(shape)
  if len(shape) >= 2:
    bound = 1.0 / np.sqrt(np.prod(shape[1:]))
    if name.endswith("kp_detector.kp.weight"):
      bound *= 30.0
    return rng.uniform(-bound, bound, shape)
  if name.endswith("weight"):
    return 1.0 + 0.1 * rng.standard_normal(shape)
  return 0.1 * rng.standard_normal(shape)


def state_dict(network: str, manifest: Iterable[tuple[str, tuple[int, ...], str]],
               fixed: Mapping[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
  """Rebuilds a network's state dict from its manifest (name, shape, kind per tensor).

  Args:
    network: the network's name in the goldens (part of every tensor's seed).
    manifest: the tensors in state-dict order.
    fixed: the stored values of the ``fixed`` tensors, by name.
    seed: the goldens' seed.

  Raises:
    KeyError: when a fixed tensor's value is missing.
  """
  out = {}
  for name, shape, kind in manifest:
    if kind == FIXED:
      if name not in fixed:
        raise KeyError(f"{network}/{name} is a fixed buffer without a stored value")
      out[name] = np.asarray(fixed[name])
    else:
      out[name] = draw_tensor(network, name, shape, kind, seed)
  return out


def smooth_frames(seed: int, batch: int, size: int, coarse: int = 16) -> np.ndarray:
  """Random frames in [-1, 1], (batch, size, size, 3) float32, smooth as real ones are.

  Uniform noise on a ``coarse`` x ``coarse`` grid, bilinearly upsampled with half-pixel
  centres (torch's ``align_corners=False``), in numpy alone.
  """
  rng = np.random.default_rng(seed)
  grid = rng.uniform(-1.0, 1.0, (batch, coarse, coarse, 3))
  centres = (np.arange(size) + 0.5) * (coarse / size) - 0.5
  centres = np.clip(centres, 0.0, coarse - 1)
  low = np.floor(centres).astype(int)
  high = np.minimum(low + 1, coarse - 1)
  frac = centres - low
  rows = (grid[:, low] * (1 - frac)[None, :, None, None]
          + grid[:, high] * frac[None, :, None, None])
  frames = (rows[:, :, low] * (1 - frac)[None, None, :, None]
            + rows[:, :, high] * frac[None, None, :, None])
  return frames.astype(np.float32)


# torchvision's VGG19 ``features`` (conv widths; 'M' = max pooling): the perceptual
# network of the training-step goldens, whose weights are drawn like the others'.
VGG19_FEATURES = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512,
                  "M", 512, 512, 512, 512, "M")


def vgg19_manifest() -> list[tuple[str, tuple[int, ...], str]]:
  """(name, shape, kind) of torchvision VGG19's ``features`` tensors, in state-dict order."""
  manifest, channels, index = [], 3, 0
  for entry in VGG19_FEATURES:
    if entry == "M":
      index += 1                              # max pooling
    else:
      manifest.append((f"features.{index}.weight", (entry, channels, 3, 3), PARAMETER))
      manifest.append((f"features.{index}.bias", (entry,), PARAMETER))
      channels, index = entry, index + 2      # convolution, ReLU
  return manifest


def equivariance_transform(seed: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
  """The fixed equivariance transform of the training-step goldens, float32.

  ``theta`` = identity + normal(0.05) (the official ``sigma_affine``), the 25
  thin-plate-spline parameters normal(0.005) (``sigma_tps``), drawn from
  ``np.random.default_rng([seed, 1])`` in that order.

  Returns:
    theta (batch, 2, 3) and control parameters (batch, 25).
  """
  rng = np.random.default_rng([seed, 1])
  theta = np.eye(2, 3)[None] + 0.05 * rng.standard_normal((batch, 2, 3))
  control = 0.005 * rng.standard_normal((batch, 25))
  return theta.astype(np.float32), control.astype(np.float32)


def one_ulp(x: np.ndarray, seed: int, stream: int) -> np.ndarray:
  """``x`` (float32) with every element moved to a neighbouring float32.

  The direction of each element is up or down with equal odds, from
  ``np.random.default_rng([seed, 2, stream])`` (one stream per perturbed array). Steps
  on such inputs sample how far float32 rounding alone carries a computation across its
  discontinuities (see
  :func:`mcc_jax.testing.parity.judge`'s ``reference_runs``).
  """
  rng = np.random.default_rng([seed, 2, stream])
  direction = np.where(rng.random(x.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
  return np.nextafter(np.asarray(x, np.float32), direction)


def network_state_dicts(metadata: Mapping, arrays: Mapping[str, np.ndarray]) -> dict:
  """Every network's state dict, rebuilt from a goldens file's metadata and arrays.

  Args:
    metadata: the goldens' JSON (``seed`` and ``networks``: per network the manifest).
    arrays: the goldens' arrays (``fixed/{network}/{name}`` hold the fixed buffers).

  Returns:
    ``{network: {name: array}}`` for every network of the manifest.
  """
  out = {}
  for network, entries in metadata["networks"].items():
    prefix = f"fixed/{network}/"
    fixed = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    manifest = [(name, tuple(shape), kind) for name, shape, kind in entries]
    out[network] = state_dict(network, manifest, fixed, metadata["seed"])
  return out
