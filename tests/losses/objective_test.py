"""The total objective: every term present, total = sum of the weighted terms, switches."""

import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.configs import tiny
from mcc_jax import losses
from mcc_jax.models.generator import GeneratorOutput
from mcc_jax.models.motion_estimator import MotionEstimate
from mcc_jax.ops.keypoints import Keypoints
from mcc_jax.ops.quantize import QuantizerOutput
from tests.losses.codebook_keypoints_test import _identity_tps
from tests.losses.perceptual_test import _toy_features


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  image = lambda: jnp.asarray(rng.uniform(-1, 1, (2, 64, 64, 3)), jnp.float32)
  quantizer = lambda: QuantizerOutput(jnp.zeros((1, 2)), jnp.zeros((1,), jnp.int32),
                                      jnp.asarray(rng.uniform()), jnp.zeros(()), jnp.zeros(()))
  flows = lambda: tuple(jnp.asarray(rng.normal(size=(2, 16, 16, 2)), jnp.float32)
                        for _ in range(4))
  output = GeneratorOutput(image(), image(), (), (), flows(), flows(),
                           tuple(quantizer() for _ in range(4)),
                           tuple(quantizer() for _ in range(4)))
  kp = lambda: Keypoints(jnp.asarray(rng.uniform(-1, 1, (2, 10, 2)), jnp.float32),
                         jnp.asarray(np.eye(2) + 0.1 * rng.normal(size=(2, 10, 2, 2)),
                                     jnp.float32))
  motion = MotionEstimate(kp(), kp(), *([None] * 6))
  return output, motion, kp(), image()


def test_total_is_the_sum_of_every_weighted_term():
  config = tiny.get_config().losses
  output, motion, kp_t, driving = _inputs()
  fake = jnp.full((2, 4, 4, 1), 0.3)
  total, terms = losses.total_generator_loss(output, motion, kp_t, _identity_tps(2), driving,
                                             features_fn=_toy_features, config=config,
                                             fake_logits=fake, adaptive_weight=0.5)
  assert set(terms) == set(losses.TERMS)
  summed = sum(float(v) for k, v in terms.items() if k not in ("total", "adaptive_weight"))
  assert float(total) == pytest.approx(summed, rel=1e-6)
  assert float(terms["gan"]) == pytest.approx(0.5 * -0.3, rel=1e-6)
  assert float(terms["adaptive_weight"]) == 0.5
  assert float(terms["l1"]) == pytest.approx(float(jnp.mean(jnp.abs(output.image - driving))))
  assert float(terms["low_resolution_l1"]) == pytest.approx(
      0.5 * float(jnp.mean(jnp.abs(output.low_resolution_image - driving))), rel=1e-6)
  for name in losses.TERMS:
    if name != "keypoint_distance":     # may be exactly 0 on random keypoints
      assert float(terms[name]) != 0.0, name


def test_zero_weights_remove_their_terms_and_no_gan_before_the_start():
  config = tiny.get_config().losses
  config.l1_weight = 0.0
  config.equivariance_value_weight = 0.0
  config.low_resolution_weight = 0.0
  output, motion, kp_t, driving = _inputs()
  total, terms = losses.total_generator_loss(output, motion, kp_t, _identity_tps(2), driving,
                                             features_fn=_toy_features, config=config)
  for name in ("l1", "equivariance_value", "low_resolution_l1", "low_resolution_perceptual",
               "gan", "adaptive_weight"):
    assert float(terms[name]) == 0.0, name
  assert float(terms["perceptual"]) > 0 and float(terms["equivariance_jacobian"]) > 0
  with pytest.raises(ValueError, match="adaptive_weight"):
    losses.total_generator_loss(output, motion, kp_t, _identity_tps(2), driving,
                                features_fn=_toy_features, config=config,
                                fake_logits=jnp.zeros((2, 4, 4, 1)))
