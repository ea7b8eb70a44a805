"""Fixed-size batches for the jit-compiled metric networks.

A jitted network compiles once per input shape. The metric networks see frames in
batches of one size: a short last batch is padded by repeating its last frame and the
padded rows are dropped from the result.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def pad_batch(array: np.ndarray, length: int) -> np.ndarray:
  """Pads the leading axis to ``length`` by repeating the last element.

  Args:
    array: (n, ...) with 1 <= n <= length.
    length: the batch size.

  Returns:
    (length, ...).
  """
  array = np.asarray(array)
  if len(array) == length:
    return array
  return np.concatenate([array, np.repeat(array[-1:], length - len(array), axis=0)])


def map_batches(fn: Callable[..., np.ndarray], arrays: tuple[np.ndarray, ...],
                batch_size: int) -> np.ndarray:
  """Applies ``fn`` to fixed-size batches of ``arrays`` and concatenates the results.

  Args:
    fn: ``fn(*batches) -> (batch_size, ...)``; called with padded batches.
    arrays: arrays with one leading length N.
    batch_size: rows per call.

  Returns:
    (N, ...) the rows of ``fn``'s results that belong to real inputs; an empty array of
    shape (0,) when N is 0.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be at least 1, got {batch_size}")
  total = len(arrays[0])
  parts = []
  for start in range(0, total, batch_size):
    count = min(batch_size, total - start)
    batches = [pad_batch(a[start:start + count], batch_size) for a in arrays]
    parts.append(np.asarray(fn(*batches))[:count])
  return np.concatenate(parts) if parts else np.zeros((0,))
