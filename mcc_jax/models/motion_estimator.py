"""The keypoint-aware motion estimator: keypoint detector plus dense motion network.

Training runs both on a (source, driving) pair of frames of one video. Animating a
source with another person's video needs the parts separately: detect the keypoints of
the source and of every driving frame (:meth:`MotionEstimator.detect_keypoints`), move
the source keypoints relatively (:func:`mcc_jax.ops.transfer_relative_motion`), and
only then estimate the dense motion (:meth:`MotionEstimator.estimate_dense_motion`).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.dense_motion import DenseMotion
from mcc_jax.models.dense_motion import DenseMotionNetwork
from mcc_jax.models.keypoint_detector import KeypointDetector
from mcc_jax.ops.keypoints import Keypoints


class MotionEstimate(NamedTuple):
  """Keypoints of both frames and the dense motion between them.

  The fields after ``kp_driving`` are those of
  :class:`~mcc_jax.models.dense_motion.DenseMotion`, in the same order.

  Attributes:
    kp_source: keypoints of the source image.
    kp_driving: keypoints of the driving image.
    deformation: (B, h, w, 2) sampling grid from driving to source positions.
    occlusion: (B, h, w, 1) occlusion probability, or None.
    mask: (B, h, w, K + 1) motion weights, background first.
    driving_heatmaps: (B, h, w, K) gaussians of the driving keypoints.
    sparse_motions: (B, K + 1, h, w, 2) candidate motions.
    deformed_source: (B, K + 1, h, w, C) downsampled source warped by each motion.
  """

  kp_source: Keypoints
  kp_driving: Keypoints
  deformation: jax.Array
  occlusion: Optional[jax.Array]
  mask: jax.Array
  driving_heatmaps: jax.Array
  sparse_motions: jax.Array
  deformed_source: jax.Array


class MotionEstimator(nn.Module):
  """Keypoint detector and dense motion network (``Motion_Estimator_keypoint_aware``).

  Submodules: ``keypoint_detector`` (:class:`KeypointDetector`) and ``dense_motion``
  (:class:`DenseMotionNetwork`). The defaults are the official configuration.

  Attributes:
    num_keypoints: K, shared by both parts.
    num_channels: image channels.
    kp_block_expansion: keypoint detector hourglass width.
    kp_max_features: keypoint detector hourglass width cap.
    kp_num_blocks: keypoint detector hourglass depth.
    kp_scale_factor: keypoint detector downsampling factor.
    temperature: keypoint heatmap softmax temperature.
    estimate_jacobian: predict jacobians (used by the sparse motions).
    kp_padding: padding of the keypoint detector's 7x7 heads.
    motion_block_expansion: dense motion hourglass width.
    motion_max_features: dense motion hourglass width cap.
    motion_num_blocks: dense motion hourglass depth.
    motion_scale_factor: dense motion downsampling factor.
    kp_variance: variance of the keypoint gaussians.
    estimate_occlusion: predict an occlusion map.
    dtype: computation dtype (parameters are float32).
  """

  num_keypoints: int = 15
  num_channels: int = 3
  kp_block_expansion: int = 32
  kp_max_features: int = 1024
  kp_num_blocks: int = 5
  kp_scale_factor: float = 0.25
  temperature: float = 0.1
  estimate_jacobian: bool = True
  kp_padding: int = 0
  motion_block_expansion: int = 64
  motion_max_features: int = 1024
  motion_num_blocks: int = 5
  motion_scale_factor: float = 0.25
  kp_variance: float = 0.01
  estimate_occlusion: bool = True
  dtype: Any = jnp.float32

  def setup(self):
    self.keypoint_detector = KeypointDetector(
        num_keypoints=self.num_keypoints, num_channels=self.num_channels,
        block_expansion=self.kp_block_expansion, max_features=self.kp_max_features,
        num_blocks=self.kp_num_blocks, temperature=self.temperature,
        scale_factor=self.kp_scale_factor, estimate_jacobian=self.estimate_jacobian,
        padding=self.kp_padding, dtype=self.dtype)
    self.dense_motion = DenseMotionNetwork(
        num_keypoints=self.num_keypoints, num_channels=self.num_channels,
        block_expansion=self.motion_block_expansion, max_features=self.motion_max_features,
        num_blocks=self.motion_num_blocks, scale_factor=self.motion_scale_factor,
        kp_variance=self.kp_variance, estimate_occlusion=self.estimate_occlusion,
        dtype=self.dtype)

  def detect_keypoints(self, image: jax.Array, *, train: bool) -> Keypoints:
    """Keypoints of ``image`` (B, H, W, C); see :class:`KeypointDetector`."""
    return self.keypoint_detector(image, train=train)

  def estimate_dense_motion(self, source: jax.Array, kp_source: Keypoints,
                            kp_driving: Keypoints, *, train: bool) -> DenseMotion:
    """Dense motion of ``source`` (B, H, W, C) between two keypoint sets.

    See :class:`DenseMotionNetwork`; ``kp_driving`` may come from another video after
    relative motion transfer.
    """
    return self.dense_motion(source, kp_source, kp_driving, train=train)

  def __call__(self, source: jax.Array, driving: jax.Array, *, train: bool) -> MotionEstimate:
    """Keypoints of both frames and the dense motion that maps the source onto the driving.

    Args:
      source: (B, H, W, C) source images in [-1, 1].
      driving: (B, H, W, C) driving images in [-1, 1].
      train: BatchNorm mode.

    Returns:
      :class:`MotionEstimate`.
    """
    # Driving first, as in the official code: in training the BatchNorm running
    # statistics are updated in this order.
    kp_driving = self.keypoint_detector(driving, train=train)
    kp_source = self.keypoint_detector(source, train=train)
    dense = self.dense_motion(source, kp_source, kp_driving, train=train)
    return MotionEstimate(kp_source, kp_driving, *dense)

  @classmethod
  def from_official_config(cls, config: Mapping[str, Any], dtype: Any = jnp.float32
                           ) -> "MotionEstimator":
    """Builds the model from the official ``network_motion_estimator`` options block.

    Args:
      config: mapping with ``common_params``, ``kp_detector_params`` and
        ``dense_motion_params`` as in the official ``options/*.yml``.
      dtype: computation dtype.

    Returns:
      The configured :class:`MotionEstimator`.

    Raises:
      ValueError: for options this port does not implement (``single_jacobian_map``,
        ``multi_mask``, ``model_path``) or does not know. Missing options take the
        official classes' defaults, except the required ones (KeyError).
    """
    common = dict(config["common_params"])
    kp = dict(config["kp_detector_params"])
    motion = dict(config["dense_motion_params"])
    for name, params in (("kp_detector_params", kp), ("dense_motion_params", motion)):
      for option in ("single_jacobian_map", "multi_mask", "model_path"):
        if params.pop(option, None):
          raise ValueError(f"MotionEstimator: {name}.{option} is not supported"
                           + (" (convert checkpoints with mcc_jax.convert instead)."
                              if option == "model_path" else "."))
      params.pop("occlusion_num", None)  # Only read with multi_mask.
    fields = dict(
        num_keypoints=common.pop("num_kp"),
        num_channels=common.pop("num_channels"),
        kp_block_expansion=kp.pop("block_expansion"),
        kp_max_features=kp.pop("max_features"),
        kp_num_blocks=kp.pop("num_blocks"),
        temperature=kp.pop("temperature"),
        kp_scale_factor=float(kp.pop("scale_factor", 1.0)),
        estimate_jacobian=kp.pop("estimate_jacobian", False),
        kp_padding=kp.pop("pad", 0),
        motion_block_expansion=motion.pop("block_expansion"),
        motion_max_features=motion.pop("max_features"),
        motion_num_blocks=motion.pop("num_blocks"),
        motion_scale_factor=float(motion.pop("scale_factor", 1.0)),
        kp_variance=motion.pop("kp_variance", 0.01),
        estimate_occlusion=motion.pop("estimate_occlusion_map", False),
    )
    leftover = [f"common_params.{k}" for k in common] + [
        f"kp_detector_params.{k}" for k in kp] + [f"dense_motion_params.{k}" for k in motion]
    if leftover:
      raise ValueError(f"MotionEstimator: unknown options {', '.join(sorted(leftover))}.")
    return cls(**fields, dtype=dtype)
