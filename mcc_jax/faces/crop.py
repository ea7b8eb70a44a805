"""Stable square crops around a face, following the video-preprocessing recipe.

The recipe takes the union of a face tube's detections, enlarges it by ``increase``
(0.1) of its size on every side, widening the narrower side further so that the box
becomes square: the enlarged box is ``(1 + 2 * increase) * max(w, h)`` on each side,
centred on the union. It then clamps the box to the frame, which makes boxes near an
edge non-square. The model needs square input, so :func:`square_face_box` keeps the
square and instead

* shifts it inside the frame when it fits (no invented pixels; the face moves a little
  off centre), and
* where it is larger than the frame, lets it cover the whole frame in that direction,
  as close to centred on the face as that allows; the part outside is filled by
  repeating the border pixels (:func:`mcc_jax.media.crop_and_resize` pads so, and the
  ffmpeg commands of :func:`ffmpeg_command` do the same).

Either way the square contains the whole (in-frame) union of the detections.
"""

from __future__ import annotations

import dataclasses
import fractions
import math
import os
import shlex
from typing import Iterable, Sequence

import numpy as np

from mcc_jax.faces import tracking

# A square crop box in pixels: (left, top, right, bottom), right and bottom exclusive.
Box = tuple[int, int, int, int]

# Missed detections that a tube survives (see tracking.TubeTracker). The recipe ends a
# tube at the first frame without a match (0); bridging a few frames keeps one blurred
# frame from splitting a shot in two.
DEFAULT_MAX_GAP = 5


def square_face_box(tube_box: Sequence[float], frame_shape: Sequence[int],
                    increase: float = 0.1) -> Box:
  """The recipe's enlarged crop box of a face tube, made exactly square.

  Args:
    tube_box: ``(left, top, right, bottom)``, e.g. the union of a tube's detections;
      parts outside the frame are ignored.
    frame_shape: ``(H, W)`` or ``(H, W, C)`` of the frames.
    increase: the margin added on each side, as a fraction of the box's longer side.

  Returns:
    Integer ``(left, top, right, bottom)`` with ``right - left == bottom - top ==
    round((1 + 2 * increase) * max(w, h))`` (one or two pixels more where rounding
    would cut into the box), containing the clipped ``tube_box``; inside the frame
    where the side fits, otherwise covering the frame in that direction (see the
    module docstring).

  Raises:
    ValueError: a negative ``increase``, or a box with no area inside the frame.
  """
  if increase < 0:
    raise ValueError(f"square_face_box: increase must be >= 0, got {increase}")
  height, width = int(frame_shape[0]), int(frame_shape[1])
  left, top, right, bottom = (float(v) for v in tube_box)
  left, right = max(left, 0.0), min(right, float(width))
  top, bottom = max(top, 0.0), min(bottom, float(height))
  if right <= left or bottom <= top:
    raise ValueError(f"square_face_box: the box {tuple(tube_box)} has no area inside a "
                     f"{width}x{height} frame")
  # The rounding terms keep the clipped box inside the integer square.
  side = max(round((1 + 2 * increase) * max(right - left, bottom - top)),
             math.ceil(right) - math.floor(left), math.ceil(bottom) - math.floor(top))

  def place(low: float, high: float, extent: int) -> int:
    start = round((low + high - side) / 2)
    start = min(max(start, math.ceil(high) - side), math.floor(low))  # contain the box
    return min(max(start, min(0, extent - side)), max(0, extent - side))  # fit the frame

  left_out, top_out = place(left, right, width), place(top, bottom, height)
  return left_out, top_out, left_out + side, top_out + side


@dataclasses.dataclass(frozen=True)
class FaceCrop:
  """One face tube and its square crop.

  Attributes:
    start: first frame of the tube.
    stop: one past its last frame.
    tube_box: ``(left, top, right, bottom)``, the union of the tube's detections.
    box: the square crop box, see :func:`square_face_box`.
  """

  start: int
  stop: int
  tube_box: tuple[float, float, float, float]
  box: Box

  @property
  def num_frames(self) -> int:
    return self.stop - self.start

  def time_span(self, fps) -> tuple[float, float]:
    """``(start_s, duration_s)`` selecting exactly frames ``[start, stop)`` of a
    constant-rate video (for ffmpeg's ``-ss`` and ``-t``).

    The window runs from half a frame before the first frame to half a frame before
    the frame after the last, so that rounding the times to the printed digits or to
    the stream's time base can neither drop a frame nor add one.
    """
    fps = fractions.Fraction(fps)
    half = fractions.Fraction(1, 2)
    start = max(fractions.Fraction(0), self.start - half) / fps
    return float(start), float((self.stop - half) / fps - start)


def plan_crops(detections: Iterable, frame_shape: Sequence[int], *, increase: float = 0.1,
               iou_threshold: float = 0.25, min_frames: int = 1,
               max_gap: int = DEFAULT_MAX_GAP) -> list[FaceCrop]:
  """Tubes of faces through a video and their square crops.

  Args:
    detections: one ``(N_t, 4)`` array of boxes per frame (e.g. from
      :func:`mcc_jax.faces.detect_faces`), frame 0 first.
    frame_shape: ``(H, W)`` of the frames.
    increase: see :func:`square_face_box`.
    iou_threshold: see :class:`mcc_jax.faces.tracking.TubeTracker`.
    min_frames: tubes with fewer frames are dropped.
    max_gap: see :class:`mcc_jax.faces.tracking.TubeTracker`.

  Returns:
    One :class:`FaceCrop` per tube of at least ``min_frames`` frames, ordered by start.
  """
  tubes = tracking.track_faces(detections, iou_threshold, max_gap)
  return crops_of_tubes(tubes, frame_shape, increase=increase, min_frames=min_frames)


def crops_of_tubes(tubes: Iterable[tracking.Tube], frame_shape: Sequence[int], *,
                   increase: float = 0.1, min_frames: int = 1) -> list[FaceCrop]:
  """:class:`FaceCrop` of each tube of at least ``min_frames`` frames, by start."""
  return [FaceCrop(tube.start, tube.stop, tuple(float(v) for v in tube.box),
                   square_face_box(tube.box, frame_shape, increase))
          for tube in sorted(tubes, key=lambda tube: tube.start)
          if tube.num_frames >= min_frames]


def longest_crop(crops: Sequence[FaceCrop]) -> FaceCrop | None:
  """The crop of the longest tube (the earliest among equals), or None if none."""
  if not crops:
    return None
  return max(crops, key=lambda crop: (crop.num_frames, -crop.start))


def face_crop_box(frames: np.ndarray, increase: float = 0.1, *,
                  iou_threshold: float = 0.25, max_gap: int = DEFAULT_MAX_GAP,
                  upsample: int | None = None) -> Box | None:
  """One stable square face box for a whole clip (or a single image).

  Faces are detected in every frame and joined into tubes; the box is the square
  enlargement of the union over the longest tube, so the head keeps inside it while
  it moves.

  Args:
    frames: ``uint8`` ``(T, H, W, 3)`` frames, or one ``(H, W, 3)`` image.
    increase: see :func:`square_face_box`.
    iou_threshold: see :class:`mcc_jax.faces.tracking.TubeTracker`.
    max_gap: see :class:`mcc_jax.faces.tracking.TubeTracker`.
    upsample: see :func:`mcc_jax.faces.detect_faces`.

  Returns:
    ``(left, top, right, bottom)`` in pixels of the frames (possibly reaching past
    their edges, for :func:`mcc_jax.media.crop_and_resize`), or None when no frame
    shows a face.

  Raises:
    ValueError: ``frames`` is not ``uint8`` ``(T, H, W, 3)`` or ``(H, W, 3)``.
    FaceModelsError: dlib cannot be loaded.
  """
  from mcc_jax.faces import dlib_models  # pylint: disable=import-outside-toplevel

  frames = np.asarray(frames)
  if frames.ndim == 3:
    frames = frames[None]
  if frames.ndim != 4 or frames.dtype != np.uint8 or frames.shape[-1] != 3:
    raise ValueError(f"face_crop_box: expected uint8 (T, H, W, 3) frames or an (H, W, 3) "
                     f"image, got {frames.dtype} {frames.shape}")
  detections = [dlib_models.detect_faces(frame, upsample) for frame in frames]
  crop = longest_crop(plan_crops(detections, frames.shape[1:3], increase=increase,
                                 iou_threshold=iou_threshold, max_gap=max_gap))
  return None if crop is None else crop.box


def _ffmpeg_filter(box: Sequence[int], size: int, frame_shape: Sequence[int] | None) -> str:
  left, top, right, bottom = (int(v) for v in box)
  filters = []
  if frame_shape is not None:
    height, width = int(frame_shape[0]), int(frame_shape[1])
    pad_left, pad_top = max(0, -left), max(0, -top)
    pad_right, pad_bottom = max(0, right - width), max(0, bottom - height)
    if pad_left or pad_top or pad_right or pad_bottom:
      # pad, then smear the border pixels into the padding (as crop_and_resize does);
      # in planar RGB, so that odd offsets are exact.
      filters += [
          "format=gbrp",
          f"pad={width + pad_left + pad_right}:{height + pad_top + pad_bottom}:"
          f"{pad_left}:{pad_top}",
          f"fillborders=left={pad_left}:right={pad_right}:top={pad_top}:"
          f"bottom={pad_bottom}:mode=smear",
      ]
      left, right, top, bottom = (left + pad_left, right + pad_left, top + pad_top,
                                  bottom + pad_top)
  filters += [f"crop={right - left}:{bottom - top}:{left}:{top}", f"scale={size}:{size}"]
  if filters[0] == "format=gbrp":
    filters.append("format=yuv420p")  # Playable everywhere, like the rest of the output.
  return ",".join(filters)


def _seconds(value: float) -> str:
  return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def ffmpeg_command(input_path: str | os.PathLike, start_s: float, duration_s: float,
                   box: Sequence[int], size: int, output_path: str | os.PathLike,
                   frame_shape: Sequence[int] | None = None) -> str:
  """The ffmpeg command line that cuts one face tube out of a video.

  The recipe's command, with the seek placed before ``-i`` (see the comment below).

  Args:
    input_path: the video.
    start_s: where the cut starts, seconds (see :meth:`FaceCrop.time_span`).
    duration_s: its length, seconds.
    box: ``(left, top, right, bottom)`` crop box in pixels of the video.
    size: side of the output frames.
    output_path: the video to write.
    frame_shape: ``(H, W)`` of the video; needed only when ``box`` reaches past its
      edges, which are then padded by repeating the border pixels.

  Returns:
    ``ffmpeg -ss START -t DURATION -i INPUT -filter:v "crop=W:H:LEFT:TOP,scale=S:S"
    OUTPUT``, with paths and filter quoted for a POSIX shell.

  Raises:
    ValueError: an empty box, a box outside the frame without ``frame_shape``, or a
      size below 1.
  """
  left, top, right, bottom = (int(v) for v in box)
  if right <= left or bottom <= top:
    raise ValueError(f"ffmpeg_command: empty box {tuple(box)}")
  if size < 1:
    raise ValueError(f"ffmpeg_command: size must be positive, got {size}")
  if frame_shape is None and (left < 0 or top < 0):
    raise ValueError(f"ffmpeg_command: the box {tuple(box)} reaches past the frame; pass "
                     f"frame_shape to pad it")
  # -ss and -t before -i select by the input's timestamps (and seek fast); after it, as
  # the recipe prints them, they count in output timestamps, which are snapped to the
  # frame rate, and a start between two frames loses the last frame.
  return (f"ffmpeg -ss {_seconds(start_s)} -t {_seconds(duration_s)} "
          f"-i {shlex.quote(os.fspath(input_path))} -filter:v "
          f"{shlex.quote(_ffmpeg_filter(box, size, frame_shape))} "
          f"{shlex.quote(os.fspath(output_path))}")
