"""The VQGAN image decoder D_I, fusing compensated features at every finer scale.

The decoder mirrors :mod:`~mcc_jax.models.vqgan_encoder`: a 3x3 conv from the
compensated coarsest feature, a middle section (res, attention, res), then per level
from the coarsest ``num_res_blocks`` residual blocks (each followed by self-attention at
the attention levels) and an upsampling step (except at the finest level), and a
norm + 3x3 conv to RGB (no activation between them, as in the official model).

The compensated feature of a finer scale is fused (:class:`~mcc_jax.models.sft_fusion.
SFTFusion`) right after the first residual block of its level (the block that brings
the activation to that level's width) and before any attention -- where the official
model fuses.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models import vqgan_blocks
from mcc_jax.models.sft_fusion import SFTFusion
from mcc_jax.models.torch_layers import Conv2d


class Decoder(nn.Module):
  """VQGAN decoder with multi-scale fusion.

  Attributes:
    nf: base width.
    ch_mult: width multipliers per level, finest first (as in the encoder).
    num_res_blocks: residual blocks per level.
    attention_levels: levels (0 = finest) whose residual blocks are followed by
      self-attention.
    out_channels: image channels.
    dtype: computation dtype.
    remat: recompute each residual block's activations in the backward pass instead
      of keeping them (less memory, about one more forward pass of compute).
  """

  nf: int = 64
  ch_mult: Sequence[int] = (1, 2, 2, 4)
  num_res_blocks: int = 2
  attention_levels: Sequence[int] = (3,)
  out_channels: int = 3
  dtype: Any = jnp.float32
  remat: bool = False

  def _res_block(self, *args, **kwargs):
    block = nn.remat(vqgan_blocks.ResBlock) if self.remat else vqgan_blocks.ResBlock
    return block(*args, **kwargs)

  @nn.compact
  def __call__(self, x: jax.Array, skips: Sequence[jax.Array] | None = None) -> jax.Array:
    """Decodes a compensated coarsest feature into an image.

    Args:
      x: (B, G, G, C) compensated feature of the coarsest scale.
      skips: compensated features of the finer scales, coarse to fine
        (``len(ch_mult) - 1`` maps of (B, G*2**i, G*2**i, nf*ch_mult[-1-i])), or None to
        decode ``x`` alone (the low-resolution branch used in training).

    Returns:
      (B, G*2**(N-1), G*2**(N-1), out_channels) image.
    """
    dtype = self.dtype
    num_levels = len(self.ch_mult)
    if skips is not None and len(skips) != num_levels - 1:
      raise ValueError(f"Decoder: expected {num_levels - 1} skip features, got {len(skips)}.")
    width = self.nf * self.ch_mult[-1]
    x = Conv2d(width, 3, padding=1, dtype=dtype, name="conv_in")(x)
    x = self._res_block(width, dtype=dtype, name="mid_block_1")(x)
    x = vqgan_blocks.AttnBlock(dtype=dtype, name="mid_attn")(x)
    x = self._res_block(width, dtype=dtype, name="mid_block_2")(x)
    for step, level in enumerate(reversed(range(num_levels))):
      width = self.nf * self.ch_mult[level]
      for block in range(self.num_res_blocks):
        x = self._res_block(width, dtype=dtype, name=f"up_{level}_block_{block}")(x)
        if block == 0 and step > 0 and skips is not None:
          x = SFTFusion(dtype=dtype, name=f"fusion_{level}")(skips[step - 1], x)
        if level in self.attention_levels:
          x = vqgan_blocks.AttnBlock(dtype=dtype, name=f"up_{level}_attn_{block}")(x)
      if level != 0:
        x = vqgan_blocks.Upsample(dtype=dtype, name=f"upsample_{level}")(x)
    x = vqgan_blocks.group_norm("norm_out", dtype)(x)
    # The adaptive GAN weight needs the last convolution's input (see mcc_jax.losses);
    # collected only when the caller asks for the 'intermediates' collection.
    self.sow("intermediates", "last_layer_input", x)
    return Conv2d(self.out_channels, 3, padding=1, dtype=dtype, name="conv_out")(x)
