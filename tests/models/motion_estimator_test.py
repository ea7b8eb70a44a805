"""MotionEstimator: composition of the parts, gradients, configuration."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax import ops
from mcc_jax.models.dense_motion import DenseMotion
from mcc_jax.models.motion_estimator import MotionEstimate
from mcc_jax.models.motion_estimator import MotionEstimator
from tests.models.torch_reference import relative_error

TINY = dict(num_keypoints=3, kp_block_expansion=4, kp_max_features=16, kp_num_blocks=2,
            motion_block_expansion=4, motion_max_features=16, motion_num_blocks=2)
# Relative L2 errors of the bfloat16 estimator against the float32 one (same weights;
# displacements are the deformation minus the identity grid). One bfloat16 rounding is
# 2^-9 ~ 2e-3 relative. Measured on CPU: keypoints 0.0025, displacement 0.0016,
# occlusion 5.6e-5 and mask 1.1e-4 (both near their random-weight values 0.5 and
# 1 / (K + 1), which the sigmoid / softmax barely move); the bounds leave about 4x.
BF16_REL_L2 = {"keypoints": 0.01, "displacement": 0.006, "occlusion": 2.5e-4, "mask": 5e-4}
OFFICIAL_OPTIONS = {
    "type": "Motion_Estimator_keypoint_aware",
    "common_params": {"num_kp": 15, "num_channels": 3},
    "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5,
                            "scale_factor": 0.25, "estimate_occlusion_map": True},
    "kp_detector_params": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024,
                           "scale_factor": 0.25, "num_blocks": 5, "estimate_jacobian": True},
}


def _frames(seed, batch=2, size=64):
  keys = jax.random.split(jax.random.PRNGKey(seed))
  return tuple(jax.random.uniform(k, (batch, size, size, 3), minval=-1, maxval=1) for k in keys)


@functools.lru_cache(maxsize=None)
def _model_and_variables():
  model = MotionEstimator(**TINY)
  return model, model.init(jax.random.PRNGKey(0), *_frames(0), train=False)


def test_estimate_holds_keypoints_and_the_dense_motion_fields():
  assert MotionEstimate._fields[:2] == ("kp_source", "kp_driving")
  assert MotionEstimate._fields[2:] == DenseMotion._fields
  model, variables = _model_and_variables()
  assert set(variables["params"]) == {"keypoint_detector", "dense_motion"}
  assert set(variables["batch_stats"]) == {"keypoint_detector", "dense_motion"}
  out = model.apply(variables, *_frames(1), train=False)
  assert out.kp_source.value.shape == out.kp_driving.value.shape == (2, 3, 2)
  assert out.deformation.shape == (2, 16, 16, 2) and out.occlusion.shape == (2, 16, 16, 1)


def test_parts_run_separately_give_the_same_motion():
  model, variables = _model_and_variables()
  source, driving = _frames(2)
  whole = model.apply(variables, source, driving, train=False)
  detect = functools.partial(model.apply, variables, train=False,
                             method=MotionEstimator.detect_keypoints)
  kp_source, kp_driving = detect(source), detect(driving)
  dense = model.apply(variables, source, kp_source, kp_driving, train=False,
                      method=MotionEstimator.estimate_dense_motion)
  for got, expected in ((kp_source, whole.kp_source), (kp_driving, whole.kp_driving),
                        (dense.deformation, whole.deformation),
                        (dense.occlusion, whole.occlusion)):
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6),
        got, expected)


def test_relative_motion_uses_the_parts():
  model, variables = _model_and_variables()
  source, driving = _frames(3)
  detect = functools.partial(model.apply, variables, train=False,
                             method=MotionEstimator.detect_keypoints)
  kp_source = detect(source)
  # The first driving frame itself: relative transfer keeps the source keypoints.
  kp_new = ops.transfer_relative_motion(kp_source, detect(driving), detect(driving))
  dense = model.apply(variables, source, kp_source, kp_new, train=False,
                      method=MotionEstimator.estimate_dense_motion)
  identity = np.broadcast_to(np.asarray(ops.coordinate_grid(16, 16)), (2, 16, 16, 2))
  np.testing.assert_allclose(np.asarray(dense.deformation), identity, atol=1e-5)


def test_gradients_reach_the_keypoint_detector_through_the_dense_motion():
  model, variables = _model_and_variables()
  source, driving = _frames(4)
  target = jax.random.normal(jax.random.PRNGKey(5), (2, 16, 16, 2))

  def loss(params):
    out = model.apply({**variables, "params": params}, source, driving, train=False)
    return jnp.sum(out.deformation * target)

  grads = jax.jit(jax.grad(loss))(variables["params"])["keypoint_detector"]
  for name in ("keypoint_head", "jacobian_head"):
    kernel_grad = np.asarray(grads[name]["kernel"])
    assert np.all(np.isfinite(kernel_grad)) and np.abs(kernel_grad).max() > 0.0, name
  first_conv = np.asarray(grads["hourglass"]["down_0"]["conv"]["kernel"])
  assert np.abs(first_conv).max() > 0.0


def test_training_mode_updates_both_parts_statistics():
  model, variables = _model_and_variables()
  _, updated = model.apply(variables, *_frames(6), train=True, mutable=["batch_stats"])
  for part in ("keypoint_detector", "dense_motion"):
    before = variables["batch_stats"][part]["hourglass"]["up_1"]["norm"]["var"]
    after = updated["batch_stats"][part]["hourglass"]["up_1"]["norm"]["var"]
    assert not np.allclose(np.asarray(before), np.asarray(after)), part


def test_official_options_give_the_default_model_and_its_parameter_counts():
  model = MotionEstimator.from_official_config(OFFICIAL_OPTIONS)
  assert model == MotionEstimator()
  image = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  params = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, x, train=False),
                          image)["params"]
  count = lambda tree: sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(tree))
  assert count(params["keypoint_detector"]) == 14_258_268
  assert count(params["dense_motion"]) == 37_796_433


@pytest.mark.parametrize("section,option,message", [
    ("dense_motion_params", {"multi_mask": True}, "multi_mask is not supported"),
    ("kp_detector_params", {"single_jacobian_map": True}, "single_jacobian_map"),
    ("kp_detector_params", {"bogus": 1}, r"unknown options kp_detector_params\.bogus"),
])
def test_official_options_this_port_lacks_are_rejected(section, option, message):
  options = {**OFFICIAL_OPTIONS, section: {**OFFICIAL_OPTIONS[section], **option}}
  with pytest.raises(ValueError, match=message):
    MotionEstimator.from_official_config(options)


def test_bfloat16_runs_with_float32_outputs():
  model = MotionEstimator(**TINY, dtype=jnp.bfloat16)
  reference_model, variables = _model_and_variables()
  frames = _frames(7)
  out = jax.jit(functools.partial(model.apply, train=False))(variables, *frames)
  out32 = reference_model.apply(variables, *frames, train=False)
  for array in (out.kp_source.value, out.kp_driving.jacobian, out.deformation, out.occlusion,
                out.mask):
    assert array.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(array)))
  identity = np.asarray(ops.coordinate_grid(16, 16))
  errors = {
      "keypoints": relative_error(out.kp_driving.value, out32.kp_driving.value),
      "displacement": relative_error(np.asarray(out.deformation) - identity,
                                     np.asarray(out32.deformation) - identity),
      "occlusion": relative_error(out.occlusion, out32.occlusion),
      "mask": relative_error(out.mask, out32.mask),
  }
  assert all(error < BF16_REL_L2[name] for name, error in errors.items()), errors
