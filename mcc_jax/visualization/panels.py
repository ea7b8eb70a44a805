"""Frames laid side by side: source | driving | result, optionally flow and occlusion."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mcc_jax.visualization.flow import flow_to_color
from mcc_jax.visualization.flow import occlusion_overlay


def resize_to(images: np.ndarray, size: int) -> np.ndarray:
  """``uint8`` (N, h, w, 3) -> (N, size, size, 3), bilinear."""
  images = np.asarray(images)
  if images.shape[1:3] == (size, size):
    return images
  return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
                   for image in images])


def flow_panels(generated: np.ndarray, flow: np.ndarray, occlusion: np.ndarray,
                max_magnitude: float | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Pictures of the motion behind generated frames.

  Args:
    generated: ``uint8`` (N, S, S, 3) generated frames.
    flow: (N, F, F, 2) displacements in normalised units (x, y).
    occlusion: (N, F, F, 1) visibility in [0, 1].
    max_magnitude: the displacement shown fully saturated (None: each frame's largest);
      a fixed value keeps colours comparable from frame to frame.

  Returns:
    ``uint8`` (N, S, S, 3) flow colours (Middlebury wheel) and (N, S, S, 3) generated
    frames darkened where the source is occluded.
  """
  size = generated.shape[1]
  colours = resize_to(flow_to_color(flow, max_magnitude=max_magnitude), size)
  visibility = np.stack([np.asarray(Image.fromarray(o[..., 0].astype(np.float32), mode="F")
                                    .resize((size, size), Image.BILINEAR))
                         for o in np.asarray(occlusion)])[..., None]
  overlay = occlusion_overlay(generated / 255.0, visibility)
  return colours, np.round(overlay * 255.0).astype(np.uint8)


def side_by_side(*columns: np.ndarray) -> np.ndarray:
  """Concatenates (N, S, S, 3) frames (or a single (S, S, 3) image, repeated) along width."""
  count = max(len(c) for c in columns if np.ndim(c) == 4)
  expanded = [np.broadcast_to(c, (count,) + c.shape) if np.ndim(c) == 3 else c for c in columns]
  return np.concatenate(expanded, axis=2)
