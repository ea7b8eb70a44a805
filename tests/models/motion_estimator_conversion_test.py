"""Official state dict -> MotionEstimator variables: one-to-one mapping and its error paths.

The official-looking state dict is produced from the model's own variables by the
inverse naming written out below, so these tests need no official code; the parity test
converts real state dicts of the official modules.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.convert.motion_estimator import check_motion_estimator_variables
from mcc_jax.convert.motion_estimator import convert_motion_estimator
from mcc_jax.convert.motion_estimator import traceable_image_size
from mcc_jax.convert.state_dict import ConversionError
from mcc_jax.models.motion_estimator import MotionEstimator

TINY = dict(num_keypoints=3, kp_block_expansion=4, kp_max_features=16, kp_num_blocks=2,
            motion_block_expansion=4, motion_max_features=16, motion_num_blocks=2)
# (Flax part, PyTorch part, PyTorch hourglass name, {Flax head: PyTorch head}).
PARTS = (
    ("keypoint_detector", "kp_detector", "predictor",
     {"keypoint_head": "kp", "jacobian_head": "jacobian"}),
    ("dense_motion", "dense_motion_network", "hourglass",
     {"mask_head": "mask", "occlusion_head": "occlusion"}),
)


def _blur_buffer(scale=0.25, channels=3):
  sigma = (1 / scale - 1) / 2
  axis = np.arange(2 * round(4 * sigma) + 1) - round(4 * sigma)
  profile = np.exp(-axis**2 / (2 * sigma**2))
  kernel = np.outer(profile, profile)
  return np.tile((kernel / kernel.sum())[None, None], (channels, 1, 1, 1)).astype(np.float32)


def _official_state_dict(variables):
  """What the official model's ``state_dict()`` holds for these variables (numpy)."""
  state = {}

  def conv(name, tree):
    state[f"{name}.weight"] = np.transpose(np.asarray(tree["kernel"]), (3, 2, 0, 1))
    state[f"{name}.bias"] = np.asarray(tree["bias"])

  for part, torch_part, hourglass, heads in PARTS:
    params, stats = variables["params"][part], variables["batch_stats"][part]
    for block, block_params in params["hourglass"].items():
      kind, index = block.split("_")
      path = "encoder.down_blocks" if kind == "down" else "decoder.up_blocks"
      prefix = f"{torch_part}.{hourglass}.{path}.{index}"
      conv(f"{prefix}.conv", block_params["conv"])
      norm_stats = stats["hourglass"][block]["norm"]
      state[f"{prefix}.norm.weight"] = np.asarray(block_params["norm"]["scale"])
      state[f"{prefix}.norm.bias"] = np.asarray(block_params["norm"]["bias"])
      state[f"{prefix}.norm.running_mean"] = np.asarray(norm_stats["mean"])
      state[f"{prefix}.norm.running_var"] = np.asarray(norm_stats["var"])
      state[f"{prefix}.norm.num_batches_tracked"] = np.asarray(7, np.int64)
    for flax_head, torch_head in heads.items():
      conv(f"{torch_part}.{torch_head}", params[flax_head])
    state[f"{torch_part}.down.weight"] = _blur_buffer()
  return state


@functools.lru_cache(maxsize=None)
def _model_and_variables():
  model = MotionEstimator(**TINY)
  image = jnp.zeros((2, 64, 64, 3))
  variables = model.init(jax.random.PRNGKey(0), image, image, train=False)
  # Non-trivial statistics, so that a mix-up of mean and variance would show.
  variables["batch_stats"] = jax.tree_util.tree_map(
      lambda a: a + np.random.default_rng(a.size).uniform(0.1, 1.0, a.shape).astype(np.float32),
      variables["batch_stats"])
  return model, variables


def _assert_same_tree(got, expected):
  assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(expected)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, np.asarray(b)), got,
                         expected)


def test_round_trip_reproduces_every_variable():
  model, variables = _model_and_variables()
  state = _official_state_dict(variables)
  converted = convert_motion_estimator(state, model=model)
  _assert_same_tree(converted, variables)
  assert all(a.dtype == np.float32 for a in jax.tree_util.tree_leaves(converted))
  # Without the model only the blur kernels' shape and normalisation are checked.
  _assert_same_tree(convert_motion_estimator(state), variables)


def test_data_parallel_prefix_is_stripped():
  model, variables = _model_and_variables()
  state = {f"module.{name}": value for name, value in _official_state_dict(variables).items()}
  _assert_same_tree(convert_motion_estimator(state, model=model), variables)


def test_missing_tensor_is_named():
  model, variables = _model_and_variables()
  state = _official_state_dict(variables)
  del state["dense_motion_network.occlusion.bias"]
  with pytest.raises(ConversionError, match=r"dense_motion_network\.occlusion\.bias"):
    convert_motion_estimator(state, model=model)


def test_left_over_tensors_are_all_named():
  model, variables = _model_and_variables()
  state = _official_state_dict(variables)
  state["kp_detector.extra.weight"] = np.zeros(2, np.float32)
  state["dense_motion_network.occlusion.0.weight"] = np.zeros((1, 20, 7, 7), np.float32)
  with pytest.raises(ConversionError, match="2 tensor") as error:
    convert_motion_estimator(state, model=model)
  assert "kp_detector.extra.weight" in str(error.value)
  assert "dense_motion_network.occlusion.0.weight" in str(error.value)


def test_wrong_shapes_and_missing_parts_are_reported_against_the_model():
  model, variables = _model_and_variables()
  state = _official_state_dict(variables)
  del state["kp_detector.jacobian.weight"], state["kp_detector.jacobian.bias"]
  other = MotionEstimator(**{**TINY, "motion_block_expansion": 8})
  with pytest.raises(ConversionError) as error:
    convert_motion_estimator(state, model=other)
  message = str(error.value)
  assert "missing" in message and "keypoint_detector/jacobian_head/kernel" in message
  assert "wrong shape" in message and "dense_motion/mask_head/kernel" in message


def test_the_blur_kernel_reveals_another_downsampling_factor():
  model, variables = _model_and_variables()
  state = _official_state_dict(variables)
  state["kp_detector.down.weight"] = _blur_buffer(scale=0.5)
  with pytest.raises(ConversionError, match=r"keypoint detector's down.weight.*scale_factor=0.25"):
    convert_motion_estimator(state, model=model)
  del state["kp_detector.down.weight"]
  with pytest.raises(ConversionError, match="no keypoint detector blur kernel"):
    convert_motion_estimator(state, model=model)


def test_check_accepts_the_models_own_variables():
  model, variables = _model_and_variables()
  check_motion_estimator_variables(variables, model)
  with pytest.raises(ConversionError, match="batch_stats"):
    check_motion_estimator_variables({"params": variables["params"]}, model, image_size=64)


@pytest.mark.parametrize("config,side", [
    ({}, 128),  # The official configuration: 32 x 4.
    (dict(kp_num_blocks=1, motion_num_blocks=1), 32),  # The heads need 8x8 features.
    (dict(kp_scale_factor=1.0, kp_num_blocks=3, motion_num_blocks=2), 16),
])
def test_traceable_image_size_is_the_smallest_valid_side(config, side):
  model = MotionEstimator(**config)
  assert traceable_image_size(model) == side
  image = jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)
  jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, x, train=False), image)
