"""Animating with an ONNX export in onnxruntime: the interface of ``inference.Animator``.

:class:`OnnxAnimator` runs the three graphs of ``mcc-jax export --format onnx`` (see
:mod:`mcc_jax.export.graphs`) and computes the relative motion between them in numpy
(:mod:`mcc_jax.export.keypoint_motion`); no JAX function runs. It has the attributes and
methods of :class:`mcc_jax.inference.Animator` and returns the same types, so that the
animate pipeline takes either: the source is encoded once, keypoints are computed once
per frame, and each batch of driving frames is one generator call (any batch size: the
graphs' batch dimension is symbolic, nothing is padded).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from mcc_jax.export.keypoint_motion import transfer_relative_motion
from mcc_jax.export.manifest import ExportedModelError
from mcc_jax.export.manifest import Manifest
from mcc_jax.export.manifest import read_manifest
from mcc_jax.export.signatures import GENERATOR
from mcc_jax.export.signatures import KEYPOINTS
from mcc_jax.export.signatures import SOURCE_ENCODER
from mcc_jax.inference.animation import AnimatedBatch
from mcc_jax.inference.animation import to_model_range
from mcc_jax.inference.frame_batches import check_frames
from mcc_jax.inference.frame_batches import frame_batches
from mcc_jax.ops.keypoints import Keypoints


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] -> ``uint8``, clipped and rounded (halves to even) as the JAX animator does."""
  return np.round((np.clip(images, -1.0, 1.0) + 1.0) * np.float32(127.5)).astype(np.uint8)


class OnnxAnimator:
  """Generates frames of a source image moved like a driving video, in onnxruntime.

  Motion as :class:`mcc_jax.inference.Animator`'s: absolute or relative (with the
  hull-size ``adapt_scale``), anchored at a driving frame.

  Attributes:
    manifest: the export's :class:`~mcc_jax.export.manifest.Manifest`.
    image_size: side of the square frames the graphs read and write.
    description: the export's directory and where its weights came from, for logs.
  """

  def __init__(self, directory: str | pathlib.Path, *,
               providers: Sequence[str] = ("CPUExecutionProvider",),
               session_options=None):
    """Opens the export's graphs.

    Args:
      directory: a directory written by ``mcc-jax export --format onnx``.
      providers: onnxruntime execution providers, in order of preference.
      session_options: ``onnxruntime.SessionOptions`` (threads, optimisation level).

    Raises:
      ExportedModelError: the directory, its manifest or a graph's file is missing, the
        export is not ONNX, or a graph's inputs or outputs are not those the manifest
        names.
    """
    import onnxruntime  # pylint: disable=import-outside-toplevel

    directory = pathlib.Path(directory)
    self.manifest: Manifest = read_manifest(directory, expected_format="onnx")
    self.image_size = self.manifest.image_size
    self.description = f"{directory} (ONNX export of {self.manifest.weights})"
    self._sessions = {}
    for name, entry in self.manifest.graphs.items():
      path = directory / entry.file
      try:
        session = onnxruntime.InferenceSession(str(path), sess_options=session_options,
                                               providers=list(providers))
      except Exception as error:  # onnxruntime raises its own exception types.
        raise ExportedModelError(f"{path}: onnxruntime cannot load it ({error})") from error
      for what, expected, found in (
          ("inputs", [s.name for s in entry.inputs], [i.name for i in session.get_inputs()]),
          ("outputs", [s.name for s in entry.outputs],
           [o.name for o in session.get_outputs()])):
        if expected != found:
          raise ExportedModelError(f"{path}: {what} {found}; the manifest names {expected}")
      self._sessions[name] = session
    self._feature_names = [spec.name for spec in self.manifest.graphs[SOURCE_ENCODER].outputs]
    self._with_jacobian = len(self.manifest.graphs[KEYPOINTS].outputs) == 2

  def _run(self, name: str, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    entry = self.manifest.graphs[name]
    feed = {spec.name: np.ascontiguousarray(array, np.float32)
            for spec, array in zip(entry.inputs, inputs)}
    return self._sessions[name].run(None, feed)

  def _detect(self, frames: np.ndarray) -> Keypoints:
    outputs = self._run(KEYPOINTS, [to_model_range(frames)])
    return Keypoints(outputs[0], outputs[1] if self._with_jacobian else None)

  def _check_frames(self, frames: np.ndarray, what: str) -> np.ndarray:
    return check_frames(frames, self.image_size, what)

  def _batches(self, frames: np.ndarray | Iterable[np.ndarray], batch_size: int,
               what: str) -> Iterator[np.ndarray]:
    return frame_batches(frames, batch_size, self.image_size, what)

  def keypoints(self, frames: np.ndarray | Iterable[np.ndarray],
                batch_size: int = 8) -> Keypoints:
    """Keypoints of ``uint8`` (S, S, 3) frames (an array (T, S, S, 3) or any iterable of
    frames), as numpy (value (T, K, 2), jacobian (T, K, 2, 2) or None)."""
    parts = [self._detect(chunk)
             for chunk in self._batches(frames, batch_size, "OnnxAnimator.keypoints")]
    if not parts:
      raise ValueError("OnnxAnimator.keypoints: no frames")
    return Keypoints(np.concatenate([p.value for p in parts]),
                     None if parts[0].jacobian is None
                     else np.concatenate([p.jacobian for p in parts]))

  def animate(self, source: np.ndarray, driving: np.ndarray | Iterable[np.ndarray], *,
              relative: bool = True, adapt_scale: bool = True, anchor_index: int = 0,
              batch_size: int = 8, with_flow: bool = False,
              driving_keypoints: Keypoints | None = None) -> Iterator[AnimatedBatch]:
    """Generates the animation batch by batch; see :meth:`mcc_jax.inference.Animator.animate`
    (same arguments, same results up to float32 rounding).

    Yields:
      :class:`~mcc_jax.inference.AnimatedBatch` in frame order.

    Raises:
      ValueError: frames of the wrong shape, no driving frames, an anchor outside the
        video, or keypoints of another number of frames than ``driving`` holds.
    """
    if batch_size < 1:
      raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    source = self._check_frames(np.asarray(source)[None], "OnnxAnimator.animate source")
    known = (len(driving_keypoints.value) if driving_keypoints is not None
             else len(driving) if isinstance(driving, np.ndarray) else None)
    if known is not None and not 0 <= anchor_index < known:
      raise ValueError(f"anchor_index {anchor_index} is outside the {known} driving frames")
    if known is None and anchor_index != 0:
      raise ValueError(f"anchor_index {anchor_index}: streamed driving frames can only be "
                       f"anchored at frame 0 unless driving_keypoints are given")
    source_image = to_model_range(source)
    kp_source = self._detect(source)
    features = self._run(SOURCE_ENCODER, [source_image])
    kp_anchor = None
    if driving_keypoints is not None:
      kp_anchor = Keypoints(*(None if x is None else np.asarray(x[anchor_index:anchor_index + 1])
                              for x in driving_keypoints))
    elif isinstance(driving, np.ndarray):
      kp_anchor = self._detect(self._check_frames(
          driving, "OnnxAnimator.animate driving")[anchor_index:anchor_index + 1])
    repeated = {}  # batch size -> the source inputs repeated along the batch
    start = 0
    for chunk in self._batches(driving, batch_size, "OnnxAnimator.animate driving"):
      count = len(chunk)
      if driving_keypoints is not None:
        if start + count > known:
          raise ValueError(f"driving_keypoints cover {known} frames; the driving frames "
                           f"are more")
        kp_driving = Keypoints(*(None if x is None else np.asarray(x[start:start + count])
                                 for x in driving_keypoints))
      else:
        kp_driving = self._detect(chunk)
      if kp_anchor is None:
        kp_anchor = Keypoints(*(None if x is None else x[:1] for x in kp_driving))
      kp_new = transfer_relative_motion(
          kp_source, kp_driving, kp_anchor, use_relative_movement=relative,
          use_relative_jacobian=relative and kp_driving.jacobian is not None,
          adapt_movement_scale=adapt_scale)
      if count not in repeated:
        repeated[count] = [np.repeat(x, count, axis=0)
                           for x in [source_image, *features, *_arrays(kp_source)]]
      image, flow, occlusion = self._run(GENERATOR, repeated[count] + _arrays(kp_new))
      yield AnimatedBatch(start=start, frames=to_uint8(image),
                          flow=flow if with_flow else None,
                          occlusion=occlusion if with_flow else None, driving=chunk)
      start += count
    if start == 0:
      raise ValueError("OnnxAnimator.animate: no driving frames")
    if known is not None and start != known:
      raise ValueError(f"driving_keypoints cover {known} frames; the driving frames are "
                       f"{start}")


def _arrays(kp: Keypoints) -> list[np.ndarray]:
  """The keypoint inputs of the generator: value, then jacobian when there is one."""
  return [kp.value] + ([] if kp.jacobian is None else [kp.jacobian])
