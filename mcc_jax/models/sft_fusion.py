"""Fusion of a compensated encoder feature into the decoder (SFT plus a convolution).

At every scale finer than the coarsest, the decoder activation ``dec`` is modulated by
the compensated appearance feature ``enc`` of the same resolution with a spatial
feature transform (Wang et al., 2018):

    h = ResBlock([enc, dec]);  out = dec + dec * scale(h) + shift(h)

and a 3x3 convolution of ``enc`` is added on top (the official model's multi-scale
feature fusion).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.torch_layers import Conv2d
from mcc_jax.models.vqgan_blocks import ResBlock


class ConvLeakyConv(nn.Module):
  """3x3 conv -> LeakyReLU(0.2) -> 3x3 conv (the SFT scale and shift branches).

  Attributes:
    features: output channels of both convolutions.
    dtype: computation dtype.
  """

  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = Conv2d(self.features, 3, padding=1, dtype=self.dtype, name="conv1")(x)
    x = nn.leaky_relu(x, 0.2)
    return Conv2d(self.features, 3, padding=1, dtype=self.dtype, name="conv2")(x)


class SFTFusion(nn.Module):
  """Fuses an encoder-side feature into a decoder activation of the same shape.

  Attributes:
    dtype: computation dtype.
  """

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, enc: jax.Array, dec: jax.Array) -> jax.Array:
    """Fuses ``enc`` into ``dec``.

    Args:
      enc: (B, H, W, C) compensated appearance feature.
      dec: (B, H, W, C) decoder activation.

    Returns:
      (B, H, W, C) ``dec + dec * scale + shift + conv(enc)``.
    """
    c = dec.shape[-1]
    h = ResBlock(c, dtype=self.dtype, name="encode")(jnp.concatenate([enc, dec], axis=-1))
    scale = ConvLeakyConv(c, dtype=self.dtype, name="scale")(h)
    shift = ConvLeakyConv(c, dtype=self.dtype, name="shift")(h)
    out = dec + (dec * scale + shift)
    return out + Conv2d(c, 3, padding=1, dtype=self.dtype, name="feature_conv")(enc)
