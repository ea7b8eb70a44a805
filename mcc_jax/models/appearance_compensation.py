"""Appearance codebook compensation (ACC, paper Sec. 3.2, Fig. 5).

At scale ``i`` the warped source feature (h, w, c) is cut into a fixed G x G grid of
windows of side ``p = h / G`` (p = 1, 2, 4, 8 at 256x256, G = 32); each window is
flattened in ``(p1 p2 c)`` order and projected to d_a. With a learned position
embedding the tokens pass the transformer T_A, which cross-attends to the appearance
codes allocated to the scale; the first layer's self-attention ignores tokens whose
flow (resized to G x G) samples outside the source image, where the warped feature
holds nothing. A projection back to ``p * p * c`` and the window reverse give the
compensated feature.

In training, the driving frame's encoder features go through the same partition and
projection and are quantised against the allocated codes; their code-level loss (Eq. 5)
is what trains the appearance codebook towards real facial patterns.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax import ops
from mcc_jax.models.codebook_transformer import CodebookTransformerLayer
from mcc_jax.models.torch_layers import Linear
from mcc_jax.ops.quantize import QuantizerOutput, VectorQuantizer


class AppearanceCodebookCompensation(nn.Module):
  """ACC, shared by every scale that compensates appearance.

  Attributes:
    feature_channels: channels of the feature at each scale, coarsest first (the
      per-scale projections are indexed by scale).
    grid_size: side G of the token grid (the coarsest feature size, 32 at 256x256).
    code_dim: d_a, width of codes, tokens and the transformer.
    codebook_size: T, number of appearance codes.
    num_layers: transformer layers L_A.
    num_heads: attention heads.
    beta: commitment weight of the code-level loss.
    allocation: code allocation across the compensating scales.
    num_code_scales: how many scales share the codebook.
    dtype: computation dtype.
  """

  feature_channels: Sequence[int] = (256, 128, 128, 64)
  grid_size: int = 32
  code_dim: int = 256
  codebook_size: int = 1024
  num_layers: int = 2
  num_heads: int = 8
  beta: float = 0.25
  allocation: str = "prefix"
  num_code_scales: int = 4
  dtype: Any = jnp.float32

  def setup(self):
    self.codebook = VectorQuantizer(self.codebook_size, self.code_dim, beta=self.beta,
                                    num_scales=self.num_code_scales, allocation=self.allocation)
    self.embeddings = [Linear(self.code_dim, dtype=self.dtype) for _ in self.feature_channels]
    # Back from d_a to a (p, p, c) window; p doubles with every finer scale.
    self.unembeddings = [Linear((2**scale)**2 * channels, dtype=self.dtype)
                         for scale, channels in enumerate(self.feature_channels)]
    self.layers = [CodebookTransformerLayer(self.num_heads, dtype=self.dtype)
                   for _ in range(self.num_layers)]
    self.position_embedding = self.param(
        "position_embedding", nn.initializers.zeros,
        (self.grid_size * self.grid_size, self.code_dim), jnp.float32)

  def _patch(self, scale: int, feature: jax.Array) -> int:
    h, w, c = feature.shape[1:]
    patch = 2**scale
    if (h, w) != (self.grid_size * patch,) * 2 or c != self.feature_channels[scale]:
      raise ValueError(
          f"appearance compensation at scale {scale} expects ({self.grid_size * patch}, "
          f"{self.grid_size * patch}, {self.feature_channels[scale]}) features, got ({h}, {w}, {c}).")
    return patch

  def tokens(self, scale: int, feature: jax.Array) -> jax.Array:
    """Window partition + projection: (B, h, w, c) -> (B, G, G, d_a)."""
    return self.embeddings[scale](ops.window_partition(feature, self._patch(scale, feature)))

  def __call__(self, scale: int, code_scale: int, feature: jax.Array,
               flow: jax.Array) -> jax.Array:
    """Compensates a warped feature.

    Args:
      scale: feature scale index (0 = coarsest), selects the projections.
      code_scale: index of this scale among the compensating scales (code allocation).
      feature: (B, h, w, c) warped (and occlusion-masked) source feature.
      flow: (B, F, F, 2) the sampling grid that warped it.

    Returns:
      (B, h, w, c) compensated feature.
    """
    patch = self._patch(scale, feature)
    b = feature.shape[0]
    g = self.grid_size
    coarse_flow = ops.resize_bilinear(flow, (g, g), align_corners=True)
    outside = jnp.any(jnp.abs(coarse_flow) > 1.0, axis=-1).reshape(b, g * g)

    tokens = self.tokens(scale, feature)
    codes = self.codebook.codes(code_scale)
    for index, layer in enumerate(self.layers):
      tokens = layer(tokens, codes, self.position_embedding,
                     key_mask=outside if index == 0 else None)
    return ops.window_reverse(self.unembeddings[scale](tokens), patch)

  def code_loss(self, scale: int, code_scale: int, driving_feature: jax.Array) -> QuantizerOutput:
    """Quantises the driving frame's tokens at one scale (appearance codebook learning).

    Args:
      scale: feature scale index.
      code_scale: index among the compensating scales.
      driving_feature: (B, h, w, c) encoder feature of the driving frame.

    Returns:
      The :class:`~mcc_jax.ops.QuantizerOutput`; its ``loss`` is the code-level loss.
    """
    return self.codebook(self.tokens(scale, driving_feature), code_scale)
