"""The motion-flow residual decoder D_MR, after MRFA (Tao et al., 2024).

:class:`MotionEncoder` mixes the retrieved motion feature with the current flow (in
pixels); :class:`FlowRefiner` combines that with a context feature of the warped source
and predicts a 2-channel flow residual (pixels) and a 1-channel occlusion logit delta.
Concatenation orders follow the official model, which the checkpoint converter relies
on.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.torch_layers import Conv2d


class MotionEncoder(nn.Module):
  """Encodes (flow, retrieved motion feature) into 128 channels.

  Attributes:
    dtype: computation dtype.
  """

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, flow: jax.Array, motion_feature: jax.Array) -> jax.Array:
    """Args: flow (B, F, F, 2) displacement in pixels; motion_feature (B, F, F, D).

    Returns:
      (B, F, F, 128): 126 encoded channels followed by the flow itself.
    """
    conv = lambda f, k, name: Conv2d(f, k, padding=k // 2, dtype=self.dtype, name=name)
    cor = nn.relu(conv(128, 1, "motion_conv1")(motion_feature))
    cor = nn.relu(conv(96, 3, "motion_conv2")(cor))
    flo = nn.relu(conv(128, 7, "flow_conv1")(flow.astype(self.dtype)))
    flo = nn.relu(conv(64, 3, "flow_conv2")(flo))
    out = nn.relu(conv(126, 3, "fuse_conv")(jnp.concatenate([cor, flo], axis=-1)))
    return jnp.concatenate([out, flow.astype(self.dtype)], axis=-1)


class FlowRefiner(nn.Module):
  """Predicts a flow residual and an occlusion delta.

  Attributes:
    dtype: computation dtype.
  """

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, motion: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Args: motion (B, F, F, 128) from :class:`MotionEncoder`; context (B, F, F, 192).

    Returns:
      flow residual (B, F, F, 2) in pixels, occlusion logit delta (B, F, F, 1).
    """
    conv = lambda f, name: Conv2d(f, 3, padding=1, dtype=self.dtype, name=name)
    c = nn.relu(conv(128, "context_conv")(context))
    joint = jnp.concatenate([motion, c], axis=-1)
    flow = conv(2, "flow_conv2")(nn.relu(conv(128, "flow_conv1")(joint)))
    occlusion = conv(1, "occlusion_conv2")(nn.relu(conv(128, "occlusion_conv1")(joint)))
    return flow, occlusion
