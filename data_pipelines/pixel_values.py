"""The number each 8-bit pixel level becomes in the model's value range: `value_table`.

The pipelines deliver uint8 frames, a quarter of the bytes of float32, and the trainer
maps them to ``datasets.value_range`` on the device. A lookup in this table gives
exactly the float32 numbers the pipelines produced when they converted on the host
(TensorFlow's ``convert_image_dtype`` to [0, 1], then ``x * (high - low) + low``):
the table is computed with the same float32 operations in the same order, each
rounded to float32, whereas a compiler left to evaluate the formula on the device may
fuse the multiply and the add and round once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def value_table(value_range: Sequence[float]) -> np.ndarray:
  """The float32 value of each uint8 level in a value range.

  Args:
    value_range: ``(low, high)``, e.g. ``datasets.value_range`` (``(-1.0, 1.0)``:
      the official mean 0.5 / std 0.5 normalisation).

  Returns:
    float32 ``(256,)``: entry ``x`` is ``float32(x) * float32(1 / 255)``, times
    ``float32(high - low)``, plus ``float32(low)``, each product and sum rounded to
    float32. Index it with a uint8 frame (``table[frames]``, ``jnp.take``) to get the
    model's input.
  """
  low, high = float(value_range[0]), float(value_range[1])
  unit = np.arange(256, dtype=np.float32) * np.float32(1.0 / 255)
  return unit * np.float32(high - low) + np.float32(low)
