"""The VQGAN PatchGAN discriminator (official ``VQGANDiscriminator``, ndf 64, 4 layers).

4x4 convolutions: one stride-2 layer with LeakyReLU(0.2), ``num_layers - 1`` stride-2
layers with BatchNorm, a stride-1 layer with BatchNorm, and a stride-1 projection to one
logit per patch. Widths grow as ``ndf * min(2**n, 8)``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.torch_layers import Conv2d


class PatchDiscriminator(nn.Module):
  """PatchGAN over (B, S, S, C) images.

  Attributes:
    ndf: base width.
    num_layers: number of stride-2 layers.
    dtype: computation dtype (BatchNorm statistics in float32).
  """

  ndf: int = 64
  num_layers: int = 4
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, image: jax.Array, *, train: bool) -> jax.Array:
    """Scores image patches.

    Args:
      image: (B, S, S, C) images in [-1, 1].
      train: use batch statistics (and update the running ones) instead of the running ones.

    Returns:
      (B, S / 2**num_layers - 2, S / 2**num_layers - 2, 1) patch logits (14 x 14 at 256).
    """

    def norm(name):
      # Two-pass batch variance, as PyTorch computes it (see hourglass.batch_norm).
      return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                          dtype=self.dtype, use_fast_variance=False, name=name)

    x = Conv2d(self.ndf, 4, stride=2, padding=1, dtype=self.dtype, name="conv_0")(image)
    x = nn.leaky_relu(x, 0.2)
    for n in range(1, self.num_layers):
      width = self.ndf * min(2**n, 8)
      x = Conv2d(width, 4, stride=2, padding=1, use_bias=False, dtype=self.dtype,
                 name=f"conv_{n}")(x)
      x = nn.leaky_relu(norm(f"norm_{n}")(x), 0.2)
    width = self.ndf * min(2**self.num_layers, 8)
    x = Conv2d(width, 4, stride=1, padding=1, use_bias=False, dtype=self.dtype,
               name=f"conv_{self.num_layers}")(x)
    x = nn.leaky_relu(norm(f"norm_{self.num_layers}")(x), 0.2)
    return Conv2d(1, 4, stride=1, padding=1, dtype=self.dtype,
                  name=f"conv_{self.num_layers + 1}")(x)
