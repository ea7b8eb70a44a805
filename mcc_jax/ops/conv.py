"""2-D convolution over NHWC maps that stays fast on maps smaller than its kernel.

XLA rewrites a convolution whose feature map covers fewer positions than its window (a
3x3 kernel over a 2x2 or 1x1 map, the deepest layers of a VGG on a small pyramid level
or of an hourglass's bottleneck) by swapping its two operands, so that the map becomes
the window. The swapped convolution has a layout that XLA's CPU backend hands to its
generic loop instead of its convolution library: in jax 0.10 a 3x3, 512-channel
convolution over a batch of four 2x2 maps took 37 ms forward and 83 ms forward and
backward where the same arithmetic as a matrix product takes 1.6 and 5 ms (2-core AMD
EPYC; ``python benchmarks/ops.py`` times it). The gradient with respect to the input is
itself a convolution over the output's positions, so a small output (a strided layer)
is swapped as well.

:func:`conv2d` therefore computes those cases as one matrix product of the ``k * k``
shifted views of the padded input with the kernel reshaped to ``(k * k * C_in, C_out)``
(im2col); their gradients are matrix products, pads and slices, none of them a
convolution. Every other case is ``jax.lax.conv_general_dilated``. Both compute the
same sums in a different order (float rounding apart, the same function).
"""

from __future__ import annotations

from typing import Sequence, Union

import jax
import jax.numpy as jnp

Padding = Union[int, Sequence[tuple[int, int]]]


def _pairs(padding: Padding) -> tuple[tuple[int, int], tuple[int, int]]:
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
  if len(pairs) != 2:
    raise ValueError(f"padding must be an int or two (low, high) pairs, got {padding!r}")
  return pairs


def output_size(size: int, kernel_size: int, stride: int, padding: tuple[int, int]) -> int:
  """Output length of a convolution along one axis (PyTorch's and XLA's formula)."""
  return (size + padding[0] + padding[1] - kernel_size) // stride + 1


def computes_by_patches(input_hw: Sequence[int], kernel_size: int, stride: int = 1,
                        padding: Padding = 0) -> bool:
  """Whether :func:`conv2d` takes the matrix-product route for this geometry.

  True when the kernel is larger than 1x1 and the input or the output map has fewer
  positions than the kernel window (``H * W < k * k``): the convolutions XLA would swap.
  """
  pads = _pairs(padding)
  out_hw = [output_size(n, kernel_size, stride, p) for n, p in zip(input_hw, pads)]
  window = kernel_size * kernel_size
  return kernel_size > 1 and min(input_hw[0] * input_hw[1], out_hw[0] * out_hw[1]) < window


def conv2d_by_patches(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: Padding = 0,
                      precision=None) -> jax.Array:
  """The convolution of :func:`conv2d` as one matrix product (im2col), for any geometry.

  Args:
    x: (B, H, W, C_in).
    kernel: (k, k, C_in, C_out), HWIO.
    stride: the same stride along both axes.
    padding: an int (zeros on every side) or ``((top, bottom), (left, right))``.
    precision: passed to the matrix product.

  Returns:
    (B, H', W', C_out).
  """
  k = kernel.shape[0]
  (top, bottom), (left, right) = _pairs(padding)
  padded = jax.lax.pad(x, jnp.zeros((), x.dtype),
                       ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)))
  out_h = output_size(x.shape[1], k, stride, (top, bottom))
  out_w = output_size(x.shape[2], k, stride, (left, right))
  if out_h < 1 or out_w < 1:
    raise ValueError(f"a {k}x{k} kernel does not fit the padded {padded.shape[1]}x"
                     f"{padded.shape[2]} map")
  views = [
      jax.lax.slice(padded, (0, dy, dx, 0),
                    (padded.shape[0], dy + stride * (out_h - 1) + 1,
                     dx + stride * (out_w - 1) + 1, padded.shape[3]),
                    (1, stride, stride, 1))
      for dy in range(k) for dx in range(k)
  ]
  # Channel order (dy, dx, c_in) is the row order of the HWIO kernel's reshape.
  patches = jnp.concatenate(views, axis=-1)
  matrix = kernel.reshape(k * k * kernel.shape[2], kernel.shape[3])
  return jax.lax.dot_general(patches, matrix, (((3,), (0,)), ((), ())), precision=precision)


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: Padding = 0,
           precision=None) -> jax.Array:
  """2-D cross-correlation, ``torch.nn.functional.conv2d`` semantics on NHWC / HWIO arrays.

  Args:
    x: (B, H, W, C_in).
    kernel: (k, k, C_in, C_out), square.
    stride: the same stride along both axes.
    padding: an int (zeros on every side, as in PyTorch) or ``((top, bottom), (left,
      right))`` pairs.
    precision: ``jax.lax.Precision`` of the products (None: the backend's default).

  Returns:
    (B, H', W', C_out) in the inputs' dtype.
  """
  if x.ndim != 4 or kernel.ndim != 4:
    raise ValueError(f"conv2d expects a (B, H, W, C) map and a (k, k, C_in, C_out) kernel, "
                     f"got shapes {x.shape} and {kernel.shape}")
  if kernel.shape[0] != kernel.shape[1] or kernel.shape[2] != x.shape[3]:
    raise ValueError(f"conv2d expects a square kernel over the map's {x.shape[3]} channels, "
                     f"got kernel shape {kernel.shape}")
  if computes_by_patches(x.shape[1:3], kernel.shape[0], stride, padding):
    return conv2d_by_patches(x, kernel, stride, padding, precision)
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(stride, stride), padding=_pairs(padding),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)
