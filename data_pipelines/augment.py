"""Training augmentations of a (source, driving) pair, as TensorFlow graph ops.

FOMM's ``AllAugmentationTransform`` transforms the whole clip with one set of random
parameters: a horizontal flip and a time flip (each with probability 1/2; for a pair
the time flip swaps source and driving) and, optionally, torchvision-style colour
jitter whose four adjustments are applied in a random order. All randomness here is
stateless, from a per-element seed, so results do not depend on parallelism.
"""

from __future__ import annotations

from typing import Mapping

import tensorflow as tf

# Number of independent random streams one pair uses (flip, time flip, jitter).
_NUM_STREAMS = 3


def _grayscale(images: tf.Tensor) -> tf.Tensor:
  # ITU-R 601-2 luma, as Pillow's "L" conversion and torchvision use.
  weights = tf.constant([0.299, 0.587, 0.114], images.dtype)
  return tf.reduce_sum(images * weights, axis=-1, keepdims=True)


def color_jitter(frames: tf.Tensor, seed: tf.Tensor, *, brightness: float,
                 contrast: float, saturation: float, hue: float) -> tf.Tensor:
  """Applies the same random colour jitter to every frame.

  Factors are drawn as in torchvision's ``ColorJitter.get_params``: brightness,
  contrast and saturation uniformly in ``[max(0, 1 - s), 1 + s]``, the hue shift in
  ``[-hue, hue]`` turns; the four adjustments run in a random order, each clipped to
  [0, 1].

  Args:
    frames: float32 ``(N, H, W, 3)`` in [0, 1].
    seed: int64 ``(2,)`` stateless seed.
    brightness: maximum relative brightness change.
    contrast: maximum relative contrast change.
    saturation: maximum relative saturation change.
    hue: maximum hue shift, in [0, 0.5].

  Returns:
    float32 ``(N, H, W, 3)`` in [0, 1].
  """
  seeds = tf.random.experimental.stateless_split(seed, num=5)

  def factor(stream: tf.Tensor, strength: float) -> tf.Tensor:
    return tf.random.stateless_uniform([], stream, max(0.0, 1.0 - strength),
                                       1.0 + strength)

  brightness_factor = factor(seeds[0], brightness)
  contrast_factor = factor(seeds[1], contrast)
  saturation_factor = factor(seeds[2], saturation)
  hue_shift = tf.random.stateless_uniform([], seeds[3], -hue, hue)
  order = tf.argsort(tf.random.stateless_uniform([4], seeds[4]))

  def adjust_brightness(x):
    return x * brightness_factor

  def adjust_contrast(x):
    mean = tf.reduce_mean(_grayscale(x), axis=[1, 2, 3], keepdims=True)
    return mean + (x - mean) * contrast_factor

  def adjust_saturation(x):
    gray = _grayscale(x)
    return gray + (x - gray) * saturation_factor

  def adjust_hue(x):
    return tf.image.adjust_hue(x, hue_shift)

  branches = [adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue]
  for step in range(4):
    frames = tf.switch_case(order[step], [lambda f=f: f(frames) for f in branches])
    frames = tf.clip_by_value(frames, 0.0, 1.0)
  return frames


def augment_pair(frames: tf.Tensor, seed: tf.Tensor, *, horizontal_flip: bool,
                 time_flip: bool, use_color_jitter: bool,
                 jitter: Mapping[str, float]) -> tf.Tensor:
  """Augments a pair of frames with shared random parameters.

  Flips only move pixels, so without colour jitter the frames keep their uint8
  values; colour jitter works on floats in [0, 1], and its result is returned as such
  (rounding it back to 8 bits would change the numbers).

  Args:
    frames: uint8 ``(2, S, S, 3)``: source then driving.
    seed: int64 ``(2,)`` stateless seed of this element.
    horizontal_flip: flip both frames left-right with probability 1/2.
    time_flip: swap the two frames with probability 1/2.
    use_color_jitter: apply `color_jitter` with the strengths in `jitter`.
    jitter: ``brightness``, ``contrast``, ``saturation`` and ``hue`` strengths.

  Returns:
    uint8 ``(2, S, S, 3)``, or float32 in [0, 1] with `use_color_jitter`.
  """
  streams = tf.random.experimental.stateless_split(seed, num=_NUM_STREAMS)
  if horizontal_flip:
    flip = tf.random.stateless_uniform([], streams[0]) < 0.5
    frames = tf.cond(flip, lambda: tf.reverse(frames, axis=[2]), lambda: frames)
  if time_flip:
    swap = tf.random.stateless_uniform([], streams[1]) < 0.5
    frames = tf.cond(swap, lambda: tf.reverse(frames, axis=[0]), lambda: frames)
  if use_color_jitter:
    frames = color_jitter(tf.image.convert_image_dtype(frames, tf.float32), streams[2],
                          brightness=jitter["brightness"], contrast=jitter["contrast"],
                          saturation=jitter["saturation"], hue=jitter["hue"])
  return frames
