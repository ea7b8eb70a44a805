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

The gradient with respect to the kernel has the opposite problem. XLA computes it as a
convolution whose window is the whole output map, and its CPU backend runs that form far
below its speed on large maps: 15-22 GFLOP/s for a 3x3, 128-channel kernel over a batch
of two 256x256 maps (about 2 s, against 0.2 s for the forward convolution) and 4-8
GFLOP/s for 1x1 kernels there (2-core AMD EPYC, jax 0.10). On CPU, for a stride-1
convolution whose output has at least ``KERNEL_GRADIENT_MIN_POSITIONS`` positions per
image, :func:`conv2d` computes the kernel gradient with :func:`kernel_gradient_by_patches`
instead: matrix products of im2col rows with the output's cotangent, a few hundred rows
at a time (about 5x faster on that 3x3 case, 12x on the 1x1 ones; ``python
benchmarks/ops.py``, the ``conv2d kernel gradient`` rows). The forward pass and the input
gradient stay XLA's. That route is a ``jax.custom_vjp``, so it supports reverse-mode
differentiation only; ``conv2d(..., kernel_gradient="xla")`` keeps XLA's gradient on every
map, for ``jax.jvp`` / ``jax.jacfwd``.
"""

from __future__ import annotations

import functools
from typing import Sequence, Union

import jax
import jax.numpy as jnp

Padding = Union[int, Sequence[tuple[int, int]]]

# Per-image output positions (128 x 128) from which, on CPU, a stride-1 convolution's
# kernel gradient is computed by `kernel_gradient_by_patches`. Below it XLA's own form is
# as fast or faster (benchmarks/ops.py, the conv2d kernel-gradient rows).
KERNEL_GRADIENT_MIN_POSITIONS = 128 * 128
# Rows of the flattened map per matrix product in `kernel_gradient_by_patches`: the
# patches of one chunk (rows x k*k*C_in floats, 2.4 MB for a 3x3, 128-channel kernel)
# stay in cache.
KERNEL_GRADIENT_ROWS = 512


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
           precision=None, kernel_gradient: str = "auto") -> jax.Array:
  """2-D cross-correlation, ``torch.nn.functional.conv2d`` semantics on NHWC / HWIO arrays.

  Args:
    x: (B, H, W, C_in).
    kernel: (k, k, C_in, C_out), square.
    stride: the same stride along both axes.
    padding: an int (zeros on every side, as in PyTorch) or ``((top, bottom), (left,
      right))`` pairs.
    precision: ``jax.lax.Precision`` of the products (None: the backend's default).
    kernel_gradient: how the gradient with respect to ``kernel`` is computed for a
      stride-1 convolution that is not one matrix product (see
      :func:`computes_by_patches`): ``"auto"`` by :func:`kernel_gradient_by_patches` where
      :func:`computes_kernel_gradient_by_patches` says so (large maps on CPU), else XLA's;
      ``"patches"`` by :func:`kernel_gradient_by_patches` on any map; ``"xla"`` always
      XLA's (the only one of the three that ``jax.jvp`` can differentiate through on the
      maps where the others take the patch route).

  Returns:
    (B, H', W', C_out) in the inputs' dtype.
  """
  if kernel_gradient not in ("auto", "patches", "xla"):
    raise ValueError(f"kernel_gradient must be 'auto', 'patches' or 'xla', "
                     f"got {kernel_gradient!r}")
  if x.ndim != 4 or kernel.ndim != 4:
    raise ValueError(f"conv2d expects a (B, H, W, C) map and a (k, k, C_in, C_out) kernel, "
                     f"got shapes {x.shape} and {kernel.shape}")
  if kernel.shape[0] != kernel.shape[1] or kernel.shape[2] != x.shape[3]:
    raise ValueError(f"conv2d expects a square kernel over the map's {x.shape[3]} channels, "
                     f"got kernel shape {kernel.shape}")
  if computes_by_patches(x.shape[1:3], kernel.shape[0], stride, padding):
    return conv2d_by_patches(x, kernel, stride, padding, precision)
  pads = _pairs(padding)
  if kernel_gradient == "auto":
    by_patches = computes_kernel_gradient_by_patches(x.shape[1:3], kernel.shape[0], stride,
                                                     pads)
  else:
    by_patches = kernel_gradient == "patches" and stride == 1
  if by_patches:
    return _conv_with_kernel_gradient_by_patches(x, kernel, pads, precision)
  return _xla_conv(x, kernel, stride, pads, precision)


def _xla_conv(x, kernel, stride, pads, precision):
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(stride, stride), padding=pads,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)


def computes_kernel_gradient_by_patches(input_hw: Sequence[int], kernel_size: int,
                                        stride: int = 1, padding: Padding = 0) -> bool:
  """Whether :func:`conv2d`'s kernel gradient is :func:`kernel_gradient_by_patches`.

  True on the CPU backend for a stride-1 convolution whose output map has at least
  ``KERNEL_GRADIENT_MIN_POSITIONS`` positions. Other backends keep XLA's gradient (their
  convolution libraries compute it well).
  """
  pads = _pairs(padding)
  out_h, out_w = (output_size(n, kernel_size, stride, p) for n, p in zip(input_hw, pads))
  return (stride == 1 and out_h * out_w >= KERNEL_GRADIENT_MIN_POSITIONS
          and jax.default_backend() == "cpu")


def kernel_gradient_by_patches(x: jax.Array, cotangent: jax.Array, kernel_size: int,
                               padding: Padding = 0, precision=None,
                               rows: int = KERNEL_GRADIENT_ROWS) -> jax.Array:
  """The gradient of ``sum(conv2d(x, kernel) * cotangent)`` with respect to the kernel.

  For a stride-1 convolution, ``dkernel[i, j] = sum over (b, h, w) of
  x_padded[b, h + i, w + j, :] (outer) cotangent[b, h, w, :]``. With the padded map
  flattened to rows ``(b * H_p + h) * W_p + w`` and the cotangent placed on the same
  grid (zeros beyond the output's H' x W'), tap ``(i, j)`` is the row offset
  ``i * W_p + j``: each chunk of ``rows`` rows gathers its k*k shifted views side by side
  (im2col) and adds one matrix product to the (k*k*C_in, C_out) sum. Products accumulate
  in float32 at least.

  Args:
    x: (B, H, W, C_in), the convolution's input.
    cotangent: (B, H', W', C_out), the gradient with respect to its output.
    kernel_size: k of the square kernel.
    padding: the convolution's padding (an int or two (low, high) pairs).
    precision: passed to the matrix products.
    rows: flattened positions per matrix product.

  Returns:
    (k, k, C_in, C_out) in ``x``'s dtype.
  """
  k = kernel_size
  (top, bottom), (left, right) = _pairs(padding)
  batch, _, _, c_in = x.shape
  c_out = cotangent.shape[3]
  zero = jnp.zeros((), x.dtype)
  padded = jax.lax.pad(x, zero, ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)))
  h_p, w_p = padded.shape[1:3]
  if cotangent.shape != (batch, h_p - k + 1, w_p - k + 1, c_out):
    raise ValueError(f"a cotangent of shape {cotangent.shape} does not match a {k}x{k} "
                     f"stride-1 convolution of a {x.shape} map padded to {padded.shape}")
  accumulate = jnp.promote_types(x.dtype, jnp.float32)
  if k == 1:
    return jax.lax.dot_general(
        padded, cotangent, (((0, 1, 2), (0, 1, 2)), ((), ())), precision=precision,
        preferred_element_type=accumulate).astype(x.dtype).reshape(1, 1, c_in, c_out)
  positions = batch * h_p * w_p
  chunks = -(-positions // rows)
  halo = (k - 1) * w_p + (k - 1)
  flat = jax.lax.pad(padded.reshape(positions, c_in), zero,
                     ((0, chunks * rows - positions + halo, 0), (0, 0, 0)))
  on_grid = jax.lax.pad(cotangent, jnp.zeros((), cotangent.dtype),
                        ((0, 0, 0), (0, k - 1, 0), (0, k - 1, 0), (0, 0, 0)))
  on_grid = jax.lax.pad(on_grid.reshape(positions, c_out), jnp.zeros((), cotangent.dtype),
                        ((0, chunks * rows - positions, 0), (0, 0, 0)))

  def add_chunk(total, chunk):
    index, cotangent_rows = chunk
    window = jax.lax.dynamic_slice_in_dim(flat, index * rows, rows + halo, axis=0)
    patches = jnp.concatenate(
        [jax.lax.slice_in_dim(window, i * w_p + j, i * w_p + j + rows, axis=0)
         for i in range(k) for j in range(k)], axis=1)
    return total + jax.lax.dot_general(
        patches, cotangent_rows, (((0,), (0,)), ((), ())), precision=precision,
        preferred_element_type=accumulate), None

  total, _ = jax.lax.scan(add_chunk, jnp.zeros((k * k * c_in, c_out), accumulate),
                          (jnp.arange(chunks), on_grid.reshape(chunks, rows, c_out)))
  return total.astype(x.dtype).reshape(k, k, c_in, c_out)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_with_kernel_gradient_by_patches(x, kernel, pads, precision):
  return _xla_conv(x, kernel, 1, pads, precision)


def _conv_forward(x, kernel, pads, precision):
  return _xla_conv(x, kernel, 1, pads, precision), (x, kernel)


def _conv_backward(pads, precision, residuals, cotangent):
  x, kernel = residuals
  _, input_pullback = jax.vjp(lambda a: _xla_conv(a, kernel, 1, pads, precision), x)
  (dx,) = input_pullback(cotangent)
  dkernel = kernel_gradient_by_patches(x, cotangent, kernel.shape[0], pads, precision)
  return dx, dkernel.astype(kernel.dtype)


_conv_with_kernel_gradient_by_patches.defvjp(_conv_forward, _conv_backward)
