"""PSNR and L1 of generated frames against real ones, as the official evaluation scores them.

The official code saves every frame as an 8-bit PNG (clamped to [-1, 1], mapped to
[0, 255] and rounded) and scores those integers per frame
(``basicsr/metrics/psnr_ssim.py``):

* PSNR = 20 log10(255 / sqrt(MSE)), the MSE over all pixels and all three channels;
* L1 = mean |a - b| over all pixels and channels, on [0, 255]. Divided by 255 it is
  the [0, 1]-range value FOMM and the paper report (0.0355 on VoxCeleb).

The scores here take ``uint8`` frames (what :class:`mcc_jax.inference.Animator`
returns) and compute in float64 numpy, so they are exact. The formulas, and the floor on
the MSE that keeps a perfect frame's PSNR finite, are :mod:`mcc_jax.ops.image_metrics`',
which the trainer's in-training evaluation uses too.
"""

from __future__ import annotations

import numpy as np

from mcc_jax.ops.image_metrics import l1_of_levels
from mcc_jax.ops.image_metrics import psnr_of_levels


def _check_pair(generated: np.ndarray, reference: np.ndarray, what: str) -> None:
  if generated.shape != reference.shape or generated.ndim != 4 or generated.shape[-1] != 3:
    raise ValueError(f"{what}: expected two (N, H, W, 3) arrays of one shape, got "
                     f"{generated.shape} and {reference.shape}")


def psnr(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """Per-frame PSNR in dB of ``uint8`` frames.

  Args:
    generated: ``uint8`` (N, H, W, 3).
    reference: ``uint8`` (N, H, W, 3).

  Returns:
    float64 (N,): ``20 log10(255 / sqrt(max(MSE, MSE_FLOOR)))``.
  """
  generated, reference = np.asarray(generated), np.asarray(reference)
  _check_pair(generated, reference, "psnr")
  return psnr_of_levels(generated.astype(np.float64), reference.astype(np.float64))


def l1_distance(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """Per-frame mean absolute difference of ``uint8`` frames, on [0, 255].

  Args:
    generated: ``uint8`` (N, H, W, 3).
    reference: ``uint8`` (N, H, W, 3).

  Returns:
    float64 (N,) in [0, 255]; divide by 255 for the paper's [0, 1]-range L1.
  """
  generated, reference = np.asarray(generated), np.asarray(reference)
  _check_pair(generated, reference, "l1_distance")
  return l1_of_levels(generated.astype(np.float64), reference.astype(np.float64))
