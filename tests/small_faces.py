"""Test inputs with a face that is small in a large frame.

The head region of a sample-clip frame, scaled so that the face is about 53 px, pasted
into a 1080x720 (portrait) canvas: below the ~80 px that dlib's HOG detector needs on
the 640-px copy that detection starts from, so only the later stages find it.
"""

import numpy as np
from PIL import Image

from mcc_jax.data_pipelines.sources import sample as sample_clip

LARGE_SHAPE = (1080, 720)
HEAD_SIDE = 134  # the 112-px head region scaled by 1.2
PASTE_AT = (400, 300)  # (top, left) of the pasted head


def paste_small_head(frame: np.ndarray, noise: bool = True) -> np.ndarray:
  """A LARGE_SHAPE canvas (noise, or uniform grey) with ``frame``'s head at PASTE_AT."""
  top, left, side = sample_clip.FACE_BOX
  head = np.asarray(Image.fromarray(frame[top:top + side, left:left + side]).resize(
      (HEAD_SIDE, HEAD_SIDE), Image.BILINEAR))
  if noise:
    canvas = np.random.default_rng(0).integers(0, 256, (*LARGE_SHAPE, 3), dtype=np.uint8)
  else:
    canvas = np.full((*LARGE_SHAPE, 3), 128, np.uint8)
  y0, x0 = PASTE_AT
  canvas[y0:y0 + HEAD_SIDE, x0:x0 + HEAD_SIDE] = head
  return canvas


def small_face_frames(clip: np.ndarray, count: int) -> np.ndarray:
  """``count`` grey frames, each with the head of every 4th clip frame (a moving face)."""
  return np.stack([paste_small_head(clip[number * 4], noise=False) for number in range(count)])
