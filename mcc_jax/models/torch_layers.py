"""Convolution and linear layers with PyTorch's padding rules and default initialisation.

The model is a port: training it from scratch should start where the official code
starts. PyTorch initialises ``nn.Conv2d`` and ``nn.Linear`` weights and biases from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (Kaiming-uniform with ``a = sqrt(5)``), which
Flax's defaults do not reproduce, and the bias bound depends on the input width, which
Flax's ``bias_init`` cannot see. These layers create their parameters themselves.

Parameters are stored in float32 (``kernel`` in HWIO / (in, out) layout, ``bias``);
the computation runs in ``dtype``.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.ops.conv import Padding
from mcc_jax.ops.conv import conv2d

Initializer = Callable[[jax.Array, tuple[int, ...], Any], jax.Array]


def torch_default_uniform(fan_in: int) -> Initializer:
  """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, PyTorch's default for weights and biases."""
  bound = 1.0 / float(fan_in) ** 0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

  return init


class Conv2d(nn.Module):
  """2-D convolution over NHWC maps, ``torch.nn.Conv2d`` semantics.

  Attributes:
    features: output channels.
    kernel_size: square kernel side.
    stride: stride in both directions.
    padding: an int (the same zero padding on every side, as in PyTorch) or explicit
      ``((top, bottom), (left, right))`` pairs.
    use_bias: whether to add a bias.
    dtype: computation dtype; parameters stay float32.
    kernel_init: weight initialiser; None means PyTorch's default.
    bias_init: bias initialiser; None means PyTorch's default.
  """

  features: int
  kernel_size: int
  stride: int = 1
  padding: Padding = 0
  use_bias: bool = True
  dtype: Any = jnp.float32
  kernel_init: Initializer | None = None
  bias_init: Initializer | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(B, H, W, C_in) -> (B, H', W', features)."""
    k = self.kernel_size
    in_features = x.shape[-1]
    default = torch_default_uniform(in_features * k * k)
    kernel = self.param("kernel", self.kernel_init or default, (k, k, in_features, self.features),
                        jnp.float32)
    y = conv2d(x.astype(self.dtype), kernel.astype(self.dtype), stride=self.stride,
               padding=self.padding)
    if self.use_bias:
      bias = self.param("bias", self.bias_init or default, (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


class Linear(nn.Module):
  """Affine map over the last axis, ``torch.nn.Linear`` semantics.

  Attributes:
    features: output width.
    use_bias: whether to add a bias.
    dtype: computation dtype; parameters stay float32.
    kernel_init: weight initialiser; None means PyTorch's default.
    bias_init: bias initialiser; None means PyTorch's default.
  """

  features: int
  use_bias: bool = True
  dtype: Any = jnp.float32
  kernel_init: Initializer | None = None
  bias_init: Initializer | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """(..., in) -> (..., features)."""
    init = torch_default_uniform(x.shape[-1])
    kernel = self.param("kernel", self.kernel_init or init, (x.shape[-1], self.features),
                        jnp.float32)
    y = jnp.matmul(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param("bias", self.bias_init or init, (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y
