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
  rounded sum, which equals torch's float32 sum for the scales the model uses (1/2, 1/4
  and 1/8: every tap bit for bit, torch 2.13 on x86-64); at other scales the two may
  differ in the last bit of some taps.

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


def antialias_downsample(x: jax.Array, scale: float) -> jax.Array:
  """Gaussian blur followed by subsampling (FOMM's anti-aliased interpolation).

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
  kernel = antialias_kernel(scale)
  size = kernel.shape[0]  # Always odd: the blur is centred.
  pad = size // 2
  stride = int(1.0 / scale)
  channels = x.shape[-1]
  compute = jnp.promote_types(x.dtype, jnp.float32)
  # One copy of the kernel per channel: a depthwise convolution. A strided
  # convolution evaluates exactly the blurred pixels that subsampling would keep.
  weight = jnp.broadcast_to(jnp.asarray(kernel, compute)[:, :, None, None],
                            (size, size, 1, channels))
  y = jax.lax.conv_general_dilated(
      x.astype(compute), weight, window_strides=(stride, stride),
      padding=((pad, pad), (pad, pad)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=channels, precision=jax.lax.Precision.HIGHEST)
  return y.astype(x.dtype)
