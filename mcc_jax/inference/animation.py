"""Animating a source image with driving frames: one jit-compiled batched function.

Driving frames may be an array or any iterable of frames (a decoder's stream): they are
taken batch by batch, so a video of any length animates in memory that does not grow
with it.
"""

from __future__ import annotations

import functools
from typing import Iterable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax.inference.frame_batches import check_frames
from mcc_jax.inference.frame_batches import frame_batches
from mcc_jax.inference.model_loading import LoadedModel
from mcc_jax.models.motion_estimator import MotionEstimator
from mcc_jax.models.reenactment import reenact
from mcc_jax.ops import coordinate_grid
from mcc_jax.ops.keypoints import Keypoints
from mcc_jax.ops.keypoints import transfer_relative_motion


class AnimatedBatch(NamedTuple):
  """One batch of generated frames.

  Attributes:
    start: index of the batch's first frame in the driving video.
    frames: ``uint8`` (B, S, S, 3) generated frames (only the real ones: the padding of
      a short last batch is removed).
    flow: (B, F, F, 2) the final refined displacement (normalised units, x then y)
      from the generated frame to the source, or None unless asked for.
    occlusion: (B, F, F, 1) the final occlusion map, or None unless asked for.
    driving: ``uint8`` (B, S, S, 3) the driving frames of the batch (what drove it).
  """

  start: int
  frames: np.ndarray
  flow: np.ndarray | None
  occlusion: np.ndarray | None
  driving: np.ndarray


def to_model_range(frames: np.ndarray) -> np.ndarray:
  """``uint8`` pixels -> float32 in [-1, 1], the model's input range."""
  return np.asarray(frames, np.float32) / 127.5 - 1.0


def to_uint8(images: jax.Array) -> jax.Array:
  """[-1, 1] -> ``uint8``, clipped and rounded as the official ``tensor2img``."""
  return jnp.round((jnp.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(jnp.uint8)


class Animator:
  """Generates frames of a source image moved like a driving video.

  Every call runs one of two compiled programs (keypoints of a batch; frames of a
  batch), each compiled once per batch size: a short last batch is padded.

  Motion, as FOMM's and the official demo's ``normalize_kp``:

  * absolute (``relative=False``): the source is moved to the driving keypoints;
    right for reconstruction, where source and driving show the same person;
  * relative: the source keypoints move by the driving keypoints' displacement from an
    anchor frame (and jacobians by ``J_d J_anchor^-1 J_s``); with ``adapt_scale`` the
    displacement is scaled by the ratio of the keypoint hulls' sizes. Right for
    animating another person's photo.
  """

  def __init__(self, model: LoadedModel):
    self.model = model
    self.variables = jax.device_put(model.variables)
    self.image_size = model.image_size
    self.description = model.description

  def _keypoints(self, variables, images) -> Keypoints:
    return _detect_keypoints(self.model.estimator, variables, images)

  def _generate(self, *args):
    return _generate_frames(self.model.estimator, self.model.generator, *args)

  def _check_frames(self, frames: np.ndarray, what: str) -> np.ndarray:
    return check_frames(frames, self.image_size, what)

  def _batches(self, frames: np.ndarray | Iterable[np.ndarray], batch_size: int,
               what: str) -> Iterator[np.ndarray]:
    return frame_batches(frames, batch_size, self.image_size, what)

  def _batch_keypoints(self, chunk: np.ndarray, batch_size: int) -> Keypoints:
    """Keypoints of a batch padded to ``batch_size`` (device arrays, padding kept)."""
    return self._keypoints(self.variables, jnp.asarray(to_model_range(_pad(chunk, batch_size))))

  def keypoints(self, frames: np.ndarray | Iterable[np.ndarray],
                batch_size: int = 8) -> Keypoints:
    """Keypoints of ``uint8`` (S, S, 3) frames (an array (T, S, S, 3) or any iterable of
    frames), as numpy (value (T, K, 2), jacobian (T, K, 2, 2) or None)."""
    parts = []
    for chunk in self._batches(frames, batch_size, "Animator.keypoints"):
      kp = self._batch_keypoints(chunk, batch_size)
      parts.append(jax.tree.map(lambda x, n=len(chunk): np.asarray(x)[:n], kp))
    if not parts:
      raise ValueError("Animator.keypoints: no frames")
    return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)

  def animate(self, source: np.ndarray, driving: np.ndarray | Iterable[np.ndarray], *,
              relative: bool = True, adapt_scale: bool = True, anchor_index: int = 0,
              batch_size: int = 8, with_flow: bool = False,
              driving_keypoints: Keypoints | None = None) -> Iterator[AnimatedBatch]:
    """Generates the animation batch by batch.

    Args:
      source: ``uint8`` (S, S, 3) source image at the model's size.
      driving: ``uint8`` driving frames at the model's size: an array (T, S, S, 3), or
        any iterable of (S, S, 3) frames, consumed one batch at a time (nothing but the
        current batch is held).
      relative: relative motion (see the class docstring); False: absolute.
      adapt_scale: with relative motion, scale it by the keypoint hulls' size ratio.
      anchor_index: the driving frame whose keypoints anchor relative motion (0, or the
        result of :func:`~mcc_jax.inference.best_frame.find_best_frame`). With streamed
        frames, an anchor other than 0 needs ``driving_keypoints`` (the anchor must be
        known before the first frame is generated).
      batch_size: frames per compiled call.
      with_flow: also return the final flow and occlusion of each frame.
      driving_keypoints: the driving frames' keypoints if already computed
        (:meth:`keypoints`), else they are computed batch by batch. For streamed frames
        without them, the anchor's keypoints are those of the first frame computed in
        the first batch.

    Yields:
      :class:`AnimatedBatch` in frame order.

    Raises:
      ValueError: frames of the wrong shape, no driving frames, an anchor outside the
        video, or keypoints of another number of frames than ``driving`` holds.
    """
    if batch_size < 1:
      raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    source = self._check_frames(np.asarray(source)[None], "Animator.animate source")
    known = (len(driving_keypoints.value) if driving_keypoints is not None
             else len(driving) if isinstance(driving, np.ndarray) else None)
    if known is not None and not 0 <= anchor_index < known:
      raise ValueError(f"anchor_index {anchor_index} is outside the {known} driving frames")
    if known is None and anchor_index != 0:
      raise ValueError(f"anchor_index {anchor_index}: streamed driving frames can only be "
                       f"anchored at frame 0 unless driving_keypoints are given")
    source = jnp.asarray(to_model_range(source))
    kp_source = self._keypoints(self.variables, source)
    kp_anchor = None
    if driving_keypoints is not None:
      kp_anchor = jax.tree.map(lambda x: jnp.asarray(x[anchor_index:anchor_index + 1]),
                               driving_keypoints)
    elif isinstance(driving, np.ndarray):
      kp_anchor = self._keypoints(
          self.variables,
          jnp.asarray(to_model_range(self._check_frames(
              driving, "Animator.animate driving")[anchor_index:anchor_index + 1])))
    start = 0
    for chunk in self._batches(driving, batch_size, "Animator.animate driving"):
      count = len(chunk)
      if driving_keypoints is not None:
        if start + count > known:
          raise ValueError(f"driving_keypoints cover {known} frames; the driving frames "
                           f"are more")
        kp_driving = jax.tree.map(lambda x: jnp.asarray(_pad(x[start:start + count], batch_size)),
                                  driving_keypoints)
      else:
        kp_driving = self._batch_keypoints(chunk, batch_size)
      if kp_anchor is None:
        kp_anchor = jax.tree.map(lambda x: x[:1], kp_driving)
      frames, flow, occlusion = self._generate(self.variables, source, kp_source, kp_anchor,
                                               kp_driving, relative, adapt_scale, with_flow)
      yield AnimatedBatch(
          start=start, frames=np.asarray(frames)[:count],
          flow=None if flow is None else np.asarray(flow)[:count],
          occlusion=None if occlusion is None else np.asarray(occlusion)[:count],
          driving=chunk)
      start += count
    if start == 0:
      raise ValueError("Animator.animate: no driving frames")
    if known is not None and start != known:
      raise ValueError(f"driving_keypoints cover {known} frames; the driving frames are "
                       f"{start}")


@functools.partial(jax.jit, static_argnums=0)
def _detect_keypoints(estimator, variables, images) -> Keypoints:
  return estimator.apply(variables["motion_estimator"], images, train=False,
                         method=MotionEstimator.detect_keypoints)


# The networks are static arguments (Flax modules hash by their configuration), so
# every Animator of the same configuration shares one compiled program.
@functools.partial(jax.jit, static_argnums=(0, 1, 7, 8, 9))
def _generate_frames(estimator, generator, variables, source, kp_source, kp_anchor, kp_driving,
                     relative: bool, adapt_scale: bool, with_flow: bool):
  """(uint8 frames, flow or None, occlusion or None) of one batch of driving keypoints."""
  batch = kp_driving.value.shape[0]
  tile = lambda x: jnp.broadcast_to(x, (batch,) + x.shape[1:])
  source = tile(source)
  kp_source = jax.tree.map(tile, kp_source)
  kp_anchor = jax.tree.map(tile, kp_anchor)
  kp_new = transfer_relative_motion(
      kp_source, kp_driving, kp_anchor, use_relative_movement=relative,
      use_relative_jacobian=relative and kp_driving.jacobian is not None,
      adapt_movement_scale=adapt_scale)
  out = reenact(estimator, generator, variables, source, kp_source=kp_source,
                kp_driving=kp_new).output
  frames = to_uint8(out.image)
  if not with_flow:
    return frames, None, None
  grid = out.flows[-1]
  identity = coordinate_grid(grid.shape[1], grid.shape[2])[None]
  return frames, grid - identity, out.occlusions[-1]


def _pad(array: np.ndarray, length: int) -> np.ndarray:
  """Pads the leading axis to ``length`` by repeating the last element."""
  array = np.asarray(array)
  if len(array) == length:
    return array
  return np.concatenate([array, np.repeat(array[-1:], length - len(array), axis=0)])
