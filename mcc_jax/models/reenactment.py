"""The whole model's forward pass: the motion estimator, then the generator.

Every caller that turns a source image and a motion into a generated frame goes through
:func:`reenact`: the training step, the trainer's previews and evaluation, inference,
the benchmarks and the parity tools. The motion comes in one of two forms:

* a driving frame (``driving``): the keypoints of both frames are detected (driving
  first, as the official code does, so that BatchNorm running statistics update in its
  order) and the dense motion maps the source onto the driving frame; this is training
  and reconstruction;
* keypoints (``kp_source`` and ``kp_driving``): the dense motion between them, e.g.
  after relative motion transfer (:func:`mcc_jax.ops.transfer_relative_motion`) when
  animating another person's photo.

In training mode the motion estimator's BatchNorm layers use batch statistics, per
group of ``batch_norm_group_size`` examples (:mod:`mcc_jax.models.batch_groups`), and
return their new running statistics; the generator also receives the driving frame,
whose features train the appearance codebook.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp

from mcc_jax.models.batch_groups import grouped_apply
from mcc_jax.models.dense_motion import DenseMotion
from mcc_jax.models.generator import Generator
from mcc_jax.models.generator import GeneratorOutput
from mcc_jax.models.motion_estimator import MotionEstimate
from mcc_jax.models.motion_estimator import MotionEstimator
from mcc_jax.ops.keypoints import Keypoints


class Reenactment(NamedTuple):
  """What one forward pass produced.

  Attributes:
    motion: the motion estimator's output: a :class:`MotionEstimate` (keypoints of both
      frames and the dense motion) when a driving frame was given, the
      :class:`~mcc_jax.models.dense_motion.DenseMotion` when keypoints were.
    output: the generator's :class:`GeneratorOutput` (``output.image`` is the frame).
    batch_stats: in training mode, the motion estimator's new ``batch_stats``
      collection; None otherwise.
    intermediates: the generator's ``intermediates`` collection when asked for, else None.
  """

  motion: Union[MotionEstimate, DenseMotion]
  output: GeneratorOutput
  batch_stats: Optional[Any]
  intermediates: Optional[Any]


def reenact(estimator: MotionEstimator, generator: Generator, variables: Mapping[str, Any],
            source: jax.Array, driving: jax.Array | None = None, *,
            kp_source: Keypoints | None = None, kp_driving: Keypoints | None = None,
            train: bool = False, batch_norm_group_size: int = 0,
            intermediates: bool = False) -> Reenactment:
  """Generates the driving frame (or the frame of ``kp_driving``) from ``source``.

  Args:
    estimator: the motion estimator.
    generator: the generator.
    variables: ``{'motion_estimator': {'params', 'batch_stats'}, 'generator':
      {'params'}}`` (Flax variables of each network).
    source: (B, S, S, 3) source images in [-1, 1].
    driving: (B, S, S, 3) driving images in [-1, 1]; the motion is estimated from the
      two frames. Needed in training mode.
    kp_source: keypoints of the source; with ``kp_driving``, the motion between them is
      used instead of a driving frame's.
    kp_driving: the keypoints to move the source to (B, K, 2) (and jacobians).
    train: training mode (BatchNorm batch statistics; the driving frame reaches the
      generator).
    batch_norm_group_size: in training mode, examples per BatchNorm group (0: the whole
      batch).
    intermediates: also return the generator's ``intermediates`` collection.

  Returns:
    :class:`Reenactment`.

  Raises:
    ValueError: when neither a driving frame nor both keypoint sets are given, or in
      training mode without a driving frame.
  """
  by_keypoints = kp_source is not None and kp_driving is not None
  if driving is None and not by_keypoints:
    raise ValueError("reenact needs a driving frame or both kp_source and kp_driving")
  if train and driving is None:
    raise ValueError("reenact in training mode needs the driving frame")
  estimator_vars = variables["motion_estimator"]
  if by_keypoints:
    inputs, method = (source, kp_source, kp_driving), MotionEstimator.estimate_dense_motion
  else:
    inputs, method = (source, driving), None
  if train:
    motion, batch_stats = grouped_apply(estimator, estimator_vars, *inputs, method=method,
                                        group_size=batch_norm_group_size, train=True)
  else:
    motion, batch_stats = estimator.apply(estimator_vars, *inputs, method=method,
                                          train=False), None
  generator_inputs = (source, motion.deformation, motion.occlusion, motion.driving_heatmaps)
  if train:
    generator_inputs += (driving,)
  if intermediates:
    output, collections = generator.apply(variables["generator"], *generator_inputs,
                                          train=train, mutable=["intermediates"])
    captured = collections["intermediates"]
  else:
    output, captured = generator.apply(variables["generator"], *generator_inputs,
                                       train=train), None
  return Reenactment(motion, output, batch_stats, captured)


def init_variables(estimator: MotionEstimator, generator: Generator, image_size: int,
                   key_motion: jax.Array, key_generator: jax.Array, *, train: bool
                   ) -> dict[str, Any]:
  """Initial variables of both networks (PyTorch's initialisation, see the modules).

  The generator is initialised on the dense motion the freshly initialised estimator
  computes for a blank frame. In training mode it holds every parameter a training
  run has (the motion-reconstruction decoders too); otherwise only what inference uses.
  Wrap it in ``jax.eval_shape`` for the shapes alone.

  Args:
    estimator: the motion estimator.
    generator: the generator.
    image_size: S, the side of the frames.
    key_motion: PRNG key of the estimator's parameters.
    key_generator: PRNG key of the generator's parameters.
    train: initialise the generator's training-only parameters too.

  Returns:
    ``{'motion_estimator': {'params', 'batch_stats'}, 'generator': {'params'}}``.
  """
  image = jnp.zeros((1, image_size, image_size, 3))
  motion_vars = estimator.init(key_motion, image, image, train=False)
  motion = estimator.apply(motion_vars, image, image, train=False)
  generator_vars = generator.init(key_generator, image, motion.deformation, motion.occlusion,
                                  motion.driving_heatmaps, image if train else None,
                                  train=train)
  return {"motion_estimator": motion_vars, "generator": generator_vars}
