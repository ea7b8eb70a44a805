"""The codebook retrieval transformers T_M and T_A (paper Sec. 3.2.3).

Each layer is pre-norm: self-attention among the tokens (queries and keys carry the
position embedding, values do not), cross-attention from the tokens to codebook rows
(the codes are keys and values as they are, without normalisation or position), and a
feed-forward block made of two 3x3 convolutions (width -> 2 x width -> width, GELU) over
the token grid, which keeps the spatial structure. Dropout is zero in the official
configuration and is not modelled.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.attention import MultiHeadAttention
from mcc_jax.models.torch_layers import Conv2d

LAYER_NORM_EPSILON = 1e-5  # torch.nn.LayerNorm's default


class CodebookTransformerLayer(nn.Module):
  """One retrieval layer.

  Attributes:
    num_heads: attention heads.
    dtype: computation dtype.
  """

  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, tokens: jax.Array, codes: jax.Array, position: jax.Array,
               key_mask: jax.Array | None = None) -> jax.Array:
    """Refines a token grid with codebook content.

    Args:
      tokens: (B, G, G, D) token grid.
      codes: (K_i, D) allocated codebook rows.
      position: (G*G, D) position embedding, row-major over the grid.
      key_mask: optional (B, G*G) boolean; True drops that token as a self-attention key.

    Returns:
      (B, G, G, D) refined tokens.
    """
    b, g, g2, d = tokens.shape
    x = tokens.reshape(b, g * g2, d)
    position = position.astype(self.dtype)[None]

    h = nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, dtype=self.dtype, name="norm1")(x)
    x = x + MultiHeadAttention(self.num_heads, self.dtype, name="self_attn")(
        h + position, h + position, h, key_mask)

    h = nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, dtype=self.dtype, name="norm2")(x)
    codes = codes.astype(self.dtype)
    x = x + MultiHeadAttention(self.num_heads, self.dtype, name="cross_attn")(
        h + position, codes, codes)

    h = nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, dtype=self.dtype, name="norm3")(x)
    h = h.reshape(b, g, g2, d)
    h = Conv2d(2 * d, 3, padding=1, dtype=self.dtype, name="ffn_conv1")(h)
    h = nn.gelu(h, approximate=False)
    h = Conv2d(d, 3, padding=1, dtype=self.dtype, name="ffn_conv2")(h)
    return x.reshape(b, g, g2, d) + h
