"""Flax linen modules of the model; build them from a configuration with ``factory``.

* :class:`~mcc_jax.models.motion_estimator.MotionEstimator`: FOMM keypoint detector and
  dense motion network.
* :class:`~mcc_jax.models.generator.Generator`: VQGAN encoder and decoder with
  multi-scale motion and appearance codebook compensation.
* :class:`~mcc_jax.models.discriminator.PatchDiscriminator`: the VQGAN PatchGAN.
"""

from mcc_jax.models.discriminator import PatchDiscriminator
from mcc_jax.models.factory import ConfigError
from mcc_jax.models.factory import build_discriminator
from mcc_jax.models.factory import build_generator
from mcc_jax.models.factory import build_motion_estimator
from mcc_jax.models.factory import validate_model_config
from mcc_jax.models.generator import Generator
from mcc_jax.models.generator import GeneratorOutput
from mcc_jax.models.motion_estimator import MotionEstimate
from mcc_jax.models.motion_estimator import MotionEstimator

__all__ = [
    "ConfigError",
    "Generator",
    "GeneratorOutput",
    "MotionEstimate",
    "MotionEstimator",
    "PatchDiscriminator",
    "build_discriminator",
    "build_generator",
    "build_motion_estimator",
    "validate_model_config",
]
