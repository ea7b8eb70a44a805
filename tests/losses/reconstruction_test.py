"""L1 and the image pyramid against numpy."""

import numpy as np
import pytest

from mcc_jax import losses


def _numpy_pyramid_level(images, scale):
  """FOMM's AntiAliasInterpolation2d in numpy: zero-padded gaussian blur, then subsampling."""
  sigma = (1 / scale - 1) / 2
  size = 2 * round(sigma * 4) + 1
  offsets = np.arange(size) - (size - 1) / 2
  profile = np.exp(-offsets**2 / (2 * sigma**2))
  kernel = np.outer(profile, profile)
  kernel /= kernel.sum()
  pad = size // 2
  b, h, w, c = images.shape
  padded = np.pad(images.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  out = np.zeros_like(images, dtype=np.float64)
  for dy in range(size):
    for dx in range(size):
      out += kernel[dy, dx] * padded[:, dy:dy + h, dx:dx + w, :]
  step = int(1 / scale)
  return out[:, ::step, ::step, :]


def test_l1_is_the_mean_absolute_difference():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 5, 5, 3)), rng.normal(size=(2, 5, 5, 3))
  assert float(losses.l1_loss(a, b)) == pytest.approx(np.mean(np.abs(a - b)), rel=1e-6)


def test_pyramid_matches_the_official_antialiased_downsampling():
  rng = np.random.default_rng(1)
  images = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
  levels = losses.image_pyramid(images, (1, 0.5, 0.25, 0.125))
  assert levels[0] is images
  for level, scale in zip(levels[1:], (0.5, 0.25, 0.125)):
    expected = _numpy_pyramid_level(images, scale)
    assert level.shape == expected.shape
    np.testing.assert_allclose(level, expected, atol=2e-6)
