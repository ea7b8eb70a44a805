"""Band-limited downsampling of images, as FOMM does before estimating motion.

The keypoint detector and the dense motion network work at a quarter of the image
resolution. Plain subsampling would alias the fine texture of a face into spurious
low-frequency patterns, so the image is first blurred with a gaussian whose width
matches the scale (``sigma = (1 / scale - 1) / 2``) and then every ``int(1 / scale)``-th
pixel is kept, starting with the first one. The blur pads with zeros, so the border
darkens slightly; this is part of the behaviour the pretrained weights expect.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def _check_scale(scale: float) -> None:
  if not 0.0 < scale <= 1.0:
    raise ValueError(f"antialias: scale must be in (0, 1], got {scale}.")


def antialias_kernel(scale: float) -> np.ndarray:
  """The normalised 2-D blur kernel used for downsampling by ``scale``.

  The kernel is built the way the official code builds it in float32, so that it is
  the same constant: the 1-D exponent ``-(d ** 2) / (2 sigma ** 2)`` divided in float32,
  its exponential rounded to float32, the outer product taken in float32, and every tap
  divided in float32 by the sum. A kernel computed in float64 and rounded once differs
  from the official one in the last bit of 68 of the 169 taps at scale 1/4, a constant
  bias that float32 rounding elsewhere does not average out.

  The one step that cannot be reproduced everywhere is the official float32 sum, whose
  order of additions depends on the CPU's vector width. We divide by the correctly
  rounded sum, so the kernel is the same on every machine. It equals the official
  buffer stored with the golden outputs (scale 1/4) and torch 2.13's float32
  construction on AMD Zen 4 for 1/2, 1/4 and 1/8, every tap bit for bit; where torch's
  sum rounds differently (Intel AVX-512 at 1/8, other scales elsewhere) the two differ
  in the last bit of some taps.

  Args:
    scale: downsampling factor in (0, 1), e.g. 0.25.

  Returns:
    (k, k) float32 kernel summing to one, with ``k = 2 round(4 sigma) + 1`` and
    ``sigma = (1 / scale - 1) / 2`` (Python's ``round``, i.e. half to even).
  """
  _check_scale(scale)
  sigma = (1.0 / scale - 1.0) / 2.0
  size = 2 * round(sigma * 4) + 1
  offsets = np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2.0)
  exponent = -(offsets * offsets) / np.float32(2.0 * sigma**2)
  profile = np.exp(exponent.astype(np.float64)).astype(np.float32)
  kernel = profile[:, None] * profile[None, :]
  total = np.float32(math.fsum(kernel.astype(np.float64).ravel()))
  return kernel / total


def polyphase_kernels(kernel: np.ndarray, stride: int) -> tuple[np.ndarray, int]:
  """A centred ``(n, n)`` kernel split into the sub-kernels of a strided correlation.

  Output pixel ``i`` of the strided correlation reads input pixel ``s * i + t - n // 2``
  through tap ``t``. Writing ``t - n // 2 = s * j + r`` (``0 <= r < s``), it reads pixel
  ``i + j`` of the phase ``x[r::s]`` through tap ``t``, so the strided correlation is the
  sum over the ``s * s`` phases of stride-1 correlations with sub-kernels of ``m``
  taps (zero where ``s * j + r`` falls outside the kernel).

  Returns:
    ``(sub, low)``: ``sub`` of shape (m, m, s * s, 1), HWIO with phase ``r1 * s + r2`` as
    input channel, and ``low``, the most negative offset ``j`` (``<= 0``).
  """
  n = kernel.shape[0]
  centre = n // 2
  low = -((centre + stride - 1) // stride)
  high = (n - 1 - centre) // stride
  m = high - low + 1
  taps = (np.arange(m)[:, None] + low) * stride + np.arange(stride)[None, :] + centre
  valid = (taps >= 0) & (taps < n)
  taps = np.clip(taps, 0, n - 1)
  sub = kernel[taps[:, None, :, None], taps[None, :, None, :]]
  sub = np.where(valid[:, None, :, None] & valid[None, :, None, :], sub, 0).astype(kernel.dtype)
  return sub.reshape(m, m, stride * stride, 1), low


def antialias_downsample(x: jax.Array, scale: float) -> jax.Array:
  """Gaussian blur followed by subsampling (FOMM's anti-aliased interpolation).

  The official code blurs every pixel with a depthwise convolution and keeps every
  ``s``-th; only the kept pixels are computed here, as a sum over the ``s * s`` phases
  of the image (:func:`polyphase_kernels`): the same products in another order. Its
  gradient is a stride-1 convolution over the small output, where the gradient of the
  equivalent strided convolution (a convolution over a zero-dilated map with the whole
  ``n x n`` kernel) took 1.6 s at 256x256 and scale 1/8 on a 2-core CPU, against 7 ms.

  Args:
    x: (B, H, W, C) images or feature maps.
    scale: downsampling factor in (0, 1]; 1 returns ``x`` unchanged. The subsampling
      stride is ``int(1 / scale)``.

  Returns:
    (B, ceil(H / s), ceil(W / s), C) with ``s = int(1 / scale)``, i.e.
    (B, H * scale, W * scale, C) when the sizes divide; same dtype as ``x``, computed
    in at least float32.
  """
  _check_scale(scale)
  if x.ndim != 4:
    raise ValueError(f"antialias_downsample: x must be (B, H, W, C), got shape {x.shape}.")
  if scale == 1.0:
    return x
  stride = int(1.0 / scale)
  compute = jnp.promote_types(x.dtype, jnp.float32)
  sub, low = polyphase_kernels(antialias_kernel(scale), stride)
  m = sub.shape[0]
  batch, height, width, channels = x.shape
  out_h, out_w = -(-height // stride), -(-width // stride)
  rows, cols = out_h + m - 1, out_w + m - 1
  # Channels join the batch (one blur per channel); zero padding puts the blur's border
  # and the phases' offsets inside the array.
  planes = jnp.transpose(x.astype(compute), (0, 3, 1, 2)).reshape(batch * channels, height, width)
  before = -stride * low
  planes = jax.lax.pad(planes, jnp.zeros((), compute),
                       ((0, 0, 0), (before, stride * rows - height - before, 0),
                        (before, stride * cols - width - before, 0)))
  phases = planes.reshape(batch * channels, rows, stride, cols, stride)
  phases = phases.transpose(0, 1, 3, 2, 4).reshape(batch * channels, rows, cols, stride * stride)
  y = jax.lax.conv_general_dilated(
      phases, jnp.asarray(sub, compute), window_strides=(1, 1), padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jax.lax.Precision.HIGHEST)
  y = y.reshape(batch, channels, out_h, out_w).transpose(0, 2, 3, 1)
  return y.astype(x.dtype)
