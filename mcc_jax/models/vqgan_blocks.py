"""Building blocks of the VQGAN autoencoder: residual, attention, down/up-sampling.

These follow the VQGAN variant the official model uses: GroupNorm with 32 groups and
eps 1e-6, swish activations, a residual block with a 1x1 shortcut when the width
changes, single-head spatial self-attention, a downsampling convolution that pads only
the right and bottom edges, and nearest-neighbour upsampling followed by a 3x3
convolution. All maps are NHWC.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.torch_layers import Conv2d
from mcc_jax.ops.precision import at_least_float32
from mcc_jax.ops.resize import upsample_nearest

NUM_GROUPS = 32
EPSILON = 1e-6


def group_norm(name: str | None = None, dtype: Any = jnp.float32) -> nn.GroupNorm:
  """GroupNorm(32 groups, eps 1e-6) with a learnable scale and bias.

  The variance is computed in two passes, mean((x - mean)^2), as PyTorch does; Flax's
  default E[x^2] - E[x]^2 loses float32 digits to cancellation.
  """
  return nn.GroupNorm(num_groups=NUM_GROUPS, epsilon=EPSILON, dtype=dtype, name=name,
                      use_fast_variance=False)


def swish(x: jax.Array) -> jax.Array:
  """x * sigmoid(x)."""
  return x * jax.nn.sigmoid(x)


class ResBlock(nn.Module):
  """norm -> swish -> 3x3 conv -> norm -> swish -> 3x3 conv, plus a (1x1) shortcut.

  Attributes:
    features: output channels (the input width when None).
    dtype: computation dtype.
  """

  features: int | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C_in) -> (B, H, W, features)."""
    features = self.features or x.shape[-1]
    h = swish(group_norm("norm1", self.dtype)(x))
    h = Conv2d(features, 3, padding=1, dtype=self.dtype, name="conv1")(h)
    h = swish(group_norm("norm2", self.dtype)(h))
    h = Conv2d(features, 3, padding=1, dtype=self.dtype, name="conv2")(h)
    if x.shape[-1] != features:
      x = Conv2d(features, 1, dtype=self.dtype, name="shortcut")(x)
    return x + h


class AttnBlock(nn.Module):
  """Single-head self-attention over all spatial positions, with a residual.

  Attributes:
    dtype: computation dtype (the softmax runs in float32).
  """

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, C)."""
    b, h, w, c = x.shape
    normed = group_norm("norm", self.dtype)(x)
    q = Conv2d(c, 1, dtype=self.dtype, name="q")(normed).reshape(b, h * w, c)
    k = Conv2d(c, 1, dtype=self.dtype, name="k")(normed).reshape(b, h * w, c)
    v = Conv2d(c, 1, dtype=self.dtype, name="v")(normed).reshape(b, h * w, c)
    logits = at_least_float32(jnp.einsum("bqc,bkc->bqk", q, k)) * (c**-0.5)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum("bqk,bkc->bqc", weights, v).reshape(b, h, w, c)
    return x + Conv2d(c, 1, dtype=self.dtype, name="proj_out")(out)


class Downsample(nn.Module):
  """Halves the resolution: zero-pad right and bottom by one, then a stride-2 3x3 conv.

  Attributes:
    dtype: computation dtype.
  """

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H/2, W/2, C)."""
    return Conv2d(x.shape[-1], 3, stride=2, padding=((0, 1), (0, 1)), dtype=self.dtype,
                  name="conv")(x)


class Upsample(nn.Module):
  """Doubles the resolution: nearest-neighbour upsampling, then a 3x3 conv.

  Attributes:
    dtype: computation dtype.
  """

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, 2H, 2W, C)."""
    return Conv2d(x.shape[-1], 3, padding=1, dtype=self.dtype, name="conv")(upsample_nearest(x, 2))
