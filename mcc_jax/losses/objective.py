"""The whole training objective (paper Eq. 6) as the official training code computes it.

    total = l1_weight * L1(I_g, I_d) + P(I_g, I_d)                    (reconstruction)
          + d * hinge_G(D(I_g))                                      (from the D start)
          + sum_s code_m(s) + sum_s lambda_recon,m * recon_m(s)       (motion codebook)
          + lambda^1 * (L1(I_g^1, I_d) + P(I_g^1, I_d))               (low-resolution branch)
          + sum_s code_a(s)                                           (appearance codebook)
          + w_v * eq_value + w_j * eq_jacobian + w_kpd * kpd          (keypoints)

with P the pyramid perceptual loss and d the adaptive weight (computed by the caller
with :func:`~mcc_jax.losses.adversarial.adaptive_gan_weight` on
:func:`reconstruction_loss`, or with the first three terms precomputed by
:func:`~mcc_jax.losses.adversarial.adversarial_image_terms`). Every weight comes from
``config.losses``; a zero weight skips its term.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mcc_jax.losses.adversarial import AdversarialImageTerms
from mcc_jax.losses.adversarial import hinge_discriminator_loss, hinge_generator_loss
from mcc_jax.losses.codebook import appearance_codebook_loss, motion_codebook_losses
from mcc_jax.losses.keypoints import equivariance_losses, keypoint_distance_loss
from mcc_jax.losses.perceptual import FeaturesFn, pyramid_perceptual_loss
from mcc_jax.losses.reconstruction import l1_loss
from mcc_jax.ops.precision import at_least_float32

TERMS = ("l1", "perceptual", "gan", "adaptive_weight", "motion_code", "motion_reconstruction",
         "low_resolution_l1", "low_resolution_perceptual", "appearance_code",
         "equivariance_value", "equivariance_jacobian", "keypoint_distance", "total")


def _perceptual(features_fn, prediction, target, config):
  return pyramid_perceptual_loss(features_fn, prediction, target,
                                 scales=tuple(config.perceptual_scales),
                                 layer_weights=tuple(config.perceptual_layer_weights))


def _zero() -> jax.Array:
  return jnp.zeros((), jnp.float32)


def reconstruction_terms(image: jax.Array, driving: jax.Array, *, features_fn: FeaturesFn,
                         config: Any) -> dict[str, jax.Array]:
  """``{'l1': l1_weight * L1, 'perceptual': P}`` of the main output (zero where unweighted)."""
  terms = {"l1": _zero(), "perceptual": _zero()}
  if config.l1_weight:
    terms["l1"] = config.l1_weight * l1_loss(image, driving)
  if any(config.perceptual_layer_weights):
    terms["perceptual"] = _perceptual(features_fn, image, driving, config)
  return terms


def reconstruction_loss(image: jax.Array, driving: jax.Array, *, features_fn: FeaturesFn,
                        config: Any) -> jax.Array:
  """``l1_weight * L1 + perceptual`` of the main output: the adaptive weight's numerator.

  (The low-resolution branch, codebook and keypoint terms are not part of it, as in the
  official code.)
  """
  terms = reconstruction_terms(image, driving, features_fn=features_fn, config=config)
  return terms["l1"] + terms["perceptual"]


def total_generator_loss(generator_output, motion, kp_transformed, tps, driving: jax.Array, *,
                         features_fn: FeaturesFn, config: Any,
                         fake_logits: jax.Array | None = None,
                         adaptive_weight: jax.Array | None = None,
                         image_terms: AdversarialImageTerms | None = None
                         ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The generator side's objective and each of its terms.

  Args:
    generator_output: :class:`~mcc_jax.models.generator.GeneratorOutput` in training mode.
    motion: :class:`~mcc_jax.models.motion_estimator.MotionEstimate` of (source, driving).
    kp_transformed: keypoints of ``tps.transform_frame(driving)``.
    tps: the random transforms of the equivariance loss.
    driving: (B, S, S, 3) the target frames.
    features_fn: the perceptual network's feature function.
    config: ``config.losses``.
    fake_logits: the discriminator's logits of ``generator_output.image`` (None before the
      discriminator's start: no adversarial term).
    adaptive_weight: the stopped adaptive weight (required with ``fake_logits``).
    image_terms: the main output's L1, perceptual and GAN terms and the adaptive weight,
      precomputed with their gradient by
      :func:`~mcc_jax.losses.adversarial.adversarial_image_terms` (the training step's
      form); replaces ``fake_logits`` and ``adaptive_weight``.

  Returns:
    (total, terms): ``terms`` has every name of :data:`TERMS` (float32 scalars, weights
    applied; ``adaptive_weight`` is reported, not added).
  """
  if image_terms is not None and (fake_logits is not None or adaptive_weight is not None):
    raise ValueError("total_generator_loss: image_terms replaces fake_logits and "
                     "adaptive_weight; pass one or the other")
  terms = {name: _zero() for name in TERMS}
  image = generator_output.image
  if image_terms is not None:
    terms.update(image_terms.terms)
  else:
    terms.update(reconstruction_terms(image, driving, features_fn=features_fn, config=config))
  if fake_logits is not None:
    if adaptive_weight is None:
      raise ValueError("total_generator_loss: fake_logits needs the adaptive_weight")
    weight = jax.lax.stop_gradient(at_least_float32(adaptive_weight))
    terms["adaptive_weight"] = weight
    terms["gan"] = weight * hinge_generator_loss(fake_logits)
  code, reconstruction = motion_codebook_losses(
      generator_output, code_weight=config.motion_code_weight,
      reconstruction_weight=config.motion_reconstruction_weight)
  terms["motion_code"], terms["motion_reconstruction"] = code, reconstruction
  low = generator_output.low_resolution_image
  if config.low_resolution_weight and low is not None:
    if config.l1_weight:
      terms["low_resolution_l1"] = (config.low_resolution_weight * config.l1_weight
                                    * l1_loss(low, driving))
    if any(config.perceptual_layer_weights):
      terms["low_resolution_perceptual"] = config.low_resolution_weight * _perceptual(
          features_fn, low, driving, config)
  terms["appearance_code"] = appearance_codebook_loss(
      generator_output, code_weight=config.appearance_code_weight)
  if config.equivariance_value_weight or config.equivariance_jacobian_weight:
    value, jacobian = equivariance_losses(motion.kp_driving, kp_transformed, tps)
    terms["equivariance_value"] = config.equivariance_value_weight * value
    terms["equivariance_jacobian"] = config.equivariance_jacobian_weight * jacobian
  if config.keypoint_distance_weight:
    terms["keypoint_distance"] = config.keypoint_distance_weight * keypoint_distance_loss(
        motion.kp_source, motion.kp_driving, config.keypoint_distance_threshold)
  total = sum(value for name, value in terms.items()
              if name not in ("adaptive_weight", "total"))
  if image_terms is not None:
    total = total + image_terms.gradient_carrier  # exactly zero: carries the gradient
  terms["total"] = total
  return total, terms


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The discriminator's hinge loss (weight 1, as in the official code) and its two parts."""
  total, parts = hinge_discriminator_loss(real_logits, fake_logits)
  return total, {"discriminator_loss": total, "discriminator_real": parts["real"],
                 "discriminator_fake": parts["fake"]}
