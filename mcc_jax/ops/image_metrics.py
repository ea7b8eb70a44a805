"""PSNR and L1 of frames, as the official evaluation scores them: defined once here.

The official code saves every generated frame as an 8-bit PNG (clamped to [-1, 1],
mapped to [0, 255] and rounded) and scores those integer levels per frame
(``basicsr/metrics/psnr_ssim.py``):

* PSNR = 20 log10(255 / sqrt(MSE)), the MSE over all pixels and all channels;
* L1 = mean |a - b| over all pixels and channels, on [0, 255]. Divided by 255 it is the
  [0, 1]-range value FOMM and the paper report (0.0355 on VoxCeleb).

A frame identical to its reference would have an infinite PSNR, and one such frame
would make a mean infinite, so the MSE is floored at :data:`MSE_FLOOR` (148 dB).

The functions take levels (0..255 as floats) and compute in the array's own library:
numpy arrays in numpy (the evaluation protocol passes float64 levels of ``uint8``
frames, exact), JAX arrays in JAX (the trainer's jitted evaluation, float32).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MSE_FLOOR = 1e-10


def _library(x):
  return np if isinstance(x, np.ndarray) else jnp


def to_uint8_levels(images: jax.Array) -> jax.Array:
  """[-1, 1] images as the official ``tensor2img`` saves them: rounded 0..255, float32.

  Args:
    images: (..., C) images in [-1, 1] (values outside are clamped).

  Returns:
    float32 array of the same shape with integer values in [0, 255].
  """
  return jnp.round((jnp.clip(images.astype(jnp.float32), -1.0, 1.0) + 1.0) * 127.5)


def psnr_of_levels(generated, reference):
  """Per-frame PSNR in dB of frames given as 0..255 levels.

  Args:
    generated: (N, H, W, C) levels, numpy or JAX.
    reference: (N, H, W, C) levels of the same kind.

  Returns:
    (N,): ``20 log10(255 / sqrt(max(MSE, MSE_FLOOR)))``.
  """
  xp = _library(generated)
  mse = xp.mean((generated - reference)**2, axis=(1, 2, 3))
  return 20.0 * xp.log10(255.0 / xp.sqrt(xp.maximum(mse, MSE_FLOOR)))


def l1_of_levels(generated, reference):
  """Per-frame mean absolute difference of frames given as 0..255 levels.

  Args:
    generated: (N, H, W, C) levels, numpy or JAX.
    reference: (N, H, W, C) levels of the same kind.

  Returns:
    (N,) in [0, 255]; divide by 255 for the paper's [0, 1]-range L1.
  """
  xp = _library(generated)
  return xp.mean(xp.abs(generated - reference), axis=(1, 2, 3))
