"""Codebook losses of the motion and appearance codebooks (paper Eq. 3 and 5).

Official arithmetic: the code-level losses of the four motion quantisations (the
pre-generator stage and the three fusion stages) are summed, each weighted by the
motion code weight; the motion reconstruction term sums, over the same four scales,
``lambda_recon,m * mean|D_M(Q(E_M(sg[M]))) / ((F-1)/2) - sg[M - identity]|``; the
appearance code-level losses (driving-frame tokens) are summed over the four scales.
The generator already returns the reconstructions in normalised units and the stopped
targets (:class:`~mcc_jax.models.generator.GeneratorOutput`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mcc_jax.losses.reconstruction import l1_loss
from mcc_jax.ops.precision import at_least_float32


def motion_codebook_losses(generator_output, *, code_weight: float,
                           reconstruction_weight: float) -> tuple[jax.Array, jax.Array]:
  """(sum of weighted code-level losses, sum of weighted flow reconstruction losses)."""
  code = jnp.zeros((), jnp.float32)
  for quantizer in generator_output.motion_quantizers:
    code = code + code_weight * at_least_float32(quantizer.loss)
  reconstruction = jnp.zeros((), jnp.float32)
  for predicted, target in zip(generator_output.motion_reconstructions,
                               generator_output.motion_targets):
    reconstruction = reconstruction + reconstruction_weight * l1_loss(
        predicted, jax.lax.stop_gradient(target))
  return code, reconstruction


def appearance_codebook_loss(generator_output, *, code_weight: float) -> jax.Array:
  """Sum over scales of the weighted appearance code-level losses."""
  total = jnp.zeros((), jnp.float32)
  for quantizer in generator_output.appearance_quantizers:
    total = total + code_weight * at_least_float32(quantizer.loss)
  return total
