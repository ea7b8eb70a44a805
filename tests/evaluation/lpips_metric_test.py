"""LPIPS: zero for identical frames, growing with noise, batching invisible."""

import numpy as np
import pytest

from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax.evaluation import lpips_metric


@pytest.fixture(scope="module", name="frames")
def _frames():
  return sample_clip.sample_videos("test", 64)[0].read_all()[:3]


@pytest.fixture(scope="module", name="lpips")
def _lpips():
  return lpips_metric.LPIPS(batch_size=2)


def test_identical_frames_score_zero(lpips, frames):
  np.testing.assert_array_equal(lpips(frames, frames), 0.0)


def test_grows_with_noise(lpips, frames):
  rng = np.random.default_rng(0)
  noise = rng.normal(size=frames.shape)
  levels = (4.0, 16.0, 48.0)
  noisy = [np.clip(frames + sigma * noise, 0, 255).round().astype(np.uint8) for sigma in levels]
  # The first frame at the three noise levels, then an identical pair.
  scores = lpips(np.stack([n[0] for n in noisy] + [frames[1]]),
                 np.stack([frames[0]] * 3 + [frames[1]]))
  assert 0 < scores[0] < scores[1] < scores[2]
  assert scores[3] == 0.0
  # Three frames (one full and one padded batch of two) give the same values.
  many = lpips(noisy[1], frames)
  assert many.shape == (3,)
  np.testing.assert_allclose(many[0], scores[1], rtol=1e-5)
