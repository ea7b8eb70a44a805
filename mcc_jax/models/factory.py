"""Builds the networks from a configuration, validating it first.

Every structural size follows from ``image_size`` and a few widths, so the same
configuration runs at 64, 128, 256 or 512 pixels:

* N = ``len(generator.ch_mult)`` scales, feature sides ``S / 2**(N-1) .. S``;
* the flow side F = ``S * dense_motion.scale_factor`` (64 at 256x256), the motion token
  grid F / 2 and the appearance token grid ``S / 2**(N-1)`` (both 32 at 256x256);
* appearance windows of side ``2**i`` at scale i.

The paper's ablations are values, not code paths: ``model.variant`` (Tab. 2) decides
which scales compensate motion and appearance, ``model.code_allocation`` (Tab. 4) how
the scales share each codebook. Invalid values raise :class:`ConfigError` naming the
field.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from mcc_jax.models.discriminator import PatchDiscriminator
from mcc_jax.models.generator import Generator
from mcc_jax.models.motion_estimator import MotionEstimator
from mcc_jax.ops.quantize import ALLOCATIONS

# variant -> (scales with motion compensation, scales with appearance compensation);
# "all" is every scale. Scale 0 is the coarsest.
VARIANTS = {
    "baseline": ((), ()),  # no codebooks: the coarse flow warps every scale
    "smc": ("first", ()),  # single-scale motion codebook, its flow used at every scale
    "mmc": ("all", ()),  # multi-scale motion codebook
    "mmc_sac": ("all", "first"),  # ... plus a single-scale appearance codebook
    "full": ("all", "all"),  # multi-scale motion and appearance codebooks (the paper's model)
}
# float64 is for verification (the float64 parity reference); it needs jax_enable_x64.
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16,
          "float64": jnp.float64}
GROUP_NORM_GROUPS = 32


class ConfigError(ValueError):
  """A configuration value is invalid; the message names the field."""


def _require(condition: bool, field: str, message: str) -> None:
  if not condition:
    raise ConfigError(f"config.{field}: {message}")


def _scales(spec, num_scales: int) -> tuple[int, ...]:
  if spec == "all":
    return tuple(range(num_scales))
  if spec == "first":
    return (0,)
  return tuple(spec)


def compensation_scales(variant: str, num_scales: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """(motion scales, appearance scales) of a variant; see :data:`VARIANTS`."""
  _require(variant in VARIANTS, "model.variant",
           f"expected one of {sorted(VARIANTS)}, got {variant!r}")
  motion, appearance = VARIANTS[variant]
  return _scales(motion, num_scales), _scales(appearance, num_scales)


def dtype_of(model: Mapping[str, Any]):
  """The computation dtype named by ``model.dtype``."""
  _require(model["dtype"] in DTYPES, "model.dtype",
           f"expected one of {sorted(DTYPES)}, got {model['dtype']!r}")
  _require(model["dtype"] != "float64" or jax.config.jax_enable_x64, "model.dtype",
           "'float64' needs 64-bit JAX: set JAX_ENABLE_X64=1 or "
           "jax.config.update('jax_enable_x64', True) before building the model")
  return DTYPES[model["dtype"]]


def _power_of_two(value) -> bool:
  return isinstance(value, int) and value > 0 and (value & (value - 1)) == 0


def _validate_common(model: Mapping[str, Any]) -> None:
  size = model["image_size"]
  _require(isinstance(size, int) and size > 0, "model.image_size",
           f"expected a positive integer, got {size!r}")
  dtype_of(model)
  scaled = size * model["dense_motion"]["scale_factor"]
  _require(float(scaled).is_integer() and scaled > 0, "model.dense_motion.scale_factor",
           f"image_size * scale_factor = {scaled} is not a positive integer")
  flow = int(scaled)
  _require(flow % 2 == 0 and flow >= 4, "model.dense_motion.scale_factor",
           f"the flow side image_size * scale_factor = {flow} must be even and >= 4")


def validate_generator_config(model: Mapping[str, Any]) -> None:
  """Checks the fields the generator uses; raises :class:`ConfigError` naming the field."""
  size = model["image_size"]
  _require(isinstance(size, int) and size > 0, "model.image_size",
           f"expected a positive integer, got {size!r}")
  gen = model["generator"]
  mult = tuple(gen["ch_mult"])
  _require(len(mult) >= 2, "model.generator.ch_mult", f"expected at least 2 levels, got {mult}")
  num_scales = len(mult)
  coarsest = 2**(num_scales - 1)
  _require(size % coarsest == 0, "model.image_size",
           f"{size} cannot be divided by the {num_scales} scales (needs a multiple of {coarsest})")
  _validate_common(model)
  for i, m in enumerate(mult):
    _require((gen["nf"] * m) % GROUP_NORM_GROUPS == 0, "model.generator.ch_mult",
             f"level {i} width nf * ch_mult = {gen['nf'] * m} must be a multiple of "
             f"{GROUP_NORM_GROUPS} (GroupNorm groups)")
  _require(gen["latent_channels"] % GROUP_NORM_GROUPS == 0, "model.generator.latent_channels",
           f"{gen['latent_channels']} must be a multiple of {GROUP_NORM_GROUPS}")
  _require(gen["num_res_blocks"] >= 1, "model.generator.num_res_blocks",
           f"expected >= 1, got {gen['num_res_blocks']}")
  for factor in gen["attention_downsample_factors"]:
    _require(_power_of_two(factor) and factor <= coarsest,
             "model.generator.attention_downsample_factors",
             f"{factor} is not a power of two between 1 and {coarsest}")

  _require(model["code_allocation"] in ALLOCATIONS, "model.code_allocation",
           f"expected one of {ALLOCATIONS}, got {model['code_allocation']!r}")
  motion, appearance = compensation_scales(model["variant"], num_scales)
  for prefix, scales in (("motion", motion), ("appearance", appearance)):
    codes = gen[f"{prefix}_codebook_size"]
    dim = gen[f"{prefix}_code_dim"]
    field = f"model.generator.{prefix}_codebook_size"
    _require(isinstance(codes, int) and codes >= 1, field, f"expected >= 1, got {codes!r}")
    if scales and model["code_allocation"] != "shared":
      _require(codes % len(scales) == 0, field,
               f"{codes} codes cannot be split among {len(scales)} scales "
               f"(code_allocation={model['code_allocation']!r})")
    _require(dim % gen["num_heads"] == 0, f"model.generator.{prefix}_code_dim",
             f"{dim} is not divisible by num_heads={gen['num_heads']}")
  _require(gen["motion_code_dim"] % GROUP_NORM_GROUPS == 0, "model.generator.motion_code_dim",
           f"{gen['motion_code_dim']} must be a multiple of {GROUP_NORM_GROUPS} (GroupNorm)")
  if 0 in appearance:
    _require(gen["latent_channels"] == gen["nf"] * mult[-1], "model.generator.latent_channels",
             f"appearance compensation at the coarsest scale needs latent_channels == "
             f"nf * ch_mult[-1] = {gen['nf'] * mult[-1]}")


def validate_motion_estimator_config(model: Mapping[str, Any]) -> None:
  """Checks the keypoint detector and dense motion fields."""
  _validate_common(model)
  size = model["image_size"]
  for name in ("dense_motion", "keypoint_detector"):
    part = model[name]
    scaled = size * part["scale_factor"]
    _require(float(scaled).is_integer() and scaled > 0, f"model.{name}.scale_factor",
             f"image_size * scale_factor = {scaled} is not a positive integer")
    scaled = int(scaled)
    blocks = part["num_blocks"]
    _require(scaled % 2**blocks == 0, f"model.{name}.num_blocks",
             f"the hourglass pools {blocks} times, so image_size * scale_factor = {scaled} "
             f"must be a multiple of {2**blocks}")
  detector_side = int(size * model["keypoint_detector"]["scale_factor"])
  _require(detector_side - 2 * (3 - model["keypoint_detector"]["padding"]) >= 1,
           "model.keypoint_detector.scale_factor",
           f"a {detector_side}x{detector_side} input is too small for the 7x7 keypoint head")


def validate_discriminator_config(model: Mapping[str, Any]) -> None:
  """Checks the discriminator fields."""
  _validate_common(model)
  disc = model["discriminator"]
  _require(model["image_size"] // 2**disc["num_layers"] >= 3, "model.discriminator.num_layers",
           f"{disc['num_layers']} stride-2 layers leave no patch at image_size "
           f"{model['image_size']}")


def validate_model_config(model: Mapping[str, Any]) -> None:
  """Checks all of ``config.model``; raises :class:`ConfigError` naming the first bad field."""
  validate_generator_config(model)
  validate_motion_estimator_config(model)
  validate_discriminator_config(model)


def flow_size(model: Mapping[str, Any]) -> int:
  """F, the side of the dense motion fields."""
  return int(model["image_size"] * model["dense_motion"]["scale_factor"])


def build_generator(model: Mapping[str, Any]) -> Generator:
  """The :class:`~mcc_jax.models.generator.Generator` of ``config.model`` (validated)."""
  validate_generator_config(model)
  gen = model["generator"]
  num_scales = len(gen["ch_mult"])
  motion, appearance = compensation_scales(model["variant"], num_scales)
  return Generator(
      image_size=model["image_size"], nf=gen["nf"], ch_mult=tuple(gen["ch_mult"]),
      num_res_blocks=gen["num_res_blocks"],
      attention_levels=tuple(int(math.log2(f)) for f in gen["attention_downsample_factors"]),
      latent_channels=gen["latent_channels"], num_keypoints=model["num_keypoints"],
      flow_size=flow_size(model), motion_codebook_size=gen["motion_codebook_size"],
      motion_code_dim=gen["motion_code_dim"], motion_layers=gen["motion_layers"],
      appearance_codebook_size=gen["appearance_codebook_size"],
      appearance_code_dim=gen["appearance_code_dim"], appearance_layers=gen["appearance_layers"],
      num_heads=gen["num_heads"], beta=gen["beta"], motion_scales=motion,
      appearance_scales=appearance, code_allocation=model["code_allocation"],
      dtype=dtype_of(model), remat=bool(model.get("remat", False)))


def build_discriminator(model: Mapping[str, Any]) -> PatchDiscriminator:
  """The :class:`~mcc_jax.models.discriminator.PatchDiscriminator` of ``config.model``."""
  validate_discriminator_config(model)
  disc = model["discriminator"]
  return PatchDiscriminator(ndf=disc["ndf"], num_layers=disc["num_layers"], dtype=dtype_of(model))


def build_motion_estimator(model: Mapping[str, Any]) -> MotionEstimator:
  """The :class:`~mcc_jax.models.motion_estimator.MotionEstimator` of ``config.model``."""
  validate_motion_estimator_config(model)
  kp, motion = model["keypoint_detector"], model["dense_motion"]
  return MotionEstimator(
      num_keypoints=model["num_keypoints"], num_channels=model["num_channels"],
      kp_block_expansion=kp["block_expansion"], kp_max_features=kp["max_features"],
      kp_num_blocks=kp["num_blocks"], kp_scale_factor=kp["scale_factor"],
      temperature=kp["temperature"], estimate_jacobian=kp["estimate_jacobian"],
      kp_padding=kp["padding"], motion_block_expansion=motion["block_expansion"],
      motion_max_features=motion["max_features"], motion_num_blocks=motion["num_blocks"],
      motion_scale_factor=motion["scale_factor"], kp_variance=motion["kp_variance"],
      estimate_occlusion=motion["estimate_occlusion"], dtype=dtype_of(model))
