"""The Middlebury flow colour wheel and the occlusion overlay."""

import numpy as np
import pytest

from mcc_jax.visualization import flow


def _reference_colour(u, v):
  """Baker et al.'s colour coding, computed directly from its definition for one vector."""
  counts = [15, 6, 4, 11, 13, 6]
  anchors = [(255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255),
             (255, 0, 255), (255, 0, 0)]
  wheel = []
  for i, n in enumerate(counts):
    for k in range(n):
      wheel.append([a + (b - a) * k / n for a, b in zip(anchors[i], anchors[i + 1])])
  wheel = np.array(wheel) / 255
  position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (len(wheel) - 1)
  k0 = int(np.floor(position)) % len(wheel)
  f = position - np.floor(position)
  colour = (1 - f) * wheel[k0] + f * wheel[(k0 + 1) % len(wheel)]
  radius = np.hypot(u, v)
  return np.round(255 * (1 - radius * (1 - colour)))


def test_wheel_passes_through_the_six_primaries():
  wheel = flow.color_wheel()
  assert wheel.shape == (55, 3)
  for index, colour in zip((0, 15, 21, 25, 36, 49),
                           ((255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255),
                            (0, 0, 255), (255, 0, 255))):
    np.testing.assert_array_equal(wheel[index], colour)


@pytest.mark.parametrize("u,v", [(0.0, 1.0), (-1.0, 0.0), (0.0, -1.0), (0.6, 0.8),
                                 (-0.28, 0.96), (0.3, -0.4)])
def test_colours_follow_the_definition(u, v):
  # A field whose largest vector has length 1, so no rescaling: the vector's own colour.
  field = np.zeros((2, 2, 2))
  field[0, 0] = [u, v]
  field[1, 1] = [1.0, 0.0] if np.hypot(u, v) < 1 else [u, v]
  got = flow.flow_to_color(field[None], max_magnitude=1.0)[0, 0, 0]
  np.testing.assert_allclose(got, _reference_colour(u, v), atol=1)


def test_zero_flow_is_white_and_magnitude_is_normalised_per_field():
  np.testing.assert_array_equal(flow.flow_to_color(np.zeros((2, 3, 3, 2))), 255)
  small = np.zeros((1, 1, 2, 2))
  small[0, 0, 0] = [0.01, 0.0]
  small[0, 0, 1] = [0.005, 0.0]
  colours = flow.flow_to_color(small)
  # The longest vector is fully saturated, the half-length one half way to white.
  assert colours[0, 0, 0].min() == 0
  assert 120 <= colours[0, 0, 1].min() <= 135


def test_occlusion_overlay_darkens_occluded_pixels_only():
  image = np.full((1, 2, 1, 3), 0.8)
  occlusion = np.array([[[[1.0]], [[0.0]]]])
  out = flow.occlusion_overlay(image, occlusion, strength=0.5)
  np.testing.assert_allclose(out[0, 0, 0], 0.8)
  np.testing.assert_allclose(out[0, 1, 0], 0.4)
  with pytest.raises(ValueError, match="does not match"):
    flow.occlusion_overlay(image, np.ones((1, 3, 1, 1)))
