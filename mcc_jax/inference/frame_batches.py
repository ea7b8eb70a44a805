"""Driving frames in batches, from an array or a stream: shared by every animator.

NumPy only, so that runtimes without JAX (the ONNX animator) use the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def check_frames(frames: np.ndarray, image_size: int, what: str) -> np.ndarray:
  """``frames`` as an array, or a ValueError unless it is (T, S, S, 3) at the model's size."""
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[1:] != (image_size, image_size, 3):
    raise ValueError(f"{what}: expected (T, {image_size}, {image_size}, 3) frames at the "
                     f"model's size, got {frames.shape}")
  return frames


def frame_batches(frames: np.ndarray | Iterable[np.ndarray], batch_size: int,
                  image_size: int, what: str) -> Iterator[np.ndarray]:
  """Consecutive batches of at most ``batch_size`` frames of an array or a stream.

  A stream is taken one frame at a time: a batch is yielded as soon as it is full, so
  at most one batch of frames is held.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be at least 1, got {batch_size}")
  if isinstance(frames, np.ndarray):
    frames = check_frames(frames, image_size, what)
    for start in range(0, len(frames), batch_size):
      yield frames[start:start + batch_size]
    return
  pending = []
  for frame in frames:
    pending.append(frame)
    if len(pending) == batch_size:
      yield check_frames(np.stack(pending), image_size, what)
      pending = []
  if pending:
    yield check_frames(np.stack(pending), image_size, what)
