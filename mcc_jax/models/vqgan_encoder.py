"""The VQGAN image encoder E_I, with the feature taps the compensation module reads.

Levels are counted from the finest: level ``l`` runs at ``image_size / 2**l`` with
``nf * ch_mult[l]`` channels. Each level has ``num_res_blocks`` residual blocks (each
followed by self-attention at the configured downsampling factors) and, except the
coarsest, a downsampling step; a middle section (res, attention, res) and a norm +
3x3 conv to ``out_channels`` close the encoder (no activation between the two, as in
the official model).

Taps, matching the official model's feature indices:

* ``levels[l]`` for every level but the coarsest: the map at the end of level ``l``
  (before its downsampling) -- the source features of the finer scales;
* ``output``: the encoder output, the source feature of the coarsest scale;
* ``coarsest_first_block``: the map after the coarsest level's first residual block
  (and its attention) -- the driving feature the appearance codebook learns from at the
  coarsest scale.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models import vqgan_blocks
from mcc_jax.models.torch_layers import Conv2d


class EncoderFeatures(NamedTuple):
  """Encoder taps (see the module docstring).

  Attributes:
    levels: per level from the finest, (B, S/2**l, S/2**l, nf*ch_mult[l]); the entry of
      the coarsest level is None.
    coarsest_first_block: (B, S/2**(N-1), S/2**(N-1), nf*ch_mult[-1]).
    output: (B, S/2**(N-1), S/2**(N-1), out_channels), or None when the encoder stopped
      early.
  """

  levels: list
  coarsest_first_block: jax.Array
  output: jax.Array | None


class Encoder(nn.Module):
  """VQGAN encoder.

  Attributes:
    nf: base width.
    ch_mult: width multipliers per level, finest first.
    num_res_blocks: residual blocks per level.
    attention_levels: levels (0 = finest) whose residual blocks are followed by
      self-attention.
    out_channels: width of the output.
    dtype: computation dtype.
    remat: recompute each residual block's activations in the backward pass instead
      of keeping them (less memory, about one more forward pass of compute).
  """

  nf: int = 64
  ch_mult: Sequence[int] = (1, 2, 2, 4)
  num_res_blocks: int = 2
  attention_levels: Sequence[int] = (3,)
  out_channels: int = 256
  dtype: Any = jnp.float32
  remat: bool = False

  def _res_block(self, *args, **kwargs):
    block = nn.remat(vqgan_blocks.ResBlock) if self.remat else vqgan_blocks.ResBlock
    return block(*args, **kwargs)

  @nn.compact
  def __call__(self, image: jax.Array, *, stop_after_coarsest_first_block: bool = False
               ) -> EncoderFeatures:
    """Encodes images.

    Args:
      image: (B, S, S, C) images.
      stop_after_coarsest_first_block: skip everything after the
        ``coarsest_first_block`` tap (the driving-feature pass needs nothing more).

    Returns:
      :class:`EncoderFeatures`.
    """
    dtype = self.dtype
    num_levels = len(self.ch_mult)
    x = Conv2d(self.nf, 3, padding=1, dtype=dtype, name="conv_in")(image)
    levels = []
    coarsest_first = None
    for level, mult in enumerate(self.ch_mult):
      for block in range(self.num_res_blocks):
        x = self._res_block(self.nf * mult, dtype=dtype, name=f"down_{level}_block_{block}")(x)
        if level in self.attention_levels:
          x = vqgan_blocks.AttnBlock(dtype=dtype, name=f"down_{level}_attn_{block}")(x)
        if level == num_levels - 1 and block == 0:
          coarsest_first = x
          if stop_after_coarsest_first_block:
            return EncoderFeatures(levels + [None], coarsest_first, None)
      if level != num_levels - 1:
        levels.append(x)
        x = vqgan_blocks.Downsample(dtype=dtype, name=f"downsample_{level}")(x)
    levels.append(None)
    x = self._res_block(dtype=dtype, name="mid_block_1")(x)
    x = vqgan_blocks.AttnBlock(dtype=dtype, name="mid_attn")(x)
    x = self._res_block(dtype=dtype, name="mid_block_2")(x)
    x = vqgan_blocks.group_norm("norm_out", dtype)(x)
    x = Conv2d(self.out_channels, 3, padding=1, dtype=dtype, name="conv_out")(x)
    return EncoderFeatures(levels, coarsest_first, x)
