"""Codebook sums and keypoint losses against numpy, including what each does to gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax import losses
from mcc_jax.models.generator import GeneratorOutput
from mcc_jax.ops import tps as tps_ops
from mcc_jax.ops.keypoints import Keypoints
from mcc_jax.ops.quantize import QuantizerOutput


def _quantizer(loss):
  zero = jnp.zeros(())
  return QuantizerOutput(jnp.zeros((1, 2)), jnp.zeros((1,), jnp.int32), jnp.asarray(loss),
                         zero, zero)


def test_codebook_losses_sum_over_scales_with_their_weights():
  rng = np.random.default_rng(0)
  recon = [rng.normal(size=(2, 8, 8, 2)) for _ in range(4)]
  target = [rng.normal(size=(2, 8, 8, 2)) for _ in range(4)]
  output = GeneratorOutput(
      image=None, low_resolution_image=None, flows=(), occlusions=(),
      motion_reconstructions=tuple(recon), motion_targets=tuple(target),
      motion_quantizers=tuple(_quantizer(v) for v in (0.1, 0.2, 0.3, 0.4)),
      appearance_quantizers=tuple(_quantizer(v) for v in (1.0, 2.0, 3.0, 4.0)))
  code, reconstruction = losses.motion_codebook_losses(output, code_weight=2.0,
                                                       reconstruction_weight=32.0)
  assert float(code) == pytest.approx(2.0 * 1.0, rel=1e-6)
  expected = sum(32.0 * np.mean(np.abs(r - t)) for r, t in zip(recon, target))
  assert float(reconstruction) == pytest.approx(expected, rel=1e-5)
  assert float(losses.appearance_codebook_loss(output, code_weight=0.5)) == pytest.approx(5.0)


def test_motion_reconstruction_sends_no_gradient_into_its_target():
  rng = np.random.default_rng(1)
  recon = jnp.asarray(rng.normal(size=(1, 4, 4, 2)), jnp.float32)

  def loss(flow):
    output = GeneratorOutput(None, None, (), (), (recon,), (flow * 2.0,), (_quantizer(0.0),))
    return losses.motion_codebook_losses(output, code_weight=1.0, reconstruction_weight=32.0)[1]

  assert float(jnp.abs(jax.grad(loss)(jnp.ones((1, 4, 4, 2)))).max()) == 0.0


def _identity_tps(batch, points=5):
  return tps_ops.RandomTPS(theta=jnp.tile(jnp.eye(2, 3)[None], (batch, 1, 1)),
                           control_points=tps_ops.coordinate_grid(points, points).reshape(-1, 2),
                           control_params=jnp.zeros((batch, points * points)))


def test_equivariance_is_zero_under_the_identity_transform():
  rng = np.random.default_rng(2)
  kp = Keypoints(jnp.asarray(rng.uniform(-1, 1, (2, 5, 2)), jnp.float32),
                 jnp.asarray(np.eye(2) + 0.1 * rng.normal(size=(2, 5, 2, 2)), jnp.float32))
  value, jacobian = losses.equivariance_losses(kp, kp, _identity_tps(2))
  assert float(value) == pytest.approx(0.0, abs=1e-6)
  assert float(jacobian) == pytest.approx(0.0, abs=1e-5)


def test_equivariance_under_an_affine_transform_against_numpy():
  rng = np.random.default_rng(3)
  theta = np.eye(2, 3)[None] + 0.1 * rng.normal(size=(1, 2, 3))
  tps = _identity_tps(1)._replace(theta=jnp.asarray(theta, jnp.float32)) if hasattr(
      _identity_tps(1), "_replace") else tps_ops.RandomTPS(
          jnp.asarray(theta, jnp.float32), _identity_tps(1).control_points, jnp.zeros((1, 25)))
  kp_d = rng.uniform(-1, 1, (1, 4, 2))
  kp_t = rng.uniform(-1, 1, (1, 4, 2))
  jac_d = np.eye(2) + 0.2 * rng.normal(size=(1, 4, 2, 2))
  jac_t = np.eye(2) + 0.2 * rng.normal(size=(1, 4, 2, 2))
  value, jacobian = losses.equivariance_losses(
      Keypoints(jnp.asarray(kp_d, jnp.float32), jnp.asarray(jac_d, jnp.float32)),
      Keypoints(jnp.asarray(kp_t, jnp.float32), jnp.asarray(jac_t, jnp.float32)), tps)
  a, t = theta[0, :, :2], theta[0, :, 2]
  warped = kp_t[0] @ a.T + t
  assert float(value) == pytest.approx(np.mean(np.abs(kp_d[0] - warped)), rel=1e-5)
  composed = np.linalg.inv(jac_d[0]) @ (a[None] @ jac_t[0])
  assert float(jacobian) == pytest.approx(np.mean(np.abs(np.eye(2) - composed)), rel=1e-4)


def test_keypoint_distance_counts_close_pairs_and_has_no_gradient():
  # Source: keypoints 0 and 1 are 0.1 apart (closer than 0.2), keypoint 2 is far away.
  source = jnp.asarray([[[0.0, 0.0], [0.1, 0.0], [0.9, 0.9]]], jnp.float32)
  # Driving: all three far apart.
  driving = jnp.asarray([[[-0.8, -0.8], [0.0, 0.0], [0.8, 0.8]]], jnp.float32)
  value = losses.keypoint_distance_loss(Keypoints(source), Keypoints(driving), 0.2)
  # Two ordered close pairs (0,1), (1,0) count 2 each: 4 / 9 for the source, 0 for driving.
  assert float(value) == pytest.approx(4.0 / 9.0, rel=1e-6)
  grad = jax.grad(lambda s: losses.keypoint_distance_loss(Keypoints(s), Keypoints(driving)))(
      source)
  assert float(jnp.abs(grad).max()) == 0.0
