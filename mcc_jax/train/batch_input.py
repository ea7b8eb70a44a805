"""Frames as they cross to the device, and as the model takes them.

The input pipelines hand over ``uint8`` frames (a quarter of float32's bytes through
host memory, the host-to-device copy and the device's input buffers); the step maps
them to ``config.datasets.value_range`` on the device. The map is a lookup in the
256-entry table of exactly the float32 values the pipelines used to compute
(``data_pipelines.value_table``), so the model sees the same numbers, bit for bit, on
every backend. With colour jitter on, the pipelines hand over float32 frames in [0, 1]
(jitter works on floats), which are mapped by the same affine formula.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax import data_pipelines

FRAME_KEYS = ("source", "driving")


def to_value_range(frames: jax.Array, value_range: Sequence[float]) -> jax.Array:
  """Frames from the pipelines to the model's range.

  Args:
    frames: ``uint8`` (..., 3) levels, or float32 (..., 3) in [0, 1].
    value_range: ``(low, high)``, e.g. ``config.datasets.value_range``.

  Returns:
    float32 frames in ``[low, high]``.
  """
  table = np.asarray(data_pipelines.value_table(tuple(value_range)), np.float32)
  if frames.dtype == jnp.uint8:
    return jnp.asarray(table)[frames.astype(jnp.int32)]
  low, high = np.float32(value_range[0]), np.float32(value_range[1])
  return frames.astype(jnp.float32) * (high - low) + low


def model_batch(batch: Mapping[str, jax.Array], value_range: Sequence[float]
                ) -> dict[str, jax.Array]:
  """A batch with its frames (``source``, ``driving``) in the model's range; other fields kept."""
  return {key: to_value_range(value, value_range) if key in FRAME_KEYS else value
          for key, value in batch.items()}
