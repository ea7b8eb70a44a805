"""DenseMotionNetwork: composition of its outputs, input layout, invariants, checks."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from mcc_jax import ops
from mcc_jax.models.dense_motion import DenseMotionNetwork
from mcc_jax.models.hourglass import Hourglass

K = 3
TINY = dict(num_keypoints=K, block_expansion=4, max_features=16, num_blocks=2)


def _inputs(seed, batch=2, size=64, jacobians=True):
  keys = jax.random.split(jax.random.PRNGKey(seed), 5)
  source = jax.random.uniform(keys[0], (batch, size, size, 3), minval=-1, maxval=1)
  eye = jnp.eye(2)

  def keypoints(key_value, key_jacobian):
    value = jax.random.uniform(key_value, (batch, K, 2), minval=-0.8, maxval=0.8)
    jacobian = eye + 0.2 * jax.random.normal(key_jacobian, (batch, K, 2, 2))
    return ops.Keypoints(value, jacobian if jacobians else None)

  return source, keypoints(keys[1], keys[2]), keypoints(keys[3], keys[4])


@functools.lru_cache(maxsize=None)
def _model_and_variables(estimate_occlusion=True):
  model = DenseMotionNetwork(**TINY, estimate_occlusion=estimate_occlusion)
  variables = model.init(jax.random.PRNGKey(0), *_inputs(0), train=False)
  return model, variables


def _apply(variables, *inputs, model=None):
  model = model or _model_and_variables()[0]
  return model.apply(variables, *inputs, train=False)


def test_outputs_are_composed_as_documented():
  model, variables = _model_and_variables()
  source, kp_source, kp_driving = _inputs(1)
  out = _apply(variables, source, kp_source, kp_driving)
  h = w = 16
  assert out.deformation.shape == (2, h, w, 2)
  assert out.occlusion.shape == (2, h, w, 1)
  assert out.mask.shape == (2, h, w, K + 1)
  assert out.driving_heatmaps.shape == (2, h, w, K)
  assert out.deformed_source.shape == (2, K + 1, h, w, 3)

  np.testing.assert_allclose(np.asarray(out.mask.sum(-1)), 1.0, atol=1e-6)
  occlusion = np.asarray(out.occlusion)
  assert occlusion.min() > 0.0 and occlusion.max() < 1.0
  motions = ops.sparse_motions(kp_source, kp_driving, (h, w))
  np.testing.assert_allclose(np.asarray(out.sparse_motions), np.asarray(motions), atol=1e-6)
  blended = np.einsum("bhwk,bkhwc->bhwc", np.asarray(out.mask), np.asarray(motions))
  np.testing.assert_allclose(np.asarray(out.deformation), blended, atol=1e-6)
  np.testing.assert_allclose(np.asarray(out.driving_heatmaps),
                             np.asarray(ops.kp_to_gaussian(kp_driving.value, (h, w), 0.01)),
                             atol=1e-6)
  small = ops.antialias_downsample(source, 0.25)
  for k in (0, K):
    warped = ops.grid_sample(small, motions[:, k], align_corners=False)
    np.testing.assert_allclose(np.asarray(out.deformed_source[:, k]), np.asarray(warped),
                               atol=1e-6)


def test_hourglass_sees_heatmap_then_warped_source_per_motion():
  """The official network concatenates (B, K+1, 1, h, w) heatmaps and (B, K+1, C, h, w)
  warped sources along dim 2 and flattens to (B, (K+1)(C+1), h, w): the pretrained first
  convolution expects that channel order, so a swapped concatenation must fail here."""
  _, variables = _model_and_variables()
  source, kp_source, kp_driving = _inputs(2)
  seen = []

  def record_hourglass_input(next_fun, args, kwargs, context):
    if isinstance(context.module, Hourglass) and context.method_name == "__call__":
      seen.append(args[0])
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record_hourglass_input):
    out = _apply(variables, source, kp_source, kp_driving)
  (hourglass_input,) = seen
  assert hourglass_input.shape == (2, 16, 16, (K + 1) * 4)
  heatmaps = ops.heatmap_difference(kp_source.value, kp_driving.value, (16, 16), 0.01)
  per_motion_heatmaps = np.moveaxis(np.array(heatmaps), -1, 1)[:, :, None].copy()
  per_motion_sources = np.moveaxis(np.array(out.deformed_source), -1, 2).copy()
  official = torch.cat([torch.from_numpy(per_motion_heatmaps),
                        torch.from_numpy(per_motion_sources)], dim=2)
  official = official.reshape(2, (K + 1) * 4, 16, 16).permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(np.asarray(hourglass_input), official, atol=1e-6)


def test_equal_keypoints_give_the_identity_deformation_whatever_the_weights():
  _, variables = _model_and_variables()
  source, kp, _ = _inputs(3)
  out = _apply(variables, source, kp, kp)
  identity = np.broadcast_to(np.asarray(ops.coordinate_grid(16, 16)), (2, 16, 16, 2))
  np.testing.assert_allclose(np.asarray(out.deformation), identity, atol=1e-5)


def test_without_jacobians_motions_are_translations():
  _, variables = _model_and_variables()
  source, kp_source, kp_driving = _inputs(4, jacobians=False)
  out = _apply(variables, source, kp_source, kp_driving)
  grid = np.asarray(ops.coordinate_grid(16, 16))
  shift = np.asarray(kp_source.value - kp_driving.value)[:, :, None, None, :]
  np.testing.assert_allclose(np.asarray(out.sparse_motions[:, 1:]), grid + shift, atol=1e-6)


def test_gradients_reach_the_keypoints():
  _, variables = _model_and_variables()
  source, kp_source, kp_driving = _inputs(5)

  def loss(value_source, value_driving):
    out = _apply(variables, source, kp_source._replace(value=value_source),
                 kp_driving._replace(value=value_driving))
    return jnp.sum(out.deformation**2) + jnp.sum(out.occlusion)

  grads = jax.grad(loss, argnums=(0, 1))(kp_source.value, kp_driving.value)
  for grad in grads:
    assert np.all(np.isfinite(np.asarray(grad))) and float(jnp.abs(grad).min()) > 0.0


def test_occlusion_is_optional():
  model, variables = _model_and_variables(estimate_occlusion=False)
  assert set(variables["params"]) == {"hourglass", "mask_head"}
  assert _apply(variables, *_inputs(6), model=model).occlusion is None


def test_official_parameter_count():
  kp = ops.Keypoints(jax.ShapeDtypeStruct((1, 15, 2), jnp.float32),
                     jax.ShapeDtypeStruct((1, 15, 2, 2), jnp.float32))
  image = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  shapes = jax.eval_shape(functools.partial(DenseMotionNetwork().init, train=False),
                          jax.random.PRNGKey(0), image, kp, kp)
  count = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(shapes["params"]))
  assert count == 37_796_433


def test_rejects_unusable_inputs():
  model = DenseMotionNetwork(**TINY)
  init = functools.partial(model.init, jax.random.PRNGKey(0), train=False)
  source, kp_source, kp_driving = jax.eval_shape(lambda: _inputs(0))
  with pytest.raises(ValueError, match=r"num_blocks=2.*multiples of 4.*got 15x15.*60x60"):
    jax.eval_shape(init, jax.ShapeDtypeStruct((2, 60, 60, 3), jnp.float32), kp_source,
                   kp_driving)
  wrong = jax.eval_shape(lambda: ops.Keypoints(jnp.zeros((2, K + 1, 2))))
  with pytest.raises(ValueError, match=r"kp_driving.value must be \(B, num_keypoints, 2\)"):
    jax.eval_shape(init, source, kp_source, wrong)
  with pytest.raises(ValueError, match=r"num_channels=3"):
    jax.eval_shape(init, jax.ShapeDtypeStruct((2, 64, 64, 1), jnp.float32), kp_source,
                   kp_driving)
