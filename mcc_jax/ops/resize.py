"""Resizing of NHWC maps with ``torch.nn.functional.interpolate`` semantics.

``jax.image.resize`` anti-aliases when it shrinks and has no ``align_corners`` option;
the official model relies on PyTorch's plain bilinear interpolation (mostly with
``align_corners=True``) and on nearest-neighbour doubling, so those are provided here.

Bilinear resizing is separable: along each axis, output sample ``o`` blends the two
input samples ``lo(o)`` and ``hi(o)`` with weight ``frac(o)``. It is computed exactly
that way -- two static gathers and a blend per axis -- which reads only the rows and
columns it needs and keeps the NHWC layout (a dense interpolation matrix would make XLA
transpose whole feature maps). The source positions are computed in float32 with
PyTorch's formulas, so the blend weights are the ones PyTorch uses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def bilinear_taps(in_size: int, out_size: int, align_corners: bool,
                  dtype=np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The two input samples and the blend weight of each output sample along one axis.

  Args:
    in_size: number of input samples.
    out_size: number of output samples.
    align_corners: PyTorch's convention: True maps the end samples onto each other;
      False treats samples as pixel centres and clamps below zero.
    dtype: the arithmetic of the source positions, as PyTorch computes them in the
      input's dtype: float32 for float32 (and narrower) inputs, float64 for float64.

  Returns:
    ``(lo, hi, frac)``: int32 indices and ``dtype`` weights of shape (out_size,); output
    ``o`` is ``(1 - frac[o]) * x[lo[o]] + frac[o] * x[hi[o]]``.
  """
  if in_size < 1 or out_size < 1:
    raise ValueError(f"bilinear_taps: sizes must be positive, got {in_size} -> {out_size}.")
  f32 = np.dtype(dtype).type
  dst = np.arange(out_size, dtype=f32)
  if align_corners:
    scale = f32(in_size - 1) / f32(out_size - 1) if out_size > 1 else f32(0)
    src = f32(scale) * dst
  else:
    scale = f32(in_size) / f32(out_size)
    src = np.maximum(f32(scale) * (dst + f32(0.5)) - f32(0.5), f32(0))
  lo = np.minimum(np.floor(src).astype(np.int32), in_size - 1)
  hi = np.minimum(lo + 1, in_size - 1)
  frac = (src - lo.astype(f32)).astype(f32)
  return lo, hi, frac


def _resize_axis(x: jax.Array, axis: int, out_size: int, align_corners: bool) -> jax.Array:
  lo, hi, frac = bilinear_taps(x.shape[axis], out_size, align_corners,
                               jnp.promote_types(x.dtype, jnp.float32))
  shape = [1] * x.ndim
  shape[axis] = out_size
  frac = jnp.asarray(frac).reshape(shape).astype(x.dtype)
  return (jnp.take(x, jnp.asarray(lo), axis=axis) * (1 - frac)
          + jnp.take(x, jnp.asarray(hi), axis=axis) * frac)


def resize_bilinear(x: jax.Array, size: tuple[int, int], *, align_corners: bool) -> jax.Array:
  """Bilinear resize of a (B, H, W, C) map to ``size`` = (H', W'), without anti-aliasing.

  Args:
    x: (B, H, W, C) array.
    size: output (height, width).
    align_corners: as in ``torch.nn.functional.interpolate``.

  Returns:
    (B, H', W', C) array of the same dtype (float32 arithmetic for narrower inputs).
  """
  if x.ndim != 4:
    raise ValueError(f"resize_bilinear: expected (B, H, W, C), got shape {x.shape}.")
  out_h, out_w = (int(s) for s in size)
  _, h, w, _ = x.shape
  if (out_h, out_w) == (h, w):
    return x
  y = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  if out_h != h:
    y = _resize_axis(y, 1, out_h, align_corners)
  if out_w != w:
    y = _resize_axis(y, 2, out_w, align_corners)
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
