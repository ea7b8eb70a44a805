"""Evaluating a trained model on test videos: the paper's metrics and protocols.

* :mod:`~mcc_jax.evaluation.pixel_metrics`: PSNR and L1 of ``uint8`` frames.
* :mod:`~mcc_jax.evaluation.lpips_metric`: LPIPS (VGG, v0.1), jit-compiled.
* :mod:`~mcc_jax.evaluation.landmark_metrics`: AKD, AED and identity similarity from
  dlib's landmarks and embeddings (stand-ins for the paper's FAN and OpenFace).
* :mod:`~mcc_jax.evaluation.frechet`: the Frechet distance of two Gaussians.
* :mod:`~mcc_jax.evaluation.inception` and :mod:`~mcc_jax.evaluation.fid`: pytorch-fid's
  FID InceptionV3 in Flax, its weight converter, and FID.
* :mod:`~mcc_jax.evaluation.eval_videos`: the test videos of a ``datasets`` block.
* :mod:`~mcc_jax.evaluation.metric_catalog`: metric names, modes and definitions.
* :mod:`~mcc_jax.evaluation.protocol`: the reconstruction and cross-identity loops.
* :mod:`~mcc_jax.evaluation.report`: ``metrics.json``, ``metrics.md``, ``per_video.json``.

Names are imported on first use, so that the face-measuring worker processes (which
import :mod:`~mcc_jax.evaluation.landmark_metrics`) do not load JAX or TensorFlow.
"""

from __future__ import annotations

import importlib

# Public name -> module defining it.
_LAZY_ATTRIBUTES = {
    "psnr": "mcc_jax.evaluation.pixel_metrics",
    "l1_distance": "mcc_jax.evaluation.pixel_metrics",
    "LPIPS": "mcc_jax.evaluation.lpips_metric",
    "Face": "mcc_jax.evaluation.landmark_metrics",
    "FaceMeter": "mcc_jax.evaluation.landmark_metrics",
    "measure_face": "mcc_jax.evaluation.landmark_metrics",
    "keypoint_distance": "mcc_jax.evaluation.landmark_metrics",
    "keypoint_distances": "mcc_jax.evaluation.landmark_metrics",
    "embedding_distances": "mcc_jax.evaluation.landmark_metrics",
    "embedding_similarities": "mcc_jax.evaluation.landmark_metrics",
    "frechet_distance": "mcc_jax.evaluation.frechet",
    "gaussian_statistics": "mcc_jax.evaluation.frechet",
    "FIDInceptionV3": "mcc_jax.evaluation.inception",
    "convert_state_dict": "mcc_jax.evaluation.inception",
    "FIDWeightsError": "mcc_jax.evaluation.fid",
    "InceptionFeatures": "mcc_jax.evaluation.fid",
    "load_fid_weights": "mcc_jax.evaluation.fid",
    "EmptyTestSplitError": "mcc_jax.evaluation.eval_videos",
    "read_test_videos": "mcc_jax.evaluation.eval_videos",
    "UnknownMetricError": "mcc_jax.evaluation.metric_catalog",
    "EvaluationOptions": "mcc_jax.evaluation.protocol",
    "EvaluationResult": "mcc_jax.evaluation.protocol",
    "evaluate": "mcc_jax.evaluation.protocol",
}

__all__ = sorted(_LAZY_ATTRIBUTES)


def __getattr__(name: str):
  if name in _LAZY_ATTRIBUTES:
    return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
  raise AttributeError(f"module 'mcc_jax.evaluation' has no attribute {name!r}")


def __dir__() -> list[str]:
  return __all__
