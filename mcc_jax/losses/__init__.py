"""The training objective: pure functions of the networks' outputs (no Flax state).

One concept per module: ``reconstruction`` (L1, image pyramid), ``perceptual`` (the
pyramid perceptual loss and its VGG networks), ``adversarial`` (hinge losses, adaptive
weight), ``codebook`` (motion and appearance codebook losses), ``keypoints``
(equivariance, keypoint distance) and ``objective`` (the total of Eq. 6).
"""

from mcc_jax.losses.adversarial import AdversarialImageTerms
from mcc_jax.losses.adversarial import adaptive_gan_weight
from mcc_jax.losses.adversarial import adaptive_gan_weight_from_gradients
from mcc_jax.losses.adversarial import adversarial_image_terms
from mcc_jax.losses.adversarial import hinge_discriminator_loss
from mcc_jax.losses.adversarial import hinge_generator_loss
from mcc_jax.losses.adversarial import kernel_gradient
from mcc_jax.losses.codebook import appearance_codebook_loss
from mcc_jax.losses.codebook import motion_codebook_losses
from mcc_jax.losses.keypoints import equivariance_losses
from mcc_jax.losses.keypoints import keypoint_distance_loss
from mcc_jax.losses.objective import TERMS
from mcc_jax.losses.objective import discriminator_loss
from mcc_jax.losses.objective import reconstruction_loss
from mcc_jax.losses.objective import reconstruction_terms
from mcc_jax.losses.objective import total_generator_loss
from mcc_jax.losses.perceptual import PerceptualNetwork
from mcc_jax.losses.perceptual import imagenet_normalize
from mcc_jax.losses.perceptual import load_perceptual_network
from mcc_jax.losses.perceptual import pyramid_perceptual_loss
from mcc_jax.losses.reconstruction import image_pyramid
from mcc_jax.losses.reconstruction import l1_loss

__all__ = [
    "AdversarialImageTerms", "PerceptualNetwork", "TERMS", "adaptive_gan_weight",
    "adaptive_gan_weight_from_gradients", "adversarial_image_terms", "appearance_codebook_loss",
    "discriminator_loss", "equivariance_losses", "hinge_discriminator_loss",
    "hinge_generator_loss", "image_pyramid", "imagenet_normalize", "kernel_gradient",
    "keypoint_distance_loss", "l1_loss", "load_perceptual_network", "motion_codebook_losses",
    "pyramid_perceptual_loss", "reconstruction_loss", "reconstruction_terms",
    "total_generator_loss",
]
