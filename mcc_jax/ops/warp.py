"""Bilinear / nearest sampling of NHWC feature maps with PyTorch's ``grid_sample`` semantics.

The coordinate conventions follow ``torch.nn.functional.grid_sample`` exactly, so that
flows estimated by a ported PyTorch model warp features to the same place:

* a grid holds normalised ``(x, y)`` pairs, x along the width and y along the height,
  with -1 and +1 at the image border;
* ``align_corners=True``: -1 and +1 are the centres of the corner pixels;
  ``align_corners=False``: -1 and +1 are the outer edges of the corner pixels;
* ``padding_mode`` decides what is read outside the image: ``'zeros'`` (out-of-range taps
  contribute nothing), ``'border'`` (coordinates are clamped to the image) or
  ``'reflection'`` (coordinates are mirrored at the border, then clamped).

Everything is vectorised over batch, output positions and channels (no Python loops),
differentiable with respect to both the image and the grid, and usable under ``jit``,
``vmap`` and ``grad``.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax.ops import resize

SampleMode = Literal["bilinear", "nearest"]
PaddingMode = Literal["zeros", "border", "reflection"]

_MODES = ("bilinear", "nearest")
_PADDING_MODES = ("zeros", "border", "reflection")


def coordinate_grid(h: int, w: int, dtype=jnp.float32) -> jax.Array:
  """The identity sampling grid in the FOMM convention.

  Args:
    h: grid height.
    w: grid width.
    dtype: floating dtype of the result.

  Returns:
    (h, w, 2) array whose ``[i, j]`` entry is ``(x_j, y_i)`` with
    ``x_j = 2 j / (w - 1) - 1`` and ``y_i = 2 i / (h - 1) - 1``; sampling with it and
    ``align_corners=True`` reproduces the input.
  """
  if h < 2 or w < 2:
    raise ValueError(f"coordinate_grid needs h >= 2 and w >= 2, got ({h}, {w}).")
  # Computed in float64 on the host and rounded once: every coordinate is the nearest
  # float to its exact value. (Computed in float32 by XLA, the division may become a
  # multiplication by a rounded reciprocal, a small error with the same sign across the
  # grid, which shifts every sampled position coherently.)
  x = 2.0 * (np.arange(w, dtype=np.float64) / (w - 1)) - 1.0
  y = 2.0 * (np.arange(h, dtype=np.float64) / (h - 1)) - 1.0
  grid = np.stack(np.broadcast_arrays(x[None, :], y[:, None]), axis=-1)
  return jnp.asarray(grid, dtype=dtype)


def linspace_grid(h: int, w: int, dtype=jnp.float32) -> jax.Array:
  """The identity grid as ``torch.linspace(-1, 1, n)`` computes it in float32.

  The official generator subtracts this grid from its sampling grids to turn them into
  displacements (the motion codebook's input and the target of its reconstruction
  loss), and builds it with ``torch.linspace`` in float32 whatever the model's dtype.
  PyTorch's kernel fills the first half as ``start + step * i`` and the second half as
  ``end - step * (n - 1 - i)``, each with one rounding (a fused multiply-add), so some
  coordinates differ from :func:`coordinate_grid`'s correctly rounded ones by an ulp
  (46 of 64 at n = 64). Reproducing it keeps those displacements equal to the official
  ones to the last bit in float32, and equal to the official float64 run's in float64.

  Args:
    h: grid height.
    w: grid width.
    dtype: floating dtype of the result (the float32 values, widened or narrowed).

  Returns:
    (h, w, 2) array of ``(x_j, y_i)`` pairs, like :func:`coordinate_grid`.
  """
  if h < 2 or w < 2:
    raise ValueError(f"linspace_grid needs h >= 2 and w >= 2, got ({h}, {w}).")

  def linspace(n):
    start, end = np.float32(-1.0), np.float32(1.0)
    step = np.float64((end - start) / np.float32(n - 1))   # rounded to float32 first
    i = np.arange(n, dtype=np.float64)
    # A float32 step times an integer below 2**24 is exact in float64, so one rounding
    # of the float64 result to float32 equals the fused multiply-add.
    low = np.float64(start) + step * i
    high = np.float64(end) - step * (n - 1 - i)
    return np.where(i < n // 2, low, high).astype(np.float32)

  grid = np.stack(np.broadcast_arrays(linspace(w)[None, :], linspace(h)[:, None]), axis=-1)
  return jnp.asarray(grid, dtype=dtype)


def _unnormalize(coord: jax.Array, size: int, align_corners: bool) -> jax.Array:
  """Maps normalised coordinates in [-1, 1] to pixel coordinates."""
  if align_corners:
    return (coord + 1.0) * 0.5 * (size - 1)
  return ((coord + 1.0) * size - 1.0) * 0.5


def _reflect(coord: jax.Array, twice_low: int, twice_high: int) -> jax.Array:
  """Mirrors ``coord`` into [twice_low / 2, twice_high / 2] (PyTorch's reflect_coordinates)."""
  if twice_low == twice_high:
    return jnp.zeros_like(coord)
  low = twice_low / 2.0
  span = (twice_high - twice_low) / 2.0
  coord = jnp.abs(coord - low)
  extra = jnp.fmod(coord, span)
  flips = jnp.floor(coord / span)
  even = jnp.fmod(flips, 2.0) == 0
  return jnp.where(even, extra + low, span - extra + low)


def _source_coordinates(coord: jax.Array, size: int, padding_mode: str,
                        align_corners: bool) -> jax.Array:
  """Normalised grid coordinates -> pixel coordinates, after the padding rule."""
  coord = _unnormalize(coord, size, align_corners)
  if padding_mode == "border":
    coord = jnp.clip(coord, 0.0, size - 1.0)
  elif padding_mode == "reflection":
    if align_corners:
      coord = _reflect(coord, 0, 2 * (size - 1))
    else:
      coord = _reflect(coord, -1, 2 * size - 1)
    coord = jnp.clip(coord, 0.0, size - 1.0)
  else:
    # Every tap of a sample beyond one pixel outside the map reads zeros; clamping
    # there keeps the integer conversion in range without changing any value or
    # gradient.
    coord = jnp.clip(coord, -2.0, size + 1.0)
  return coord


def _gather_taps(flat_image: jax.Array, iy: jax.Array, ix: jax.Array, h: int,
                 w: int) -> tuple[jax.Array, jax.Array]:
  """Reads integer pixel positions, returning the values and an in-bounds mask.

  Args:
    flat_image: (B, H*W, C).
    iy, ix: (B, P) integer pixel indices, possibly out of range.
    h, w: image height and width.

  Returns:
    values (B, P, C) with out-of-range taps read from a clamped position, and a
    (B, P) boolean mask that is False for those taps.
  """
  valid = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
  index = jnp.clip(iy, 0, h - 1) * w + jnp.clip(ix, 0, w - 1)
  values = jnp.take_along_axis(flat_image, index[..., None], axis=1, mode="clip")
  return values, valid


def _read(flat: jax.Array, index: jax.Array) -> jax.Array:
  """flat (B, N, C) rows at index (B, P) -> (B, P, C)."""
  return jnp.take_along_axis(flat, index[..., None], axis=1, mode="clip")


@jax.custom_jvp
def _blend_taps(flat: jax.Array, weights: jax.Array, index: jax.Array) -> jax.Array:
  """``sum_t weights[:, t, :, None] * flat[index[:, t]]`` over the 4 bilinear taps.

  Args:
    flat: (B, H*W, C) image.
    weights: (B, 4, P) tap weights (zero for taps outside the image).
    index: (B, 4, P) int32 row of each tap in ``flat``.

  Returns:
    (B, P, C) in the wider of the two dtypes.
  """
  out = 0.0
  for tap in range(4):
    out = out + weights[:, tap, :, None] * _read(flat, index[:, tap])
  return out


@_blend_taps.defjvp
def _blend_taps_jvp(primals, tangents):
  # Defined by hand for the cost of the reverse pass: written as one gather over all
  # four taps, the image tangent transposes into a single scatter-add (autodiff of the
  # primal would give four), which is what XLA's CPU backend spends its time on.
  flat, weights, index = primals
  dflat, dweights, _ = tangents
  out = _blend_taps(flat, weights, index)
  b, taps, p = index.shape
  dout = 0.0
  for tap in range(4):
    dout = dout + dweights[:, tap, :, None] * _read(flat, index[:, tap])
  read_all = _read(dflat, index.reshape(b, taps * p)).reshape(b, taps, p, -1)
  dout = dout + jnp.sum(weights[..., None] * read_all, axis=1)
  return out, dout.astype(out.dtype)


def grid_sample(image: jax.Array,
                grid: jax.Array,
                *,
                mode: SampleMode = "bilinear",
                padding_mode: PaddingMode = "zeros",
                align_corners: bool = False) -> jax.Array:
  """Samples ``image`` at the normalised positions in ``grid`` (torch ``grid_sample``).

  Args:
    image: (B, H, W, C) floating array.
    grid: (B, Ho, Wo, 2) normalised ``(x, y)`` sampling positions; values outside
      [-1, 1] are handled by ``padding_mode``.
    mode: ``'bilinear'`` or ``'nearest'`` (ties round half to even, as in PyTorch).
    padding_mode: ``'zeros'``, ``'border'`` or ``'reflection'``.
    align_corners: whether -1 and +1 address the centres (True) or the outer edges
      (False) of the corner pixels.

  Returns:
    (B, Ho, Wo, C) array with the dtype of ``image``.
  """
  if mode not in _MODES:
    raise ValueError(f"grid_sample: mode must be one of {_MODES}, got {mode!r}.")
  if padding_mode not in _PADDING_MODES:
    raise ValueError(
        f"grid_sample: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}.")
  if image.ndim != 4:
    raise ValueError(f"grid_sample: image must be (B, H, W, C), got shape {image.shape}.")
  if grid.ndim != 4 or grid.shape[-1] != 2:
    raise ValueError(f"grid_sample: grid must be (B, Ho, Wo, 2), got shape {grid.shape}.")
  if grid.shape[0] != image.shape[0]:
    raise ValueError(
        f"grid_sample: image and grid batch sizes differ: {image.shape[0]} vs {grid.shape[0]}.")

  b, h, w, c = image.shape
  _, ho, wo, _ = grid.shape
  out_dtype = image.dtype
  # Coordinate arithmetic in float32 at least: bfloat16 cannot address a 256-pixel row.
  coord_dtype = jnp.promote_types(grid.dtype, jnp.float32)
  grid = grid.astype(coord_dtype).reshape(b, ho * wo, 2)
  x = _source_coordinates(grid[..., 0], w, padding_mode, align_corners)
  y = _source_coordinates(grid[..., 1], h, padding_mode, align_corners)
  flat = image.reshape(b, h * w, c)

  if mode == "nearest":
    ix = jnp.round(x).astype(jnp.int32)  # jnp.round rounds half to even, like nearbyint.
    iy = jnp.round(y).astype(jnp.int32)
    values, valid = _gather_taps(flat, iy, ix, h, w)
    out = jnp.where(valid[..., None], values, jnp.zeros((), out_dtype))
    return out.reshape(b, ho, wo, c)

  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  # The weights are differentiable functions of (x, y); the floors are constants,
  # which gives exactly PyTorch's gradient with respect to the grid.
  wx1 = x - x0
  wx0 = 1.0 - wx1
  wy1 = y - y0
  wy0 = 1.0 - wy1
  ix0 = x0.astype(jnp.int32)
  iy0 = y0.astype(jnp.int32)
  ix = jnp.stack([ix0, ix0 + 1, ix0, ix0 + 1], axis=1)  # (B, 4, P): NW, NE, SW, SE
  iy = jnp.stack([iy0, iy0, iy0 + 1, iy0 + 1], axis=1)
  weights = jnp.stack([wx0 * wy0, wx1 * wy0, wx0 * wy1, wx1 * wy1], axis=1)
  valid = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
  acc_dtype = jnp.promote_types(out_dtype, jnp.float32)
  weights = jnp.where(valid, weights, 0.0).astype(acc_dtype)
  index = jnp.clip(iy, 0, h - 1) * w + jnp.clip(ix, 0, w - 1)
  out = _blend_taps(flat, weights, index)
  return out.astype(out_dtype).reshape(b, ho, wo, c)


def resize_flow(flow: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Resizes a sampling grid or flow field bilinearly with ``align_corners=True``.

  This is how the official model brings a 64x64 deformation to the size of each
  feature map; the values (normalised coordinates) are not rescaled.

  Args:
    flow: (B, h, w, 2) grid of normalised coordinates (or any (B, h, w, C) field).
    size: target (H, W).

  Returns:
    (B, H, W, C) resized field; ``flow`` itself when the size already matches.
  """
  if tuple(flow.shape[1:3]) == tuple(size):
    return flow
  return resize.resize_bilinear(flow, size, align_corners=True)


def warp(features: jax.Array, deformation: jax.Array) -> jax.Array:
  """Backward-warps features by a deformation, as the generator does at every scale.

  Args:
    features: (B, H, W, C) feature map.
    deformation: (B, h, w, 2) sampling grid in normalised coordinates (for each output
      position, where to read ``features``); resized to (H, W) when h, w differ.

  Returns:
    (B, H, W, C) warped features: bilinear sampling, zeros outside the map,
    ``align_corners=True``.
  """
  if features.ndim != 4:
    raise ValueError(f"warp: features must be (B, H, W, C), got shape {features.shape}.")
  if deformation.ndim != 4 or deformation.shape[-1] != 2:
    raise ValueError(f"warp: deformation must be (B, h, w, 2), got shape {deformation.shape}.")
  deformation = resize_flow(deformation, features.shape[1:3])
  return grid_sample(features, deformation, mode="bilinear", padding_mode="zeros",
                     align_corners=True)
