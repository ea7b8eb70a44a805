"""Square crops and resizing of frames to the model's input size."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

# A crop box in pixels: (left, top, right, bottom), right and bottom exclusive.
Box = Sequence[int]


def center_square_box(height: int, width: int) -> tuple[int, int, int, int]:
  """The largest centred square of an ``height x width`` frame.

  Returns:
    ``(left, top, right, bottom)``; right and bottom are exclusive.
  """
  side = min(height, width)
  left = (width - side) // 2
  top = (height - side) // 2
  return left, top, left + side, top + side


def crop_and_resize(frame: np.ndarray, box: Box | None, size: int) -> np.ndarray:
  """Crops a frame to ``box`` (default: the centred square) and resizes it to a square.

  Parts of the box outside the frame are filled by repeating the border pixels, so a
  face near the edge keeps its place in the crop.

  Args:
    frame: ``uint8`` ``(H, W, 3)``.
    box: ``(left, top, right, bottom)`` in pixels, or None for the centred square.
    size: side of the result.

  Returns:
    ``uint8`` ``(size, size, 3)``. Shrinking is anti-aliased (Pillow's bilinear
    filter widens its support), as the training pipelines resize.
  """
  height, width = frame.shape[:2]
  left, top, right, bottom = (center_square_box(height, width) if box is None
                              else (int(v) for v in box))
  if right <= left or bottom <= top:
    raise ValueError(f"crop_and_resize: empty box {tuple(box)}")
  pad_left, pad_top = max(0, -left), max(0, -top)
  pad_right, pad_bottom = max(0, right - width), max(0, bottom - height)
  if pad_left or pad_top or pad_right or pad_bottom:
    frame = np.pad(frame, ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)), mode="edge")
    left, right = left + pad_left, right + pad_left
    top, bottom = top + pad_top, bottom + pad_top
  crop = frame[top:bottom, left:right]
  if crop.shape[:2] == (size, size):
    return np.ascontiguousarray(crop)
  return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size),
                                                                        Image.BILINEAR))
