"""The pyramid perceptual loss with a toy feature network, against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax import losses
from tests.losses.reconstruction_test import _numpy_pyramid_level

SCALES = (1, 0.5, 0.25)
WEIGHTS = (1.0, 2.0, 0.5, 3.0, 0.25)


def _toy_features(images):
  """Five 'layers' computable in numpy too: powers, sums and poolings of the image."""
  x = jnp.asarray(images)
  pooled = x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2, 3).mean(axis=(2, 4))
  return [x, x**2, pooled, jnp.tanh(pooled), jnp.sum(x, axis=-1, keepdims=True)]


def _numpy_features(x):
  pooled = x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2, 3).mean(axis=(2, 4))
  return [x, x**2, pooled, np.tanh(pooled), np.sum(x, axis=-1, keepdims=True)]


def _numpy_loss(prediction, target):
  total = 0.0
  for scale in SCALES:
    p = prediction if scale == 1 else _numpy_pyramid_level(prediction, scale)
    t = target if scale == 1 else _numpy_pyramid_level(target, scale)
    for weight, fp, ft in zip(WEIGHTS, _numpy_features(p), _numpy_features(t)):
      total += weight * np.mean(np.abs(fp - ft))
  return total


def test_value_sums_weighted_layer_means_over_scales():
  rng = np.random.default_rng(0)
  prediction = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
  target = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
  value = losses.pyramid_perceptual_loss(_toy_features, prediction, target, scales=SCALES,
                                         layer_weights=WEIGHTS)
  assert float(value) == pytest.approx(_numpy_loss(prediction, target), rel=1e-5)


def test_target_features_are_stopped():
  rng = np.random.default_rng(1)
  prediction = jnp.asarray(rng.uniform(-1, 1, (1, 32, 32, 3)), jnp.float32)
  target = jnp.asarray(rng.uniform(-1, 1, (1, 32, 32, 3)), jnp.float32)
  grad_target = jax.grad(lambda t: losses.pyramid_perceptual_loss(
      _toy_features, prediction, t, scales=(1, 0.5), layer_weights=WEIGHTS))(target)
  grad_prediction = jax.grad(lambda p: losses.pyramid_perceptual_loss(
      _toy_features, p, target, scales=(1, 0.5), layer_weights=WEIGHTS))(prediction)
  assert float(jnp.abs(grad_target).max()) == 0.0
  assert float(jnp.abs(grad_prediction).max()) > 0.0


def test_imagenet_normalisation_is_applied_to_minus_one_one_images_as_is():
  images = np.full((1, 2, 2, 3), -1.0, np.float32)
  expected = (-1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(losses.imagenet_normalize(images)[0, 0, 0], expected, rtol=1e-6)


def test_a_pyramid_level_too_small_for_vgg_is_named():
  images = np.zeros((1, 64, 64, 3), np.float32)
  with pytest.raises(ValueError, match="perceptual_scales: the 0.125 pyramid level"):
    losses.pyramid_perceptual_loss(_toy_features, images, images, scales=(1, 0.125),
                                   layer_weights=WEIGHTS)
