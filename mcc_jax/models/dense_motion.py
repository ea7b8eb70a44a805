"""FOMM's dense motion network: from two keypoint sets to a dense deformation of the source.

Each keypoint k proposes a local motion ``T_k`` (its first-order Taylor expansion,
:func:`mcc_jax.ops.sparse_motions`), and an identity motion stands for the background.
The network sees, for every motion, the difference of the driving and source keypoint
gaussians and the (downsampled) source image warped by that motion; an hourglass then
predicts a softmax mask that blends the K + 1 motions into one deformation, and an
occlusion map that tells the generator where the warped source cannot be trusted.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.hourglass import Hourglass
from mcc_jax.models.hourglass import check_input_size
from mcc_jax.models.torch_layers import Conv2d
from mcc_jax.ops.antialias import antialias_downsample
from mcc_jax.ops.keypoints import Keypoints
from mcc_jax.ops.keypoints import heatmap_difference
from mcc_jax.ops.keypoints import kp_to_gaussian
from mcc_jax.ops.keypoints import sparse_motions
from mcc_jax.ops.warp import grid_sample

HEAD_KERNEL = 7


class DenseMotion(NamedTuple):
  """Output of :class:`DenseMotionNetwork`; (h, w) is the downsampled source size.

  Attributes:
    deformation: (B, h, w, 2) for every driving-frame position, the normalised
      ``(x, y)`` source position to read (a ``grid_sample`` grid).
    occlusion: (B, h, w, 1) in (0, 1), or None without occlusion estimation.
    mask: (B, h, w, K + 1) softmax weights of the motions, background first.
    driving_heatmaps: (B, h, w, K) gaussians of the driving keypoints.
    sparse_motions: (B, K + 1, h, w, 2) the candidate motions, background first.
    deformed_source: (B, K + 1, h, w, C) the downsampled source warped by each motion.
  """

  deformation: jax.Array
  occlusion: Optional[jax.Array]
  mask: jax.Array
  driving_heatmaps: jax.Array
  sparse_motions: jax.Array
  deformed_source: jax.Array


class DenseMotionNetwork(nn.Module):
  """Dense deformation and occlusion from a source image and two keypoint sets.

  Submodules: ``hourglass``, ``mask_head`` and (with ``estimate_occlusion``)
  ``occlusion_head``.

  Attributes:
    num_keypoints: K.
    num_channels: channels of the source image.
    block_expansion: hourglass width (see :class:`~mcc_jax.models.hourglass.Hourglass`).
    max_features: hourglass width cap.
    num_blocks: hourglass depth.
    scale_factor: the source is downsampled by this factor first (1: not at all).
    kp_variance: variance of the keypoint gaussians, in normalised units.
    estimate_occlusion: also predict an occlusion map.
    dtype: computation dtype of the convolutions; motions, the mask softmax and the
      deformation are computed in float32 (or ``dtype`` if wider).
  """

  num_keypoints: int = 15
  num_channels: int = 3
  block_expansion: int = 64
  max_features: int = 1024
  num_blocks: int = 5
  scale_factor: float = 0.25
  kp_variance: float = 0.01
  estimate_occlusion: bool = True
  dtype: Any = jnp.float32

  def _check_inputs(self, source: jax.Array, kp_source: Keypoints,
                    kp_driving: Keypoints) -> None:
    if source.ndim != 4 or source.shape[-1] != self.num_channels:
      raise ValueError(
          f"DenseMotionNetwork: source must be (B, H, W, num_channels={self.num_channels}), "
          f"got shape {source.shape}.")
    expected = (source.shape[0], self.num_keypoints, 2)
    for name, kp in (("kp_source", kp_source), ("kp_driving", kp_driving)):
      if tuple(kp.value.shape) != expected:
        raise ValueError(
            f"DenseMotionNetwork: {name}.value must be (B, num_keypoints, 2) = {expected}, "
            f"got {tuple(kp.value.shape)}.")
      if kp.jacobian is not None and tuple(kp.jacobian.shape) != expected + (2,):
        raise ValueError(
            f"DenseMotionNetwork: {name}.jacobian must be {expected + (2,)}, "
            f"got {tuple(kp.jacobian.shape)}.")

  @nn.compact
  def __call__(self, source: jax.Array, kp_source: Keypoints, kp_driving: Keypoints, *,
               train: bool) -> DenseMotion:
    """Estimates how to deform the source into the driving frame.

    Args:
      source: (B, H, W, num_channels) source image in [-1, 1]; H * scale_factor and
        W * scale_factor must be multiples of ``2**num_blocks``.
      kp_source: keypoints of the source, value (B, K, 2), jacobian (B, K, 2, 2) or None.
      kp_driving: keypoints of the driving frame, same shapes. Jacobians enter the
        motions only when both keypoint sets carry them.
      train: BatchNorm mode.

    Returns:
      :class:`DenseMotion` at the downsampled size (h, w).
    """
    self._check_inputs(source, kp_source, kp_driving)
    # Sampling positions and motion blending stay in float32 at least: the generator
    # reuses the deformation on maps of up to 256 pixels, where bfloat16's 8-bit
    # mantissa would misplace samples by up to half a pixel.
    precise = jnp.promote_types(self.dtype, jnp.float32)
    small = antialias_downsample(source, self.scale_factor).astype(precise)
    b, h, w, c = small.shape
    check_input_size(
        "DenseMotionNetwork", (h, w), self.num_blocks,
        f"the {source.shape[1]}x{source.shape[2]} source downsampled by "
        f"scale_factor={self.scale_factor}")
    kp_source = Keypoints(*(None if a is None else a.astype(precise) for a in kp_source))
    kp_driving = Keypoints(*(None if a is None else a.astype(precise) for a in kp_driving))

    heatmaps = heatmap_difference(kp_source.value, kp_driving.value, (h, w), self.kp_variance)
    motions = sparse_motions(kp_source, kp_driving, (h, w))
    # The source is shared by all K + 1 motions: map over the motion axis instead of
    # materialising K + 1 copies. grid_sample's defaults are PyTorch's.
    deformed = jax.vmap(lambda grid: grid_sample(small, grid), in_axes=1, out_axes=1)(motions)

    # Motion k contributes the channels [heatmap_k, warped source_k], i.e. input
    # channel k * (C + 1) + j, the layout the pretrained first convolution expects.
    per_motion = jnp.concatenate(
        [heatmaps[..., None], jnp.moveaxis(deformed, 1, 3)], axis=-1)  # (B, h, w, K+1, C+1)
    hourglass_input = per_motion.reshape(b, h, w, (self.num_keypoints + 1) * (c + 1))
    features = Hourglass(self.block_expansion, self.max_features, self.num_blocks,
                         dtype=self.dtype, name="hourglass")(hourglass_input, train=train)

    logits = Conv2d(self.num_keypoints + 1, HEAD_KERNEL, padding=HEAD_KERNEL // 2,
                    dtype=self.dtype, name="mask_head")(features)
    mask = jax.nn.softmax(logits.astype(precise), axis=-1)
    deformation = jnp.einsum("bhwk,bkhwc->bhwc", mask, motions,
                             precision=jax.lax.Precision.HIGHEST)

    occlusion = None
    if self.estimate_occlusion:
      occlusion_logits = Conv2d(1, HEAD_KERNEL, padding=HEAD_KERNEL // 2, dtype=self.dtype,
                                name="occlusion_head")(features)
      occlusion = jax.nn.sigmoid(occlusion_logits.astype(precise))

    return DenseMotion(
        deformation=deformation,
        occlusion=occlusion,
        mask=mask,
        driving_heatmaps=kp_to_gaussian(kp_driving.value, (h, w), self.kp_variance),
        sparse_motions=motions,
        deformed_source=deformed,
    )
