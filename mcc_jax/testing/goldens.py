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
