"""Joining per-frame face detections into tubes, as the video-preprocessing recipe does.

A tube is one face followed through consecutive frames. A detection joins the live
tube whose *initial* box it overlaps most, with an intersection over union above a
threshold (0.25); a detection that joins none starts a new tube. Comparing with the
initial box rather than the latest one keeps a tube from drifting: a face that moves
too far from where it started begins a new tube, so one fixed crop suits every frame of
a tube. A tube ends when no detection has matched it for more than ``max_gap``
consecutive frames; ``max_gap=0`` is the recipe (the first frame without a match ends
it), a few frames bridge missed detections (motion blur, a hand before the face).

Pure numpy; boxes are ``(left, top, right, bottom)``.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
  """Intersection over union of two boxes.

  Args:
    a: ``(left, top, right, bottom)``.
    b: ``(left, top, right, bottom)``.

  Returns:
    A value in [0, 1]; 0 for disjoint or empty boxes.
  """
  left, top = max(a[0], b[0]), max(a[1], b[1])
  right, bottom = min(a[2], b[2]), min(a[3], b[3])
  intersection = max(0.0, right - left) * max(0.0, bottom - top)
  union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection)
  return float(intersection / union) if union > 0 else 0.0


@dataclasses.dataclass(frozen=True, eq=False)
class Tube:
  """One face followed through frames ``[start, stop)``.

  Attributes:
    start: index of the first frame with a detection.
    stop: one past the last frame with a matched detection (frames of a bridged gap
      inside count as part of the tube).
    initial_box: ``float64`` ``(4,)``, the first detection, which later ones are
      matched against.
    box: ``float64`` ``(4,)``, the union of all the tube's detections.
    detections: the number of frames that contributed a detection.
  """

  start: int
  stop: int
  initial_box: np.ndarray
  box: np.ndarray
  detections: int

  @property
  def num_frames(self) -> int:
    return self.stop - self.start


class _LiveTube:
  """A tube still being extended."""

  def __init__(self, frame_index: int, box: np.ndarray):
    self.start = frame_index
    self.last = frame_index
    self.initial_box = box
    self.box = box.copy()
    self.detections = 1
    self.matched_at = frame_index  # The frame whose detections last joined.

  def join(self, frame_index: int, box: np.ndarray) -> None:
    self.box = np.concatenate([np.minimum(self.box[:2], box[:2]),
                               np.maximum(self.box[2:], box[2:])])
    self.last = frame_index
    if self.matched_at != frame_index:
      self.detections += 1
      self.matched_at = frame_index

  def freeze(self) -> Tube:
    return Tube(self.start, self.last + 1, self.initial_box.copy(), self.box.copy(),
                self.detections)


def _as_boxes(boxes) -> np.ndarray:
  array = np.asarray(boxes, np.float64)
  if array.size == 0:
    return np.zeros((0, 4))
  if array.ndim != 2 or array.shape[1] != 4:
    raise ValueError(f"expected boxes of shape (N, 4) (left, top, right, bottom), got "
                     f"{array.shape}")
  return array


class TubeTracker:
  """Builds tubes frame by frame, so a long video never needs its detections at once.

  Example::

    tracker = TubeTracker()
    for index, frame in enumerate(frames):
      ended = tracker.update(index, detect_faces(frame))
    tubes = tracker.finish()  # plus every `ended` list
  """

  def __init__(self, iou_threshold: float = 0.25, max_gap: int = 0):
    """Args: iou_threshold: the overlap with a tube's initial box above which a
    detection joins it; max_gap: the most consecutive frames without a matching
    detection that a tube survives (0: the recipe)."""
    if not 0.0 <= iou_threshold < 1.0:
      raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
    if max_gap < 0:
      raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    self.iou_threshold = float(iou_threshold)
    self.max_gap = int(max_gap)
    self._live: list[_LiveTube] = []
    self._last_index = -1

  def update(self, frame_index: int, boxes) -> list[Tube]:
    """Adds one frame's detections.

    Args:
      frame_index: the frame's index; strictly increasing from call to call (frames
        may be skipped, e.g. when detecting on every other frame).
      boxes: ``(N, 4)`` detections of this frame (N may be 0).

    Returns:
      The tubes that ended before this frame, ordered by start.
    """
    if frame_index <= self._last_index:
      raise ValueError(f"frame indices must increase: {frame_index} after "
                       f"{self._last_index}")
    self._last_index = frame_index
    boxes = _as_boxes(boxes)
    overlaps = np.array([[box_iou(tube.initial_box, box) for box in boxes]
                         for tube in self._live]).reshape(len(self._live), len(boxes))
    matched = np.any(overlaps > self.iou_threshold, axis=1)
    ended, live = [], []
    for tube, is_matched, row in zip(self._live, matched, overlaps):
      if is_matched or frame_index - tube.last <= self.max_gap:
        live.append((tube, row))
      else:
        ended.append(tube.freeze())
    self._live = [tube for tube, _ in live]
    for column, box in enumerate(boxes):
      best, best_overlap = None, self.iou_threshold
      for tube, row in live:
        if row[column] > best_overlap:
          best, best_overlap = tube, row[column]
      if best is None:
        self._live.append(_LiveTube(frame_index, box))
      else:
        best.join(frame_index, box)
    return sorted(ended, key=lambda tube: tube.start)

  def finish(self) -> list[Tube]:
    """Ends every live tube (the video is over) and returns them, ordered by start."""
    ended = [tube.freeze() for tube in self._live]
    self._live = []
    return sorted(ended, key=lambda tube: tube.start)


def track_faces(detections: Iterable, iou_threshold: float = 0.25,
                max_gap: int = 0) -> list[Tube]:
  """Joins the detections of consecutive frames into tubes.

  Args:
    detections: one ``(N_t, 4)`` array of boxes per frame, frame 0 first.
    iou_threshold: see :class:`TubeTracker`.
    max_gap: see :class:`TubeTracker`.

  Returns:
    All tubes, ordered by their first frame.
  """
  tracker = TubeTracker(iou_threshold, max_gap)
  tubes = []
  for index, boxes in enumerate(detections):
    tubes += tracker.update(index, boxes)
  tubes += tracker.finish()
  return sorted(tubes, key=lambda tube: tube.start)


def longest_tube(tubes: Sequence[Tube]) -> Tube | None:
  """The tube with the most frames (the earliest among equals), or None if none."""
  if not tubes:
    return None
  return max(tubes, key=lambda tube: (tube.num_frames, -tube.start))
