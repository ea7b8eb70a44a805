"""PSNR and L1 against numpy written here, a known value, and the trainer's metric."""

import jax.numpy as jnp
import numpy as np

from mcc_jax.evaluation import pixel_metrics
from mcc_jax.ops import image_metrics
from mcc_jax.train import in_training_eval


def _frames(seed, shape=(3, 16, 20, 3)):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, shape, dtype=np.uint8)


def test_psnr_and_l1_match_numpy():
  a, b = _frames(0), _frames(1)
  psnr = pixel_metrics.psnr(a, b)
  l1 = pixel_metrics.l1_distance(a, b)
  for i in range(len(a)):
    diff = a[i].astype(np.float64) - b[i].astype(np.float64)
    mse = np.mean(diff * diff)
    np.testing.assert_allclose(psnr[i], 20 * np.log10(255 / np.sqrt(mse)), rtol=1e-12)
    np.testing.assert_allclose(l1[i], np.abs(diff).mean(), rtol=1e-12)


def test_one_level_everywhere_is_48_13_db():
  a = _frames(2).clip(0, 254)
  b = a + 1  # One level apart in every pixel and channel: MSE = 1, L1 = 1.
  np.testing.assert_allclose(pixel_metrics.psnr(a, b), 20 * np.log10(255.0), rtol=1e-12)
  np.testing.assert_allclose(pixel_metrics.psnr(a, b), 48.1308, atol=1e-4)
  np.testing.assert_allclose(pixel_metrics.l1_distance(a, b), 1.0)


def test_identical_frames_hit_the_mse_floor_like_the_trainer():
  a = _frames(3)
  expected = 20 * np.log10(255 / np.sqrt(image_metrics.MSE_FLOOR))
  np.testing.assert_allclose(pixel_metrics.psnr(a, a), expected)
  np.testing.assert_array_equal(pixel_metrics.l1_distance(a, a), 0.0)


def test_agrees_with_the_trainers_metric():
  a, b = _frames(4), _frames(5)
  to_range = lambda x: jnp.asarray(x, jnp.float32) / 127.5 - 1.0
  trainer = in_training_eval.frame_metrics(to_range(a), to_range(b))
  np.testing.assert_allclose(pixel_metrics.psnr(a, b), trainer["psnr"], rtol=1e-5)
  np.testing.assert_allclose(pixel_metrics.l1_distance(a, b) / 255, trainer["l1"], rtol=1e-5)
