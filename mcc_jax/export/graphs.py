"""The functions exported: the model split into the graphs a runtime calls.

Animating a source image with a driving video needs the keypoints of every frame, the
source's features once, and one generator pass per driving frame. The model is split
along those lines into three graphs, each a function of float32 arrays alone with the
weights closed over (they become constants of the exported graph), every input and
output with a leading batch axis ``B`` of any size:

* ``keypoints``: images -> keypoints (value, and jacobian when the model has them);
  run once for the source and once per driving frame;
* ``source_encoder``: source images -> the generator encoder's features (its output
  and the map of every finer level); run once per source image;
* ``generator``: source images, their features and keypoints, and the keypoints to
  move them to -> generated frames, the final flow and occlusion map; run once per
  driving frame. It is the generator of :func:`~mcc_jax.models.reenactment.reenact`
  (dense motion, then the generator) with the encoder's work replaced by the given
  features, so the two cannot drift apart.

What connects them -- relative motion and the hull scale, a few 2x2 products per
keypoint -- is left to the runtime (:mod:`mcc_jax.export.keypoint_motion`), where
the anchor frame can change without a new graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax.export.signatures import BATCH
from mcc_jax.export.signatures import GENERATOR
from mcc_jax.export.signatures import KEYPOINTS
from mcc_jax.export.signatures import MODEL_RANGE
from mcc_jax.export.signatures import SOURCE_ENCODER
from mcc_jax.export.signatures import TensorSpec
from mcc_jax.inference.model_loading import LoadedModel
from mcc_jax.models.motion_estimator import MotionEstimator
from mcc_jax.models.reenactment import reenact
from mcc_jax.models.vqgan_encoder import Encoder
from mcc_jax.models.vqgan_encoder import EncoderFeatures
from mcc_jax.ops import coordinate_grid
from mcc_jax.ops.keypoints import Keypoints


@dataclasses.dataclass(frozen=True)
class Graph:
  """A function to export and its signature.

  Attributes:
    name: one of :data:`~mcc_jax.export.signatures.GRAPH_NAMES`.
    function: positional float32 arrays (as :attr:`inputs`) -> a tuple of arrays (as
      :attr:`outputs`); the weights are constants inside it.
    inputs: its inputs, in order.
    outputs: its outputs, in order.
    description: what it computes and when a runtime calls it.
  """

  name: str
  function: Callable[..., tuple]
  inputs: tuple[TensorSpec, ...]
  outputs: tuple[TensorSpec, ...]
  description: str


def _float(name: str, shape: tuple, value_range, description: str) -> TensorSpec:
  return TensorSpec(name, (BATCH,) + tuple(int(d) for d in shape), "float32",
                    None if value_range is None else tuple(map(float, value_range)),
                    description)


def _keypoint_specs(prefix: str, num_keypoints: int, with_jacobian: bool,
                    whose: str) -> tuple[TensorSpec, ...]:
  specs = (_float(f"{prefix}value", (num_keypoints, 2), MODEL_RANGE,
                  f"keypoint positions of {whose}, (x, y) on the [-1, 1] grid of the "
                  "image (x to the right, y down)"),)
  if with_jacobian:
    specs += (_float(f"{prefix}jacobian", (num_keypoints, 2, 2), None,
                     f"2x2 local jacobian of each keypoint of {whose}, row major "
                     "(d(x, y)_out / d(x, y)_in)"),)
  return specs


def _image_spec(name: str, size: int, description: str) -> TensorSpec:
  return _float(name, (size, size, 3), MODEL_RANGE,
                f"{description}: RGB, NHWC, uint8 pixels p as p / 127.5 - 1")


def model_graphs(model: LoadedModel) -> dict[str, Graph]:
  """The model's three graphs (see the module docstring), by name.

  Args:
    model: the networks and weights (:func:`mcc_jax.inference.load_model`).

  Returns:
    ``{name: Graph}`` in the order of :data:`GRAPH_NAMES`.
  """
  estimator, generator = model.estimator, model.generator
  variables = jax.tree.map(np.asarray, {"motion_estimator": model.variables["motion_estimator"],
                                        "generator": model.variables["generator"]})
  size = model.image_size
  num_keypoints = estimator.num_keypoints
  with_jacobian = estimator.estimate_jacobian

  def detect_keypoints(images):
    kp = estimator.apply(variables["motion_estimator"], images, train=False,
                         method=MotionEstimator.detect_keypoints)
    return (kp.value,) + ((kp.jacobian,) if with_jacobian else ())

  def encode_source(source):
    features = generator.apply(variables["generator"], source,
                               method=lambda module, image: module.encoder(image))
    return (features.output,) + tuple(features.levels[:-1])

  feature_shapes = [f.shape[1:] for f in jax.eval_shape(
      encode_source, jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))]
  feature_specs = (_float("encoder_output", feature_shapes[0], None,
                          "the generator encoder's output (the coarsest source feature)"),)
  feature_specs += tuple(
      _float(f"encoder_level_{level}", shape, None,
             f"the generator encoder's map at the end of level {level} (1/{2**level} of "
             "the image side, before its downsampling)")
      for level, shape in enumerate(feature_shapes[1:]))

  def generate(source, *rest):
    features, rest = rest[:len(feature_specs)], rest[len(feature_specs):]
    per_keypoint_set = 2 if with_jacobian else 1
    kp_source = Keypoints(*rest[:per_keypoint_set])
    kp_driving = Keypoints(*rest[per_keypoint_set:])
    encoded = EncoderFeatures(levels=list(features[1:]) + [None], coarsest_first_block=None,
                              output=features[0])

    def use_encoded_source(next_fun, args, kwargs, context):
      if isinstance(context.module, Encoder) and context.method_name == "__call__":
        if kwargs.get("stop_after_coarsest_first_block"):
          raise ValueError("the exported generator holds no driving-frame encoder pass")
        return encoded
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(use_encoded_source):
      output = reenact(estimator, generator, variables, source, kp_source=kp_source,
                       kp_driving=kp_driving).output
    grid = output.flows[-1]
    identity = coordinate_grid(grid.shape[1], grid.shape[2])[None]
    return output.image, grid - identity, output.occlusions[-1]

  flow_side = generator.flow_size
  source_spec = _image_spec("source", size, "the source image")
  graphs = [
      Graph(KEYPOINTS, detect_keypoints,
            inputs=(_image_spec("image", size, "frames whose keypoints to detect"),),
            outputs=_keypoint_specs("", num_keypoints, with_jacobian, "each image"),
            description="keypoints of images: once for the source, once per driving frame"),
      Graph(SOURCE_ENCODER, encode_source, inputs=(source_spec,), outputs=feature_specs,
            description="the generator encoder's features of the source: once per source"),
      Graph(GENERATOR, generate,
            inputs=((source_spec,) + feature_specs
                    + _keypoint_specs("source_", num_keypoints, with_jacobian, "the source")
                    + _keypoint_specs("driving_", num_keypoints, with_jacobian,
                                      "the pose to generate (after relative motion)")),
            outputs=(
                _float("image", (size, size, 3), MODEL_RANGE,
                       "the generated frame, NHWC RGB, nominally in [-1, 1] (not clipped): "
                       "uint8 pixels as round((clip(y, -1, 1) + 1) * 127.5)"),
                _float("flow", (flow_side, flow_side, 2), None,
                       "the final refined displacement from the generated frame to the "
                       "source, (x, y) in normalised units (2 = the image side)"),
                _float("occlusion", (flow_side, flow_side, 1), (0.0, 1.0),
                       "the final occlusion map (1: visible in the source)")),
            description="one generated frame per row: dense motion, then the generator "
            "(once per driving frame; the source inputs repeated along the batch)"),
  ]
  return {graph.name: graph for graph in graphs}

