"""Motion codebook compensation (MCC, paper Sec. 3.2, Fig. 3).

At scale ``i`` the current flow ``M^{i-1}`` (a (F, F, 2) sampling grid, F = 64 at
256x256) is refined with motion patterns retrieved from the motion codebook:

1. the flow as a pixel displacement, ``m = (M - identity) * (F - 1) / 2``, is encoded by
   the flow encoder E_M (3x3 conv, stride-2 downsampling, residual block) into a
   (F/2, F/2, d_m) motion feature; gradients of ``m`` are stopped here;
2. the query combines that feature with the source feature warped by ``M^{i-1}`` and
   the driving keypoint heatmaps (1x1 convolutions), plus a learned position embedding;
3. the transformer T_M (shared by all scales) cross-attends to the codes allocated to
   this scale;
4. the MRFA-style decoder D_MR turns the result, the flow and a context feature of the
   warped source into a flow residual (pixels) and an occlusion logit delta:
   ``M^i = M^{i-1} + residual / ((F - 1) / 2)``, ``occ^i = sigmoid(occ^{i-1} + delta)``.

In training, the motion feature is also quantised against the allocated codes and
decoded back to a displacement by D_M (Eq. 1-3): the reconstruction and the code-level
loss train the codebook without sending gradients into the flow.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax import ops
from mcc_jax.models import vqgan_blocks
from mcc_jax.models.codebook_transformer import CodebookTransformerLayer
from mcc_jax.models.flow_refiner import FlowRefiner, MotionEncoder
from mcc_jax.models.torch_layers import Conv2d
from mcc_jax.ops.precision import at_least_float32
from mcc_jax.ops.quantize import VectorQuantizer

CONTEXT_CHANNELS = 192


class MotionStep(NamedTuple):
  """One scale of motion compensation.

  Attributes:
    flow: (B, F, F, 2) refined sampling grid M^i.
    occlusion: (B, F, F, 1) refined occlusion probability.
    reconstruction: (B, F, F, 2) codebook reconstruction of the input displacement,
      in normalised units (training only, else None).
    target: (B, F, F, 2) ``sg[M^{i-1} - identity]``, what ``reconstruction`` should match
      (training only).
    quantizer: :class:`~mcc_jax.ops.QuantizerOutput` of the motion feature (training only).
  """

  flow: jax.Array
  occlusion: jax.Array
  reconstruction: jax.Array | None = None
  target: jax.Array | None = None
  quantizer: Any = None


class FlowEncoder(nn.Module):
  """E_M: (B, F, F, 2) displacement -> (B, F/2, F/2, features)."""

  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, displacement: jax.Array) -> jax.Array:
    x = Conv2d(self.features, 3, padding=1, dtype=self.dtype, name="conv")(displacement)
    x = vqgan_blocks.Downsample(dtype=self.dtype, name="downsample")(x)
    return vqgan_blocks.ResBlock(self.features, dtype=self.dtype, name="block")(x)


class FlowDecoder(nn.Module):
  """D_M: (B, F/2, F/2, D) quantised motion feature -> (B, F, F, 2) displacement (pixels)."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feature: jax.Array) -> jax.Array:
    x = vqgan_blocks.Upsample(dtype=self.dtype, name="upsample")(feature)
    x = vqgan_blocks.ResBlock(dtype=self.dtype, name="block")(x)
    x = vqgan_blocks.group_norm("norm", self.dtype)(x)
    return Conv2d(2, 3, padding=1, dtype=self.dtype, name="conv")(x)


class MotionCodebookCompensation(nn.Module):
  """MCC, shared by every scale that compensates motion.

  Attributes:
    num_scales: number of feature scales N (per-scale 1x1 convolutions are indexed by it).
    grid_size: side of the motion token grid, F / 2 (32 at 256x256).
    code_dim: d_m, width of codes, tokens and the transformer.
    codebook_size: K, number of motion codes.
    num_layers: transformer layers L_M.
    num_heads: attention heads.
    beta: commitment weight of the code-level loss.
    allocation: code allocation across the compensating scales.
    num_code_scales: how many scales share the codebook (the scales that compensate).
    dtype: computation dtype.
  """

  num_scales: int = 4
  grid_size: int = 32
  code_dim: int = 32
  codebook_size: int = 1024
  num_layers: int = 2
  num_heads: int = 8
  beta: float = 0.25
  allocation: str = "prefix"
  num_code_scales: int = 4
  dtype: Any = jnp.float32

  def setup(self):
    d, dtype = self.code_dim, self.dtype
    self.flow_encoder = FlowEncoder(d, dtype=dtype)
    self.flow_decoder = FlowDecoder(dtype=dtype)
    self.codebook = VectorQuantizer(self.codebook_size, d, beta=self.beta,
                                    num_scales=self.num_code_scales, allocation=self.allocation)
    self.keypoint_query_conv = Conv2d(d, 1, dtype=dtype)
    self.source_query_convs = [Conv2d(d, 1, dtype=dtype) for _ in range(self.num_scales)]
    self.query_fuse_conv = Conv2d(d, 1, dtype=dtype)
    self.query_with_flow_conv = Conv2d(d, 1, dtype=dtype)
    self.layers = [CodebookTransformerLayer(self.num_heads, dtype=dtype)
                   for _ in range(self.num_layers)]
    self.motion_encoder = MotionEncoder(dtype=dtype)
    self.context_convs = [Conv2d(CONTEXT_CHANNELS, 1, dtype=dtype) for _ in range(self.num_scales)]
    self.flow_refiner = FlowRefiner(dtype=dtype)
    self.position_embedding = self.param("position_embedding", nn.initializers.zeros,
                                         (self.grid_size * self.grid_size, d), jnp.float32)

  def keypoint_query(self, driving_heatmaps: jax.Array) -> jax.Array:
    """The driving-pose part of the query, computed once per frame.

    Args:
      driving_heatmaps: (B, F, F, K) gaussians of the driving keypoints.

    Returns:
      (B, grid_size, grid_size, d_m).
    """
    size = (self.grid_size, self.grid_size)
    heatmaps = ops.resize_bilinear(driving_heatmaps.astype(self.dtype), size, align_corners=True)
    return nn.relu(self.keypoint_query_conv(heatmaps))

  def __call__(self, scale: int, code_scale: int, flow: jax.Array, occlusion: jax.Array,
               source_feature: jax.Array, keypoint_query: jax.Array, *,
               train: bool) -> MotionStep:
    """Refines the flow at one scale.

    Args:
      scale: feature scale index (0 = coarsest), selects the per-scale convolutions.
      code_scale: index of this scale among the compensating scales (code allocation).
      flow: (B, F, F, 2) current sampling grid M^{i-1} (float32).
      occlusion: (B, F, F, 1) current occlusion probability.
      source_feature: (B, h, w, C) source feature of this scale.
      keypoint_query: (B, F/2, F/2, d_m) from :meth:`keypoint_query`.
      train: also quantise and reconstruct the motion feature.

    Returns:
      :class:`MotionStep`.
    """
    f = flow.shape[1]
    grid_size = self.grid_size
    pixels_per_unit = (f - 1) / 2.0
    # The official identity grid here is torch.linspace in float32 (see linspace_grid).
    offset = flow - ops.linspace_grid(f, f, dtype=flow.dtype)[None]
    displacement = offset * pixels_per_unit
    motion_feature = self.flow_encoder(jax.lax.stop_gradient(displacement).astype(self.dtype))

    warped_previous = ops.warp(source_feature, flow)
    source_query = nn.relu(self.source_query_convs[scale](ops.resize_bilinear(
        warped_previous, (grid_size, grid_size), align_corners=True)))
    query = self.query_fuse_conv(jnp.concatenate([source_query, keypoint_query], axis=-1))
    tokens = self.query_with_flow_conv(jnp.concatenate([motion_feature, query], axis=-1))

    codes = self.codebook.codes(code_scale)
    for layer in self.layers:
      tokens = layer(tokens, codes, self.position_embedding)

    retrieved = ops.resize_bilinear(tokens, (f, f), align_corners=True)
    motion = self.motion_encoder(displacement, retrieved)
    context = nn.relu(self.context_convs[scale](warped_previous))
    context = ops.resize_bilinear(context, (f, f), align_corners=True)
    residual, occlusion_delta = self.flow_refiner(motion, context)

    new_flow = flow + residual.astype(flow.dtype) / pixels_per_unit
    new_occlusion = jax.nn.sigmoid(occlusion + occlusion_delta.astype(occlusion.dtype))
    if not train:
      return MotionStep(new_flow, new_occlusion)
    quantized = self.codebook(motion_feature, code_scale)
    reconstruction = at_least_float32(self.flow_decoder(quantized.quantized)) / pixels_per_unit
    return MotionStep(new_flow, new_occlusion, reconstruction, jax.lax.stop_gradient(offset),
                      quantized)
