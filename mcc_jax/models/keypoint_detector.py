"""FOMM's unsupervised keypoint detector: keypoints and local jacobians of a face image.

The image is downsampled (anti-aliased), an hourglass turns it into a feature map, and
a 7x7 convolution predicts one heatmap per keypoint. A softmax over all positions
(sharpened by a temperature) makes each heatmap a probability map; the keypoint is its
expected position on the normalised [-1, 1] grid. A second 7x7 head predicts four maps
per keypoint whose heatmap-weighted averages form the keypoint's 2x2 jacobian (row
major), starting at the identity.

The heads pad with ``padding`` zeros on each side (0 in the official configuration), so
the heatmaps are ``6 - 2 * padding`` pixels smaller than the hourglass output and the
expected positions are taken over a grid of that smaller size.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.hourglass import Hourglass
from mcc_jax.models.hourglass import check_input_size
from mcc_jax.models.torch_layers import Conv2d
from mcc_jax.ops.antialias import antialias_downsample
from mcc_jax.ops.keypoints import Keypoints
from mcc_jax.ops.warp import coordinate_grid

HEAD_KERNEL = 7


def identity_jacobian_bias(num_keypoints: int):
  """Bias initialiser giving every keypoint an identity jacobian: ``[1, 0, 0, 1] * K``."""

  def init(key, shape, dtype=jnp.float32):
    del key
    if shape != (4 * num_keypoints,):
      raise ValueError(f"jacobian bias must have shape ({4 * num_keypoints},), got {shape}.")
    return jnp.tile(jnp.asarray([1.0, 0.0, 0.0, 1.0], dtype), num_keypoints)

  return init


class KeypointDetector(nn.Module):
  """Keypoints (and jacobians) of an image.

  Submodules: ``hourglass``, ``keypoint_head`` and (with ``estimate_jacobian``)
  ``jacobian_head``.

  Attributes:
    num_keypoints: K.
    num_channels: channels of the input image.
    block_expansion: hourglass width (see :class:`~mcc_jax.models.hourglass.Hourglass`).
    max_features: hourglass width cap.
    num_blocks: hourglass depth.
    temperature: softmax temperature of the heatmaps.
    scale_factor: the image is downsampled by this factor first (1: not at all).
    estimate_jacobian: also predict a 2x2 jacobian per keypoint.
    padding: zero padding of the 7x7 heads on each side.
    dtype: computation dtype of the convolutions; heatmaps, keypoints and jacobians
      are computed in float32 (or ``dtype`` if wider).
  """

  num_keypoints: int = 15
  num_channels: int = 3
  block_expansion: int = 32
  max_features: int = 1024
  num_blocks: int = 5
  temperature: float = 0.1
  scale_factor: float = 0.25
  estimate_jacobian: bool = True
  padding: int = 0
  dtype: Any = jnp.float32

  def _check_sizes(self, image: jax.Array, downsampled: tuple[int, int]) -> None:
    detail = (f"the {image.shape[1]}x{image.shape[2]} image downsampled by "
              f"scale_factor={self.scale_factor}")
    check_input_size("KeypointDetector", downsampled, self.num_blocks, detail)
    smallest = HEAD_KERNEL + 1 - 2 * self.padding
    if min(downsampled) < smallest:
      raise ValueError(
          f"KeypointDetector: the {HEAD_KERNEL}x{HEAD_KERNEL} heads with padding={self.padding} "
          f"need a feature map of at least {smallest}x{smallest} to leave a 2x2 heatmap; got "
          f"{downsampled[0]}x{downsampled[1]} ({detail}).")

  @nn.compact
  def __call__(self, image: jax.Array, *, train: bool) -> Keypoints:
    """Detects keypoints.

    Args:
      image: (B, H, W, num_channels) in [-1, 1]; H * scale_factor and W * scale_factor
        must be multiples of ``2**num_blocks``.
      train: BatchNorm mode.

    Returns:
      :class:`~mcc_jax.ops.Keypoints` with value (B, K, 2) and jacobian (B, K, 2, 2)
      (None without ``estimate_jacobian``), both float32 (or ``dtype`` if wider).
    """
    if image.ndim != 4 or image.shape[-1] != self.num_channels:
      raise ValueError(
          f"KeypointDetector: image must be (B, H, W, num_channels={self.num_channels}), "
          f"got shape {image.shape}.")
    x = antialias_downsample(image, self.scale_factor)
    self._check_sizes(image, x.shape[1:3])
    features = Hourglass(self.block_expansion, self.max_features, self.num_blocks,
                         dtype=self.dtype, name="hourglass")(x, train=train)

    # Softmax and expectations need float32 even when the convolutions run in bfloat16:
    # dividing by the temperature (0.1) amplifies every rounding of the logits.
    precise = jnp.promote_types(self.dtype, jnp.float32)
    logits = Conv2d(self.num_keypoints, HEAD_KERNEL, padding=self.padding, dtype=self.dtype,
                    name="keypoint_head")(features).astype(precise)
    b, h, w, k = logits.shape
    heatmap = jax.nn.softmax(logits.reshape(b, h * w, k) / self.temperature, axis=1)
    heatmap = heatmap.reshape(b, h, w, k)
    grid = coordinate_grid(h, w, precise)
    # Expectations over the heatmap as explicit sums: a reduction over the h * w
    # positions rounds less than a matrix product on CPU, and costs nothing here.
    value = jnp.sum(heatmap[..., None] * grid[None, :, :, None, :], axis=(1, 2))
    if not self.estimate_jacobian:
      return Keypoints(value=value, jacobian=None)

    jacobian_maps = Conv2d(4 * self.num_keypoints, HEAD_KERNEL, padding=self.padding,
                           dtype=self.dtype, kernel_init=nn.initializers.zeros,
                           bias_init=identity_jacobian_bias(self.num_keypoints),
                           name="jacobian_head")(features).astype(precise)
    # Channel 4 k + j is entry j (row major) of keypoint k's jacobian.
    jacobian_maps = jacobian_maps.reshape(b, h, w, k, 4)
    jacobian = jnp.sum(heatmap[..., None] * jacobian_maps, axis=(1, 2))
    return Keypoints(value=value, jacobian=jacobian.reshape(b, k, 2, 2))

