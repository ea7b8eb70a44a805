"""FID: the Frechet distance between Inception pool3 features of two frame sets.

The network is pytorch-fid's FID InceptionV3 (:mod:`mcc_jax.evaluation.inception`),
with the weights the user supplies: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
(published in pytorch-fid's GitHub releases; pytorch-fid itself downloads it on first
use into ``~/.cache/torch/hub/checkpoints/``). Reading a ``.pth`` file needs torch.
"""

from __future__ import annotations

import functools
import os
import pathlib

import jax
import numpy as np

from mcc_jax.convert.state_dict import ConversionError
from mcc_jax.convert.torch_checkpoint import load_state_dict
from mcc_jax.evaluation.batching import map_batches
from mcc_jax.evaluation.inception import FEATURE_DIM, FIDInceptionV3, convert_state_dict

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_FLAG = "--fid-weights"


class FIDWeightsError(ValueError):
  """The FID Inception weights are missing or unusable; the message says what to do."""


def load_fid_weights(path: str | os.PathLike) -> dict:
  """Reads pytorch-fid's Inception weights and converts them to Flax variables.

  Args:
    path: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``.

  Returns:
    :class:`~mcc_jax.evaluation.inception.FIDInceptionV3` variables.

  Raises:
    FIDWeightsError: the file is missing, unreadable, torch is not installed, or the
      tensors are not those of the FID Inception.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FIDWeightsError(f"{WEIGHTS_FLAG} {path}: no such file (expected pytorch-fid's "
                          f"{WEIGHTS_FILE})")
  try:
    import torch  # pylint: disable=import-outside-toplevel,unused-import  # noqa: F401
  except ImportError as error:
    raise FIDWeightsError(f"{WEIGHTS_FLAG} {path}: reading a PyTorch .pth file needs torch, "
                          "which is not installed: pip install torch (the CPU build is "
                          "enough), or pip install 'mcc-jax[convert]'") from error
  try:
    return convert_state_dict(load_state_dict(path))
  except (ConversionError, ValueError) as error:
    raise FIDWeightsError(f"{WEIGHTS_FLAG} {path}: not pytorch-fid's FID Inception weights "
                          f"({WEIGHTS_FILE}): {error}") from error


@functools.partial(jax.jit, static_argnums=0)
def _features(network, variables, frames: jax.Array) -> jax.Array:
  """(B, 2048) features of ``uint8`` (B, H, W, 3); compiled once per network and shape."""
  return network.apply(variables, frames.astype(np.float32) / 255.0)


class InceptionFeatures:
  """Pool3 features of ``uint8`` frames, in fixed-size jit-compiled batches.

  Attributes:
    batch_size: frames per compiled call (pytorch-fid's default is 50; the official
      evaluation uses 32; the features do not depend on it).
  """

  def __init__(self, variables: dict, batch_size: int = 32):
    """Stores the network's weights on the device.

    Args:
      variables: from :func:`load_fid_weights`.
      batch_size: frames per compiled call.
    """
    self.batch_size = batch_size
    self._network = FIDInceptionV3()
    self._variables = jax.device_put(variables)

  def __call__(self, frames: np.ndarray) -> np.ndarray:
    """Features of frames.

    Args:
      frames: ``uint8`` (N, H, W, 3) RGB, any size (resized to 299x299).

    Returns:
      float64 (N, 2048).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
      raise ValueError(f"InceptionFeatures: expected (N, H, W, 3) frames, got {frames.shape}")
    if len(frames) == 0:
      return np.zeros((0, FEATURE_DIM))
    features = functools.partial(_features, self._network, self._variables)
    return map_batches(features, (frames,), self.batch_size).astype(np.float64)

