"""KeypointDetector: heads against an independent PyTorch computation, invariants, checks."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcc_jax.models.keypoint_detector import KeypointDetector
from tests.models.torch_reference import relative_error

TINY = dict(num_keypoints=3, block_expansion=4, max_features=16, num_blocks=2)


def _images(seed, batch=2, size=64):
  return jax.random.uniform(jax.random.PRNGKey(seed), (batch, size, size, 3), minval=-1,
                            maxval=1)


@functools.lru_cache(maxsize=None)
def _model_and_variables(padding=0):
  model = KeypointDetector(**TINY, padding=padding)
  variables = model.init(jax.random.PRNGKey(0), _images(0), train=False)
  return model, variables


def _with_random_jacobian_head(variables, seed=1):
  """Replaces the identity-initialised jacobian head by random weights."""
  params = flax.core.unfreeze(variables["params"])
  head = params["jacobian_head"]
  key_kernel, key_bias = jax.random.split(jax.random.PRNGKey(seed))
  head["kernel"] = 0.05 * jax.random.normal(key_kernel, head["kernel"].shape)
  head["bias"] = head["bias"] + 0.1 * jax.random.normal(key_bias, head["bias"].shape)
  return {**variables, "params": params}


def _torch_conv(features, kernel, bias, padding):
  x = torch.from_numpy(np.array(features)).permute(0, 3, 1, 2)
  weight = torch.from_numpy(np.array(kernel)).permute(3, 2, 0, 1)
  y = F.conv2d(x, weight, torch.from_numpy(np.array(bias)), padding=padding)
  return y.permute(0, 2, 3, 1).numpy().astype(np.float64)


@pytest.mark.parametrize("padding", [0, 3])
def test_heads_match_an_independent_computation(padding):
  model, variables = _model_and_variables(padding)
  variables = _with_random_jacobian_head(variables)
  image = _images(2)
  kp, state = model.apply(variables, image, train=False, capture_intermediates=True)
  features = state["intermediates"]["hourglass"]["__call__"][0]
  params = variables["params"]

  logits = _torch_conv(features, params["keypoint_head"]["kernel"],
                       params["keypoint_head"]["bias"], padding)
  b, h, w, k = logits.shape
  # Valid 7x7 heads shrink the map by 6 pixels, and the grid shrinks with it.
  assert (h, w) == (16 + 2 * padding - 6,) * 2
  flat = logits.reshape(b, h * w, k) / model.temperature
  heat = np.exp(flat - flat.max(axis=1, keepdims=True))
  heat = (heat / heat.sum(axis=1, keepdims=True)).reshape(b, h, w, k)
  xs, ys = np.meshgrid(np.linspace(-1, 1, w), np.linspace(-1, 1, h))
  expected_value = np.stack([np.einsum("bhwk,hw->bk", heat, xs),
                             np.einsum("bhwk,hw->bk", heat, ys)], axis=-1)
  maps = _torch_conv(features, params["jacobian_head"]["kernel"],
                     params["jacobian_head"]["bias"], padding).reshape(b, h, w, k, 4)
  expected_jacobian = np.einsum("bhwk,bhwkj->bkj", heat, maps).reshape(b, k, 2, 2)

  np.testing.assert_allclose(np.asarray(kp.value), expected_value, atol=2e-6)
  np.testing.assert_allclose(np.asarray(kp.jacobian), expected_jacobian, atol=2e-6)
  assert np.abs(expected_jacobian - np.eye(2)).max() > 1e-2


def test_shapes_range_and_identity_jacobians_at_initialisation():
  model, variables = _model_and_variables()
  kp = model.apply(variables, _images(3), train=False)
  assert kp.value.shape == (2, 3, 2) and kp.value.dtype == jnp.float32
  assert kp.jacobian.shape == (2, 3, 2, 2) and kp.jacobian.dtype == jnp.float32
  assert float(jnp.abs(kp.value).max()) <= 1.0
  # Zero weights and a [1, 0, 0, 1] bias, averaged with weights summing to one: a sum
  # of 100 float32 softmax weights (from convolutions whose rounding depends on the CPU)
  # is 1 within a few ulp; a wrong initialisation is 1e-2 off or more.
  np.testing.assert_allclose(np.asarray(kp.jacobian),
                             np.broadcast_to(np.eye(2), (2, 3, 2, 2)), atol=1e-5)
  np.testing.assert_array_equal(np.asarray(kp.jacobian)[..., 0, 1], 0.0)
  np.testing.assert_array_equal(np.asarray(variables["params"]["jacobian_head"]["kernel"]), 0.0)


def test_without_jacobian_head():
  model = KeypointDetector(**TINY, estimate_jacobian=False)
  shapes = jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                          _images(0))
  assert "jacobian_head" not in shapes["params"]
  kp = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), shapes, _images(0))
  assert kp.jacobian is None and kp.value.shape == (2, 3, 2)


def test_training_mode_uses_batch_statistics_and_updates_them():
  model, variables = _model_and_variables()
  image = _images(4)
  kp_train, updated = model.apply(variables, image, train=True, mutable=["batch_stats"])
  kp_eval = model.apply(variables, image, train=False)
  assert not np.allclose(np.asarray(kp_train.value), np.asarray(kp_eval.value))
  before = variables["batch_stats"]["hourglass"]["down_0"]["norm"]["mean"]
  after = updated["batch_stats"]["hourglass"]["down_0"]["norm"]["mean"]
  assert not np.allclose(np.asarray(before), np.asarray(after))


# Relative L2 errors of the bfloat16 detector against the float32 one (same weights),
# for keypoints spread over the image (keypoint head x KEYPOINT_HEAD_GAIN) and jacobians
# measured as J - I (the identity bias is exact in bfloat16 and would hide the error).
# One bfloat16 rounding is 2^-9 ~ 2e-3 relative; rounding only the parameters moves the
# keypoints by 0.003 and J - I by 0.007. Measured on CPU with bfloat16 arithmetic:
# keypoints 0.0082, J - I 0.0088; the bounds leave a margin of about 2.4x.
KEYPOINT_HEAD_GAIN = 10.0
BF16_KEYPOINT_REL_L2 = 0.02
BF16_JACOBIAN_REL_L2 = 0.02


def test_bfloat16_computation_keeps_float32_params_and_outputs():
  model = KeypointDetector(**TINY, dtype=jnp.bfloat16)
  image = _images(5)
  shapes = jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                          image)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(shapes))
  reference_model, variables = _model_and_variables()
  variables = _with_random_jacobian_head(variables)
  params = flax.core.unfreeze(variables["params"])
  # Random heads give near-uniform heatmaps and keypoints within 0.1 of the centre, where
  # an absolute tolerance says little; sharper heatmaps spread them over the image.
  params["keypoint_head"]["kernel"] = params["keypoint_head"]["kernel"] * KEYPOINT_HEAD_GAIN
  variables = {**variables, "params": params}
  kp = jax.jit(functools.partial(model.apply, train=False))(variables, image)
  kp32 = reference_model.apply(variables, image, train=False)
  assert kp.value.dtype == jnp.float32 and kp.jacobian.dtype == jnp.float32
  assert float(jnp.abs(kp32.value).max()) > 0.5  # the keypoints are spread out
  assert relative_error(kp.value, kp32.value) < BF16_KEYPOINT_REL_L2
  eye = np.eye(2)
  assert relative_error(np.asarray(kp.jacobian) - eye,
                        np.asarray(kp32.jacobian) - eye) < BF16_JACOBIAN_REL_L2


def test_official_parameter_count():
  shapes = jax.eval_shape(functools.partial(KeypointDetector().init, train=False),
                          jax.random.PRNGKey(0), jax.ShapeDtypeStruct((1, 256, 256, 3),
                                                                      jnp.float32))
  count = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(shapes["params"]))
  assert count == 14_258_268


@pytest.mark.parametrize("size,padding,message", [
    (60, 0, r"num_blocks=2.*multiples of 4.*60x60 image downsampled by scale_factor=0.25"),
    (16, 0, r"7x7 heads with padding=0 need a feature map of at least 8x8.*got 4x4"),
])
def test_rejects_unusable_image_sizes(size, padding, message):
  model = KeypointDetector(**TINY, padding=padding)
  with pytest.raises(ValueError, match=message):
    jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                   jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))


def test_rejects_wrong_channel_count():
  with pytest.raises(ValueError, match=r"num_channels=3"):
    jax.eval_shape(functools.partial(KeypointDetector(**TINY).init, train=False),
                   jax.random.PRNGKey(0), jax.ShapeDtypeStruct((1, 64, 64, 4), jnp.float32))
