"""Resizing of NHWC maps with ``torch.nn.functional.interpolate`` semantics.

``jax.image.resize`` anti-aliases when it shrinks and has no ``align_corners`` option;
the official model relies on PyTorch's plain bilinear interpolation (mostly with
``align_corners=True``) and on nearest-neighbour doubling, so those are provided here.
Bilinear resizing is separable: it is applied as two small dense interpolation
matrices, which is exact and maps onto fast matrix units on every backend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def bilinear_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
  """The (out_size, in_size) matrix of 1-D linear interpolation weights.

  Args:
    in_size: number of input samples.
    out_size: number of output samples.
    align_corners: PyTorch's convention: True maps the end samples onto each other;
      False treats samples as pixel centres and clamps below zero.

  Returns:
    float64 numpy matrix whose rows sum to one.
  """
  if in_size < 1 or out_size < 1:
    raise ValueError(f"bilinear_matrix: sizes must be positive, got {in_size} -> {out_size}.")
  dst = np.arange(out_size, dtype=np.float64)
  if align_corners:
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    src = dst * scale
  else:
    src = np.maximum((dst + 0.5) * (in_size / out_size) - 0.5, 0.0)
  lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  hi = np.minimum(lo + 1, in_size - 1)
  frac = src - lo
  matrix = np.zeros((out_size, in_size), np.float64)
  np.add.at(matrix, (np.arange(out_size), lo), 1.0 - frac)
  np.add.at(matrix, (np.arange(out_size), hi), frac)
  return matrix


def resize_bilinear(x: jax.Array, size: tuple[int, int], *, align_corners: bool) -> jax.Array:
  """Bilinear resize of a (B, H, W, C) map to ``size`` = (H', W'), without anti-aliasing.

  Args:
    x: (B, H, W, C) array.
    size: output (height, width).
    align_corners: as in ``torch.nn.functional.interpolate``.

  Returns:
    (B, H', W', C) array of the same dtype.
  """
  if x.ndim != 4:
    raise ValueError(f"resize_bilinear: expected (B, H, W, C), got shape {x.shape}.")
  out_h, out_w = (int(s) for s in size)
  _, h, w, _ = x.shape
  if (out_h, out_w) == (h, w):
    return x
  compute = jnp.promote_types(x.dtype, jnp.float32)
  rows = jnp.asarray(bilinear_matrix(h, out_h, align_corners), compute)
  cols = jnp.asarray(bilinear_matrix(w, out_w, align_corners), compute)
  precision = jax.lax.Precision.HIGHEST
  y = jnp.einsum("oh,bhwc->bowc", rows, x.astype(compute), precision=precision)
  y = jnp.einsum("pw,bowc->bopc", cols, y, precision=precision)
  return y.astype(x.dtype)


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling by an integer factor (``interpolate(mode='nearest')``).

  Args:
    x: (B, H, W, C) array.
    factor: integer scale factor.

  Returns:
    (B, H * factor, W * factor, C) array.
  """
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, factor, w, factor, c))
  return x.reshape(b, h * factor, w * factor, c)
