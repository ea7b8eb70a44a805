"""Official ``Motion_Estimator_keypoint_aware`` state dicts -> :class:`MotionEstimator` variables.

How the official names (prefixes ``kp_detector.`` -> ``keypoint_detector`` and
``dense_motion_network.`` -> ``dense_motion``) map onto the Flax tree:

* ``predictor.`` (detector) and ``hourglass.`` (dense motion) -> ``hourglass``;
  inside it ``encoder.down_blocks.{i}`` -> ``down_{i}`` and ``decoder.up_blocks.{i}``
  -> ``up_{i}``, each with ``conv`` and ``norm``;
* heads: ``kp`` -> ``keypoint_head``, ``jacobian`` -> ``jacobian_head``, ``mask`` ->
  ``mask_head``, ``occlusion`` -> ``occlusion_head``;
* ``down.weight``, the fixed anti-aliasing kernel, has no Flax counterpart: it is
  checked (against the kernel the model computes, when the model is given) and
  counted as mapped.

BatchNorm running statistics go to the ``batch_stats`` collection. Keys saved from a
``DataParallel`` / ``DistributedDataParallel`` wrapper carry a ``module.`` prefix,
which is stripped.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax.convert.state_dict import ConversionError
from mcc_jax.convert.state_dict import StateDictMapper
from mcc_jax.convert.state_dict import check_tree_matches
from mcc_jax.models.motion_estimator import MotionEstimator
from mcc_jax.ops.antialias import antialias_kernel

Tree = dict[str, Any]
_WRAPPER_PREFIX = "module."


def strip_wrapper_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """Removes the ``module.`` prefix that data-parallel wrappers add to every key.

  Raises:
    ConversionError: if stripping makes two keys collide.
  """
  out = {}
  for name, value in state_dict.items():
    short = name[len(_WRAPPER_PREFIX):] if name.startswith(_WRAPPER_PREFIX) else name
    if short in out:
      raise ConversionError(f"tensor {short!r} appears both with and without 'module.'")
    out[short] = value
  return out


def _count_blocks(mapper: StateDictMapper, name: str) -> int:
  count = 0
  while mapper.has(f"{name}.{count}.conv.weight"):
    count += 1
  return count


def _hourglass(mapper: StateDictMapper) -> tuple[Tree, Tree]:
  params, stats = {}, {}
  for flax_name, torch_name in (("down", "encoder.down_blocks"), ("up", "decoder.up_blocks")):
    for i in range(_count_blocks(mapper, torch_name)):
      block = mapper.scoped(f"{torch_name}.{i}.")
      norm_params, norm_stats = block.batch_norm("norm")
      params[f"{flax_name}_{i}"] = {"conv": block.conv("conv"), "norm": norm_params}
      stats[f"{flax_name}_{i}"] = {"norm": norm_stats}
  return params, stats


def _antialias_buffer(mapper: StateDictMapper, scale: float | None, part: str) -> None:
  """Consumes the fixed ``down.weight`` blur kernel after checking it.

  Args:
    mapper: scoped to the part (``kp_detector.`` or ``dense_motion_network.``).
    scale: the model's downsampling factor, or None to check only that the buffer
      is a normalised blur (same kernel for every channel, summing to one).
    part: the part's name for messages.
  """
  where = f"the {part}'s down.weight"
  if not mapper.has("down.weight"):
    if scale not in (None, 1.0):
      raise ConversionError(
          f"the state dict has no {part} blur kernel (down.weight): it comes from a model "
          f"without downsampling, but the model has scale_factor={scale}")
    return
  kernel = mapper.take("down.weight").astype(np.float64)
  if kernel.ndim != 4 or kernel.shape[1] != 1:
    raise ConversionError(f"{where} has shape {kernel.shape}, not a depthwise kernel")
  if scale is None:
    if not (np.allclose(kernel, kernel[:1]) and np.allclose(kernel.sum(axis=(2, 3)), 1.0)):
      raise ConversionError(f"{where} is not a normalised blur kernel")
    return
  if scale == 1.0:
    raise ConversionError(
        f"the state dict holds {where} (a blur kernel), but the model has scale_factor=1")
  expected = antialias_kernel(scale)
  if kernel.shape[2:] != expected.shape or not np.allclose(kernel, expected[None, None],
                                                           atol=1e-6):
    raise ConversionError(
        f"{where} is not the blur kernel of scale_factor={scale}: the checkpoint was "
        f"trained with another downsampling factor")


def convert_keypoint_detector(mapper: StateDictMapper, scale: float | None = None
                              ) -> tuple[Tree, Tree]:
  """Maps an official ``KPDetector``'s tensors (names relative to ``mapper``).

  Args:
    mapper: a mapper scoped to the detector (e.g. ``mapper.scoped('kp_detector.')``).
    scale: the model's ``scale_factor`` to check the blur kernel against, or None.

  Returns:
    (params, batch_stats) of a :class:`~mcc_jax.models.keypoint_detector.KeypointDetector`.
  """
  params, stats = _hourglass(mapper.scoped("predictor."))
  params, stats = {"hourglass": params}, {"hourglass": stats}
  params["keypoint_head"] = mapper.conv("kp")
  if mapper.has("jacobian.weight"):
    params["jacobian_head"] = mapper.conv("jacobian")
  _antialias_buffer(mapper, scale, "keypoint detector")
  return params, stats


def convert_dense_motion(mapper: StateDictMapper, scale: float | None = None
                         ) -> tuple[Tree, Tree]:
  """Maps an official ``DenseMotionNetwork``'s tensors (names relative to ``mapper``).

  Args:
    mapper: a mapper scoped to the network (e.g. ``mapper.scoped('dense_motion_network.')``).
    scale: the model's ``scale_factor`` to check the blur kernel against, or None.

  Returns:
    (params, batch_stats) of a :class:`~mcc_jax.models.dense_motion.DenseMotionNetwork`.
  """
  params, stats = _hourglass(mapper.scoped("hourglass."))
  params, stats = {"hourglass": params}, {"hourglass": stats}
  params["mask_head"] = mapper.conv("mask")
  if mapper.has("occlusion.weight"):
    params["occlusion_head"] = mapper.conv("occlusion")
  _antialias_buffer(mapper, scale, "dense motion network")
  return params, stats


def convert_motion_estimator(state_dict: Mapping[str, Any],
                             model: MotionEstimator | None = None) -> dict[str, Tree]:
  """Converts an official ``Motion_Estimator_keypoint_aware`` state dict.

  Args:
    state_dict: tensor name -> array (numpy or anything ``np.asarray`` accepts), keys
      ``kp_detector.*`` and ``dense_motion_network.*``, optionally prefixed by
      ``module.``.
    model: when given, the blur kernels are checked against its scale factors and the
      result against its variables (:func:`check_motion_estimator_variables`).

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` for :class:`MotionEstimator`: float32 numpy,
    or float64 where the state dict holds float64 (as the generator's converter keeps it).

  Raises:
    ConversionError: when a tensor is missing, left over, of the wrong shape, or (with
      ``model``) the configurations differ; the message lists every offending name.
  """
  mapper = StateDictMapper(strip_wrapper_prefix(state_dict))
  kp_params, kp_stats = convert_keypoint_detector(
      mapper.scoped("kp_detector."), None if model is None else model.kp_scale_factor)
  motion_params, motion_stats = convert_dense_motion(
      mapper.scoped("dense_motion_network."),
      None if model is None else model.motion_scale_factor)
  mapper.finish()
  variables = jax.tree_util.tree_map(
      lambda a: np.asarray(a, np.promote_types(np.asarray(a).dtype, np.float32)),
      {"params": {"keypoint_detector": kp_params, "dense_motion": motion_params},
       "batch_stats": {"keypoint_detector": kp_stats, "dense_motion": motion_stats}})
  if model is not None:
    check_motion_estimator_variables(variables, model)
  return variables


def traceable_image_size(model: MotionEstimator) -> int:
  """The smallest square image side that both parts of ``model`` accept."""
  strides = (int(1.0 / model.kp_scale_factor), int(1.0 / model.motion_scale_factor))
  side = math.lcm(strides[0] * 2**model.kp_num_blocks, strides[1] * 2**model.motion_num_blocks)
  # The keypoint heads need room for a 2x2 heatmap after their 7x7 valid convolution.
  while side // strides[0] + 2 * model.kp_padding < 8:
    side *= 2
  return side


def check_motion_estimator_variables(variables: Mapping[str, Any], model: MotionEstimator,
                                     image_size: int | None = None) -> None:
  """Checks converted variables against the model's own, path by path and shape by shape.

  Args:
    variables: ``{'params', 'batch_stats'}`` as returned by
      :func:`convert_motion_estimator`.
    model: the model the variables are meant for.
    image_size: side of the square image used to trace the model (no computation
      happens); by default the smallest valid one. Variable shapes do not depend on it.

  Raises:
    ConversionError: listing missing, unexpected and wrongly shaped variables.
  """
  image_size = image_size or traceable_image_size(model)
  image = jax.ShapeDtypeStruct((1, image_size, image_size, model.num_channels), jnp.float32)
  expected = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, x, train=False),
                            image)
  for collection in ("params", "batch_stats"):
    check_tree_matches(variables.get(collection, {}), expected.get(collection, {}),
                       what=f"motion estimator {collection}")
