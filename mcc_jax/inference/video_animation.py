"""Animating a source image file with a driving video file, written as an mp4.

:func:`animate_video` is what ``mcc-jax animate`` and ``mcc-jax demo`` run. It takes
any *animator*: an object with ``image_size``, ``description``, ``keypoints(frames,
batch_size)`` and ``animate(source, driving, ...)`` yielding
:class:`~mcc_jax.inference.animation.AnimatedBatch` (:class:`~mcc_jax.inference.Animator`
runs the JAX model; the exported graphs have their own).

The driving video is streamed: decoding, inference and encoding go batch by batch, and
no pass holds the video, so memory does not grow with its length. Passes over the file,
each with a tqdm progress bar: ``faces`` (``crop="face"``: detection, for one box over
the clip), ``keypoints`` (``find_best_frame`` or ``best_frame``: the anchor must be
known before the first frame is generated), then ``animate``. The output is written to
a temporary file and appears under its name only when complete.
"""

from __future__ import annotations

import collections
import dataclasses
import fractions
import itertools
import os
import pathlib
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

CROPS = ("center", "face")


class AnimationError(ValueError):
  """Invalid options or inputs; the message says what was wrong and what was expected."""


@dataclasses.dataclass(frozen=True)
class AnimationOptions:
  """How a driving video moves the source (the options of ``mcc-jax animate``).

  Attributes:
    relative: move the source's keypoints by the driving keypoints' displacement from
      an anchor frame (for animating another person); False: to the driving keypoints.
    adapt_scale: with relative motion, scale the displacement by the ratio of the
      keypoint hulls' sizes.
    find_best_frame: anchor relative motion at the driving frame whose keypoints are
      shaped most like the source's (default: the first frame).
    best_frame: anchor relative motion at this driving frame.
    crop: "center" (the centred square) or "face" (a stable square around the face).
    side_by_side: write source | driving | result.
    show_flow: add the final flow (colour wheel) and the occlusion overlay.
    batch_size: frames per compiled call.
    max_frames: use only the first N driving frames.
    crf: x264 quality (0 lossless .. 51).
  """

  relative: bool = True
  adapt_scale: bool = True
  find_best_frame: bool = False
  best_frame: int | None = None
  crop: str = "center"
  side_by_side: bool = False
  show_flow: bool = False
  batch_size: int = 8
  max_frames: int | None = None
  crf: int = 18

  def check(self) -> None:
    """Raises :class:`AnimationError` naming the first invalid option."""
    if self.crop not in CROPS:
      raise AnimationError(f"crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
    if self.batch_size < 1:
      raise AnimationError(f"batch size must be at least 1, got {self.batch_size}")
    if self.max_frames is not None and self.max_frames < 1:
      raise AnimationError(f"max frames must be at least 1, got {self.max_frames}")
    if self.find_best_frame and self.best_frame is not None:
      raise AnimationError("give find_best_frame or best_frame, not both")
    if self.best_frame is not None and self.best_frame < 0:
      raise AnimationError(f"best frame must be a frame index (>= 0), got {self.best_frame}")
    if not 0 <= self.crf <= 51:
      raise AnimationError(f"crf must be in 0..51, got {self.crf}")


class AnimationResult(NamedTuple):
  """What :func:`animate_video` wrote: the path, its frame count and frame rate."""

  output: pathlib.Path
  frames: int
  fps: fractions.Fraction


def check_paths(source: os.PathLike, driving: os.PathLike, output: os.PathLike) -> None:
  """Raises :class:`AnimationError` unless the inputs exist and the output can be written."""
  output = pathlib.Path(output)
  if output.suffix.lower() != ".mp4":
    raise AnimationError(f"output {output}: expected a path ending in .mp4")
  if not output.parent.is_dir():
    raise AnimationError(f"output {output}: cannot be written, the directory "
                         f"{output.parent} does not exist")
  for what, path in (("source", source), ("driving", driving)):
    if not pathlib.Path(path).is_file():
      raise AnimationError(f"{what} {path}: no such file")


def _longest_face_box(detections, frame_shape, what: str):
  """A stable square box around the longest face tube of per-frame detections."""
  from mcc_jax.faces import crop  # pylint: disable=import-outside-toplevel

  # Any detection overlapping the first one extends the box (IoU > 0 rather than the
  # dataset recipe's 0.25): one box for the whole clip, so the head stays inside it.
  best = crop.longest_crop(crop.plan_crops(detections, frame_shape, iou_threshold=0.0))
  if best is None:
    raise AnimationError(f"{what}: no face found for the face crop; use the center crop")
  return best.box


def _source_face_box(image: np.ndarray, what: str, log: Callable[[str], Any]):
  """The face box of the source image (every detector stage, the CNN included)."""
  from mcc_jax import faces  # pylint: disable=import-outside-toplevel

  found = faces.find_faces(image)
  if found.detector != "none":
    log(f"source face found by the {found.detector} detector")
  return _longest_face_box([found.boxes], image.shape[:2], what)


def _stream(driving: pathlib.Path, transform, info, max_frames: int | None,
            desc: str) -> Iterator[Any]:
  """The driving frames, decoded one at a time and transformed, with a progress bar."""
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel

  from mcc_jax import media  # pylint: disable=import-outside-toplevel

  frames = media.iterate_frames(driving)
  total = info.frame_count
  if max_frames is not None:
    frames = itertools.islice(frames, max_frames)
    total = max_frames if total is None else min(total, max_frames)
  count = 0
  with tqdm(total=total, unit="frame", desc=desc) as progress:
    for frame in frames:
      yield transform(frame)
      count += 1
      progress.update(1)
  if count == 0:
    raise media.MediaError(driving, "contains no frames (an empty video)")


def _driving_face_box(driving: pathlib.Path, info, max_frames: int | None,
                      log: Callable[[str], Any]):
  """One stable square face box over the whole driving video: a detection pass that
  keeps only each frame's boxes. HOG only (on the 640-px copy, then at full resolution
  where that finds nothing): the CNN stage, seconds per frame, would run on every frame
  where the face is turned away."""
  from mcc_jax import faces  # pylint: disable=import-outside-toplevel

  found_by = collections.Counter()

  def detect(frame):
    found = faces.find_faces(frame, cnn=False)
    found_by[found.detector] += 1
    return found.boxes

  box = _longest_face_box(_stream(driving, detect, info, max_frames, "faces"),
                          info.source_size, str(driving))
  total = sum(found_by.values())
  log(f"driving faces found in {total - found_by['none']} of {total} frames (hog "
      f"{found_by['hog']}, hog-full-resolution {found_by['hog-full-resolution']})")
  return box


def animate_video(animator, source: os.PathLike, driving: os.PathLike,
                  output: os.PathLike, options: AnimationOptions = AnimationOptions(), *,
                  log: Callable[[str], Any] = print) -> AnimationResult:
  """Animates the image file ``source`` with the video file ``driving`` into ``output``.

  Args:
    animator: :class:`~mcc_jax.inference.Animator` or another object with its interface.
    source: the source image (JPEG, PNG, WebP, ...; any size).
    driving: the driving video (mp4, mov, webm, avi, gif, ...; any size).
    output: the .mp4 to write (H.264 at the driving video's frame rate, one frame per
      driving frame).
    options: how the driving video moves the source.
    log: receives one line per step (what was found, what was written).

  Returns:
    The path written, its frame count and frame rate.

  Raises:
    AnimationError: an invalid option, a missing input, an unwritable output, no face.
    mcc_jax.media.MediaError: an input that cannot be decoded.
  """
  from mcc_jax import media  # pylint: disable=import-outside-toplevel
  from mcc_jax.visualization import panels  # pylint: disable=import-outside-toplevel

  options.check()
  source, driving, output = map(pathlib.Path, (source, driving, output))
  check_paths(source, driving, output)
  if options.crop == "face":
    from mcc_jax import extras  # pylint: disable=import-outside-toplevel

    extras.require("faces", "the face crop")
  size = animator.image_size
  image = media.read_image(source)
  info = media.probe_video(driving)
  if options.crop == "face":
    source_frame = media.crop_and_resize(image, _source_face_box(image, str(source), log),
                                         size)
    box = _driving_face_box(driving, info, options.max_frames, log)
  else:
    source_frame, box = media.crop_and_resize(image, None, size), None
  stated = (f"{info.frame_count} frames" if info.frame_count is not None
            else "frames (count not stated in the file)")
  log(f"driving: {driving}, {stated} at {float(info.fps):.3f} fps, "
      f"{info.source_size[1]}x{info.source_size[0]} -> {size}x{size} ({options.crop} crop)")

  def to_model_size(frame):
    return media.crop_and_resize(frame, box, size)

  def stream(desc):
    return _stream(driving, to_model_size, info, options.max_frames, desc)

  keypoints, anchor = None, 0
  if options.best_frame is not None or options.find_best_frame:
    keypoints = animator.keypoints(stream("keypoints"), batch_size=options.batch_size)
    if options.best_frame is not None:
      if options.best_frame >= len(keypoints.value):
        raise AnimationError(f"best frame {options.best_frame}: the driving video has "
                             f"{len(keypoints.value)} frames")
      anchor = options.best_frame
    else:
      from mcc_jax.inference.best_frame import find_best_frame  # pylint: disable=import-outside-toplevel

      source_keypoints = animator.keypoints(source_frame[None], batch_size=1)
      anchor = find_best_frame(source_keypoints.value[0], keypoints.value)
      log(f"best frame: {anchor}")
  batches = animator.animate(source_frame, stream("animate"), relative=options.relative,
                             adapt_scale=options.adapt_scale, anchor_index=anchor,
                             batch_size=options.batch_size, with_flow=options.show_flow,
                             driving_keypoints=keypoints)
  with media.VideoWriter(output, info.fps, crf=options.crf) as writer:
    for batch in batches:
      columns = [source_frame, batch.driving] if options.side_by_side else []
      columns.append(batch.frames)
      if options.show_flow:
        columns += list(panels.flow_panels(batch.frames, batch.flow, batch.occlusion))
      writer.write(panels.side_by_side(*columns))
  log(f"wrote {output}: {writer.frames_written} frames at {float(info.fps):.3f} fps")
  return AnimationResult(output, writer.frames_written, info.fps)
