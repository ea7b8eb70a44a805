"""The U-Net-like hourglass shared by the keypoint detector and the dense motion network.

An encoder of ``num_blocks`` down blocks halves the resolution each time while the width
grows as ``block_expansion * 2**(i + 1)`` (capped at ``max_features``); a decoder of as
many up blocks doubles it back. After every up block the decoder concatenates the
encoder activation of the same resolution, its own output first, so the final map
carries ``block_expansion + in_channels`` channels (the last skip is the input itself).

BatchNorm follows PyTorch's ``BatchNorm2d`` (momentum 0.1, eps 1e-5). One difference
remains in training: PyTorch folds the unbiased batch variance into its running
variance, Flax the biased one, so the variance each update folds in is n / (n - 1)
times larger in PyTorch (n = batch x height x width). Normalisation itself, in training and evaluation, is the
same; only running statistics accumulated by training differ, slightly.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.torch_layers import Conv2d
from mcc_jax.ops.resize import upsample_nearest


def batch_norm(train: bool, dtype: Any, name: str | None = None) -> nn.BatchNorm:
  """A BatchNorm with ``torch.nn.BatchNorm2d``'s defaults (momentum 0.1, eps 1e-5).

  Args:
    train: normalise with batch statistics and update the running ones (True), or
      use the running statistics (False).
    dtype: computation dtype; scale, bias and statistics stay float32.
    name: submodule name.

  Returns:
    An unbound ``flax.linen.BatchNorm``.
  """
  # PyTorch's momentum weights the new batch; Flax's weights the running average. The
  # batch variance in two passes, mean((x - mean)^2), as PyTorch computes it: Flax's
  # default E[x^2] - E[x]^2 loses float32 digits to cancellation.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                      param_dtype=jnp.float32, use_fast_variance=False, name=name)


def check_input_size(owner: str, size: tuple[int, int], num_blocks: int, detail: str) -> None:
  """Raises if a map of ``size`` cannot pass through an hourglass of ``num_blocks``.

  Args:
    owner: name of the module doing the check, for the message.
    size: (h, w) of the hourglass input.
    num_blocks: number of halvings.
    detail: how ``size`` came about (e.g. the image size and the scale factor).

  Raises:
    ValueError: unless h and w are positive multiples of ``2**num_blocks``.
  """
  multiple = 2**num_blocks
  h, w = size
  if h < multiple or w < multiple or h % multiple or w % multiple:
    raise ValueError(
        f"{owner}: the hourglass (num_blocks={num_blocks}) halves its input {num_blocks} "
        f"times, so its height and width must be positive multiples of {multiple}; got "
        f"{h}x{w} ({detail}).")


class DownBlock(nn.Module):
  """3x3 convolution, BatchNorm, ReLU, 2x2 average pooling.

  Attributes:
    features: output channels.
    dtype: computation dtype.
  """

  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """(B, H, W, C) -> (B, H / 2, W / 2, features)."""
    y = Conv2d(self.features, 3, padding=1, dtype=self.dtype, name="conv")(x)
    y = nn.relu(batch_norm(train, self.dtype, name="norm")(y))
    b, h, w, c = y.shape
    pooled = jnp.mean(y.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4),
                      dtype=jnp.promote_types(self.dtype, jnp.float32))
    return pooled.astype(self.dtype)


class UpBlock(nn.Module):
  """Nearest-neighbour doubling, 3x3 convolution, BatchNorm, ReLU.

  Attributes:
    features: output channels.
    dtype: computation dtype.
  """

  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """(B, H, W, C) -> (B, 2 H, 2 W, features)."""
    y = Conv2d(self.features, 3, padding=1, dtype=self.dtype, name="conv")(upsample_nearest(x, 2))
    return nn.relu(batch_norm(train, self.dtype, name="norm")(y))


class Hourglass(nn.Module):
  """Encoder-decoder with skip concatenation (FOMM's hourglass).

  Submodules are ``down_0 .. down_{n-1}`` (encoder, fine to coarse) and
  ``up_0 .. up_{n-1}`` (decoder, coarse to fine).

  Attributes:
    block_expansion: width of the first down block; block i has
      ``min(max_features, block_expansion * 2**(i + 1))`` channels.
    max_features: cap on the width of any block.
    num_blocks: number of down (and up) blocks.
    dtype: computation dtype; parameters are float32.
  """

  block_expansion: int
  max_features: int
  num_blocks: int
  dtype: Any = jnp.float32

  def width(self, level: int) -> int:
    """Channels of a block working at ``level`` halvings of the input resolution."""
    return min(self.max_features, self.block_expansion * 2**level)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool,
               all_outputs: bool = False) -> jax.Array | list[jax.Array]:
    """Runs the encoder and the decoder.

    Args:
      x: (B, H, W, C_in), H and W multiples of ``2**num_blocks``.
      train: BatchNorm mode.
      all_outputs: return every decoder output instead of the last only.

    Returns:
      The last decoder output (B, H, W, block_expansion + C_in), or the list of all
      ``num_blocks`` decoder outputs from coarsest to finest, each the concatenation
      [up block output, encoder skip].
    """
    check_input_size("Hourglass", x.shape[1:3], self.num_blocks, "input shape")
    x = x.astype(self.dtype)
    skips = [x]
    for i in range(self.num_blocks):
      skips.append(DownBlock(self.width(i + 1), dtype=self.dtype, name=f"down_{i}")(
          skips[-1], train=train))
    out = skips.pop()
    outputs = []
    for i in range(self.num_blocks):
      out = UpBlock(self.width(self.num_blocks - 1 - i), dtype=self.dtype, name=f"up_{i}")(
          out, train=train)
      out = jnp.concatenate([out, skips.pop()], axis=-1)
      outputs.append(out)
    return outputs if all_outputs else out
