"""Flow fields as colours (the Middlebury colour wheel) and occlusion maps as overlays.

The colour wheel of Baker et al. (2011), as in the Middlebury flow benchmark: the
direction of a displacement selects the hue along a wheel of 55 colours (red, yellow,
green, cyan, blue, magenta: 15, 6, 4, 11, 13 and 6 steps between them) and its length
the saturation, white at zero. Displacements are divided by the largest length in each
image (or by ``max_magnitude``), so the strongest motion is fully saturated.

Conventions: ``flow[..., 0]`` is the horizontal (x, rightwards) and ``flow[..., 1]`` the
vertical (y, downwards) displacement, as in the normalised sampling grids of the model.
"""

from __future__ import annotations

import numpy as np

# Colour transitions of the wheel and the number of steps of each.
_SEGMENTS = ((15, (255, 0, 0), (255, 255, 0)),     # red -> yellow
             (6, (255, 255, 0), (0, 255, 0)),      # yellow -> green
             (4, (0, 255, 0), (0, 255, 255)),      # green -> cyan
             (11, (0, 255, 255), (0, 0, 255)),     # cyan -> blue
             (13, (0, 0, 255), (255, 0, 255)),     # blue -> magenta
             (6, (255, 0, 255), (255, 0, 0)))      # magenta -> red


def color_wheel() -> np.ndarray:
  """(55, 3) float64 RGB colours in [0, 255], starting at red (direction +x)."""
  colours = []
  for steps, start, stop in _SEGMENTS:
    start, stop = np.asarray(start, np.float64), np.asarray(stop, np.float64)
    for i in range(steps):
      colours.append(start + (stop - start) * i / steps)
  return np.stack(colours)


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
  """Colours of a batch of flow fields.

  Args:
    flow: (..., H, W, 2) displacements (x, y).
    max_magnitude: the length shown fully saturated; None: each field's own largest
      length (a zero field stays white).

  Returns:
    (..., H, W, 3) uint8 RGB.
  """
  flow = np.asarray(flow, np.float64)
  if flow.shape[-1] != 2:
    raise ValueError(f"flow_to_color: expected (..., H, W, 2) displacements, got {flow.shape}")
  u, v = flow[..., 0], flow[..., 1]
  radius = np.sqrt(u**2 + v**2)
  if max_magnitude is None:
    scale = np.max(radius, axis=(-2, -1), keepdims=True)
  else:
    scale = np.full(radius.shape[:-2] + (1, 1), float(max_magnitude))
  scale = np.where(scale > 0, scale, 1.0)
  radius = radius / scale
  wheel = color_wheel()
  count = len(wheel)
  # Angle of the direction, from 0 at +x, increasing clockwise on screen (y points down),
  # mapped onto the wheel's fractional index.
  angle = np.arctan2(-v, -u) / np.pi          # in [-1, 1]; +x gives 1 or -1 -> index 0
  position = (angle + 1.0) / 2.0 * (count - 1)
  low = np.floor(position).astype(int) % count
  high = (low + 1) % count
  fraction = (position - np.floor(position))[..., None]
  colour = (1.0 - fraction) * wheel[low] / 255.0 + fraction * wheel[high] / 255.0
  saturation = np.clip(radius, 0.0, 1.0)[..., None]
  colour = 1.0 - saturation * (1.0 - colour)
  # Beyond the maximum length, darken instead of saturating further.
  colour = np.where(radius[..., None] > 1.0, colour * 0.75, colour)
  return np.round(colour * 255.0).astype(np.uint8)


def occlusion_overlay(image: np.ndarray, occlusion: np.ndarray, *, strength: float = 0.6
                      ) -> np.ndarray:
  """Darkens an image where the occlusion map says the source is not visible.

  Args:
    image: (..., H, W, 3) in [0, 1].
    occlusion: (..., H, W, 1) visibility probability in [0, 1] (1 = visible), same H, W.
    strength: how dark fully occluded pixels become (0: not at all, 1: black).

  Returns:
    (..., H, W, 3) float in [0, 1].
  """
  image = np.asarray(image, np.float64)
  occlusion = np.clip(np.asarray(occlusion, np.float64), 0.0, 1.0)
  if occlusion.shape[:-1] != image.shape[:-1]:
    raise ValueError(f"occlusion_overlay: occlusion {occlusion.shape} does not match the "
                     f"image {image.shape}")
  return image * (1.0 - strength * (1.0 - occlusion))
