"""Pixel reconstruction: L1 and the anti-aliased image pyramid of the perceptual loss."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from mcc_jax.ops.antialias import antialias_downsample
from mcc_jax.ops.precision import at_least_float32


def l1_loss(prediction: jax.Array, target: jax.Array) -> jax.Array:
  """``mean |prediction - target|`` over every element, in float32 (torch's L1Loss, mean)."""
  return jnp.mean(jnp.abs(at_least_float32(prediction) - at_least_float32(target)))


def image_pyramid(images: jax.Array, scales: Sequence[float]) -> list[jax.Array]:
  """The images at each scale, as FOMM's ``ImagePyramide`` makes them.

  Args:
    images: (B, H, W, C).
    scales: e.g. (1, 0.5, 0.25, 0.125); scale 1 is the input itself, the others a
      gaussian blur (zero padding, sigma (1/s - 1)/2) and subsampling from pixel 0.

  Returns:
    One (B, H * s, W * s, C) array per scale, in order.
  """
  return [images if float(s) == 1.0 else antialias_downsample(images, float(s)) for s in scales]
