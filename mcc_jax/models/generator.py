"""The generator: encoder, multi-scale motion and appearance compensation, decoder.

For a source image and the coarse motion of the dense motion network, scale by scale
from the coarsest (i = 0, the S/8 feature at N = 4 scales) to the finest:

1. motion codebook compensation refines the flow and the occlusion map (where enabled);
2. the source feature of the scale is warped by the flow and multiplied by the
   occlusion map (both resized to the feature);
3. appearance codebook compensation refines the warped feature (where enabled).

The decoder starts from the compensated coarsest feature and fuses the finer ones
(paper Sec. 3.3). Training additionally decodes the coarsest feature alone (the
low-resolution branch I_g^1), returns the motion codebook reconstructions and
code-level losses, and quantises the driving frame's features for the appearance
codebook loss. Which scales compensate what is an attribute, so the paper's ablations
(Tab. 2) are configurations of this one module.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax import ops
from mcc_jax.models.appearance_compensation import AppearanceCodebookCompensation
from mcc_jax.models.motion_compensation import MotionCodebookCompensation
from mcc_jax.models.vqgan_decoder import Decoder
from mcc_jax.models.vqgan_encoder import Encoder
from mcc_jax.ops.precision import at_least_float32


class GeneratorOutput(NamedTuple):
  """What the generator returns.

  Attributes:
    image: (B, S, S, 3) generated frame I_g.
    low_resolution_image: (B, S, S, 3) decode of the compensated coarsest feature alone
      (I_g^1); training only, else None.
    flows: N + 1 sampling grids (B, F, F, 2): the coarse flow M^0, then M^1 .. M^N.
    occlusions: N occlusion maps (B, F, F, 1) used at each scale.
    motion_reconstructions: per motion-compensating scale, (B, F, F, 2) codebook
      reconstruction of the input displacement (normalised units); training only.
    motion_targets: the matching ``sg[M^{i-1} - identity]``; training only.
    motion_quantizers: per motion-compensating scale, the QuantizerOutput of the motion
      feature (code-level loss, perplexity, usage); training only.
    appearance_quantizers: per appearance-compensating scale, the QuantizerOutput of the
      driving features; training with a driving frame only.
  """

  image: jax.Array
  low_resolution_image: jax.Array | None
  flows: tuple
  occlusions: tuple
  motion_reconstructions: tuple = ()
  motion_targets: tuple = ()
  motion_quantizers: tuple = ()
  appearance_quantizers: tuple = ()


class Generator(nn.Module):
  """The compensating generator.

  Attributes:
    image_size: S, side of the square frames.
    nf: base width of the autoencoder.
    ch_mult: width multipliers per level, finest first; N = len(ch_mult) scales.
    num_res_blocks: residual blocks per autoencoder level.
    attention_levels: autoencoder levels (0 = finest) with self-attention.
    latent_channels: width of the encoder output (the coarsest source feature).
    num_keypoints: K, channels of the driving heatmaps.
    flow_size: F, side of the flow fields.
    motion_codebook_size, motion_code_dim, motion_layers: K, d_m and L_M.
    appearance_codebook_size, appearance_code_dim, appearance_layers: T, d_a and L_A.
    num_heads: attention heads of both transformers.
    beta: commitment weight of the code-level losses.
    motion_scales: scale indices (0 = coarsest) with motion compensation.
    appearance_scales: scale indices with appearance compensation.
    code_allocation: ``'prefix'``, ``'equal'`` or ``'shared'``.
    dtype: computation dtype (flows and occlusion maps stay float32).
    remat: rematerialise the autoencoder's residual blocks in the backward pass (less
      memory in training, about one more forward pass of compute).
  """

  image_size: int = 256
  nf: int = 64
  ch_mult: Sequence[int] = (1, 2, 2, 4)
  num_res_blocks: int = 2
  attention_levels: Sequence[int] = (3,)
  latent_channels: int = 256
  num_keypoints: int = 15
  flow_size: int = 64
  motion_codebook_size: int = 1024
  motion_code_dim: int = 32
  motion_layers: int = 2
  appearance_codebook_size: int = 1024
  appearance_code_dim: int = 256
  appearance_layers: int = 2
  num_heads: int = 8
  beta: float = 0.25
  motion_scales: Sequence[int] = (0, 1, 2, 3)
  appearance_scales: Sequence[int] = (0, 1, 2, 3)
  code_allocation: str = "prefix"
  dtype: Any = jnp.float32
  remat: bool = False

  @property
  def num_scales(self) -> int:
    return len(self.ch_mult)

  def feature_channels(self) -> list[int]:
    """Channels of the source feature at each scale, coarsest first."""
    widths = [self.nf * m for m in reversed(self.ch_mult)]
    widths[0] = self.latent_channels
    return widths

  def setup(self):
    common = dict(nf=self.nf, ch_mult=tuple(self.ch_mult), num_res_blocks=self.num_res_blocks,
                  attention_levels=tuple(self.attention_levels), dtype=self.dtype,
                  remat=self.remat)
    self.encoder = Encoder(out_channels=self.latent_channels, **common)
    self.decoder = Decoder(out_channels=3, **common)
    if self.motion_scales:
      self.motion_compensation = MotionCodebookCompensation(
          num_scales=self.num_scales, grid_size=self.flow_size // 2,
          code_dim=self.motion_code_dim, codebook_size=self.motion_codebook_size,
          num_layers=self.motion_layers, num_heads=self.num_heads, beta=self.beta,
          allocation=self.code_allocation, num_code_scales=len(self.motion_scales),
          dtype=self.dtype)
    if self.appearance_scales:
      coarsest = self.nf * self.ch_mult[-1]
      # The driving feature of the coarsest scale is an encoder tap of width nf *
      # ch_mult[-1]; the source feature there is the encoder output. Both must fit the
      # same projection, as in the official model (both are 256 wide).
      if self.latent_channels != coarsest and 0 in self.appearance_scales:
        raise ValueError(
            f"appearance compensation at the coarsest scale needs latent_channels "
            f"({self.latent_channels}) == nf * ch_mult[-1] ({coarsest}).")
      self.appearance_compensation = AppearanceCodebookCompensation(
          feature_channels=tuple(self.feature_channels()), grid_size=self.image_size // 2**(self.num_scales - 1),
          code_dim=self.appearance_code_dim, codebook_size=self.appearance_codebook_size,
          num_layers=self.appearance_layers, num_heads=self.num_heads, beta=self.beta,
          allocation=self.code_allocation, num_code_scales=len(self.appearance_scales),
          dtype=self.dtype)

  def __call__(self, source: jax.Array, deformation: jax.Array, occlusion: jax.Array,
               driving_heatmaps: jax.Array, driving: jax.Array | None = None, *,
               train: bool = False) -> GeneratorOutput:
    """Generates the driving frame from the source.

    Args:
      source: (B, S, S, 3) source images in [-1, 1].
      deformation: (B, F, F, 2) coarse sampling grid M^0 from the dense motion network.
      occlusion: (B, F, F, 1) occlusion probability from the dense motion network.
      driving_heatmaps: (B, F, F, K) gaussians of the driving keypoints.
      driving: (B, S, S, 3) driving frames; in training, their features train the
        appearance codebook.
      train: training mode (see :class:`GeneratorOutput`).

    Returns:
      :class:`GeneratorOutput`.
    """
    features = self.encoder(source)
    source_features = [features.output] + [
        features.levels[level] for level in reversed(range(self.num_scales - 1))]

    flow = at_least_float32(deformation)
    occ = at_least_float32(occlusion)
    flows, occlusions, compensated = [flow], [], []
    reconstructions, targets, motion_quantizers = [], [], []
    if self.motion_scales:
      keypoint_query = self.motion_compensation.keypoint_query(driving_heatmaps)
    for scale in range(self.num_scales):
      if scale in self.motion_scales:
        step = self.motion_compensation(
            scale, list(self.motion_scales).index(scale), flow, occ, source_features[scale],
            keypoint_query, train=train)
        flow, occ = step.flow, step.occlusion
        if train:
          reconstructions.append(step.reconstruction)
          targets.append(step.target)
          motion_quantizers.append(step.quantizer)
      flows.append(flow)
      occlusions.append(occ)
      feature = source_features[scale]
      size = feature.shape[1:3]
      warped = ops.warp(feature, flow) * ops.resize_bilinear(
          occ, size, align_corners=True).astype(feature.dtype)
      if scale in self.appearance_scales:
        warped = self.appearance_compensation(
            scale, list(self.appearance_scales).index(scale), warped, flow)
      compensated.append(warped)

    image = self.decoder(compensated[0], compensated[1:])
    if not train:
      return GeneratorOutput(image, None, tuple(flows), tuple(occlusions))

    low_resolution = self.decoder(compensated[0], None)
    appearance_quantizers = ()
    if driving is not None and self.appearance_scales:
      taps = self.encoder(driving, stop_after_coarsest_first_block=True)
      driving_features = [taps.coarsest_first_block] + [
          taps.levels[level] for level in reversed(range(self.num_scales - 1))]
      appearance_quantizers = tuple(
          self.appearance_compensation.code_loss(scale, rank, driving_features[scale])
          for rank, scale in enumerate(self.appearance_scales))
    return GeneratorOutput(image, low_resolution, tuple(flows), tuple(occlusions),
                           tuple(reconstructions), tuple(targets), tuple(motion_quantizers),
                           appearance_quantizers)
