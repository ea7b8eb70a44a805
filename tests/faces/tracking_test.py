"""Joining synthetic per-frame detections into face tubes."""

import numpy as np
import pytest

from mcc_jax.faces import tracking

FACE_A = np.array([10.0, 10.0, 50.0, 50.0])
FACE_B = np.array([100.0, 10.0, 140.0, 50.0])


def _two_faces_with_a_gap():
  """Face A in frames 0-9 and 11-14 (missed in frame 10), face B in frames 3-7."""
  rng = np.random.default_rng(0)
  detections = []
  for frame in range(15):
    boxes = []
    if frame != 10:
      boxes.append(FACE_A + rng.uniform(-2, 2, 4))
    if 3 <= frame <= 7:
      boxes.append(FACE_B + rng.uniform(-2, 2, 4))
    detections.append(np.array(boxes).reshape(-1, 4))
  return detections


def _union(boxes):
  boxes = np.asarray(boxes)
  return np.concatenate([boxes[:, :2].min(0), boxes[:, 2:].max(0)])


def test_box_iou_by_hand():
  assert tracking.box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
  assert tracking.box_iou((0, 0, 10, 10), (20, 0, 30, 10)) == 0.0
  assert tracking.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
  assert tracking.box_iou((0, 0, 10, 10), (2, 2, 4, 4)) == pytest.approx(4 / 100)
  assert tracking.box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_two_faces_and_a_missed_frame_make_three_tubes():
  detections = _two_faces_with_a_gap()
  tubes = tracking.track_faces(detections)
  assert [(t.start, t.stop) for t in tubes] == [(0, 10), (3, 8), (11, 15)]
  first, second, third = tubes
  np.testing.assert_array_equal(first.initial_box, detections[0][0])
  np.testing.assert_allclose(first.box, _union([d[0] for d in detections[:10]]))
  np.testing.assert_allclose(second.box, _union([d[1] for d in detections[3:8]]))
  np.testing.assert_allclose(third.box, _union([d[0] for d in detections[11:]]))
  assert [t.detections for t in tubes] == [10, 5, 4]
  assert tracking.longest_tube(tubes) is first


def test_a_gap_no_longer_than_max_gap_is_bridged():
  detections = _two_faces_with_a_gap()
  tubes = tracking.track_faces(detections, max_gap=1)
  assert [(t.start, t.stop, t.detections) for t in tubes] == [(0, 15, 14), (3, 8, 5)]
  # Two missed frames in a row exceed max_gap=1.
  detections[11] = np.zeros((0, 4))
  tubes = tracking.track_faces(detections, max_gap=1)
  assert [(t.start, t.stop) for t in tubes] == [(0, 10), (3, 8), (12, 15)]


def test_a_drifting_face_starts_a_new_tube_against_its_initial_box():
  # Each box overlaps the previous one (IoU 0.82), but the 7th is too far from the first:
  # IoU (40 - 4t) / (40 + 4t) <= 0.25 from t = 6.
  detections = [np.array([[4.0 * t, 0.0, 4.0 * t + 40.0, 40.0]]) for t in range(12)]
  ious = [tracking.box_iou(detections[0][0], d[0]) for d in detections]
  first_far = next(t for t, iou in enumerate(ious) if iou <= 0.25)
  tubes = tracking.track_faces(detections)
  assert first_far == 6
  assert [(t.start, t.stop) for t in tubes] == [(0, first_far), (first_far, 12)]
  # A lower threshold moves the split to where IoU <= 0.1, from t = 9.
  tubes = tracking.track_faces(detections, iou_threshold=0.1)
  assert [(t.start, t.stop) for t in tubes] == [(0, 9), (9, 12)]


def test_a_detection_joins_the_tube_it_overlaps_most():
  near_a = FACE_A + [6, 0, 6, 0]  # Overlaps A much more than a box between A and B.
  between = np.array([30.0, 10.0, 70.0, 50.0])
  detections = [np.array([FACE_A, between]), np.array([near_a])]
  tubes = tracking.track_faces(detections)
  assert [(t.start, t.stop) for t in tubes] == [(0, 2), (0, 1)]
  np.testing.assert_allclose(tubes[0].box, _union([FACE_A, near_a]))


def test_the_streaming_tracker_matches_track_faces():
  detections = _two_faces_with_a_gap()
  tracker = tracking.TubeTracker()
  streamed = []
  for index, boxes in enumerate(detections):
    ended = tracker.update(index, boxes)
    assert all(tube.stop <= index for tube in ended)
    streamed += ended
  streamed += tracker.finish()
  expected = tracking.track_faces(detections)
  assert sorted((t.start, t.stop) for t in streamed) == [(t.start, t.stop) for t in expected]


def test_invalid_arguments_are_rejected():
  with pytest.raises(ValueError, match="iou_threshold"):
    tracking.TubeTracker(iou_threshold=1.5)
  with pytest.raises(ValueError, match="max_gap"):
    tracking.TubeTracker(max_gap=-1)
  tracker = tracking.TubeTracker()
  tracker.update(3, [FACE_A])
  with pytest.raises(ValueError, match="increase"):
    tracker.update(3, [FACE_A])
  with pytest.raises(ValueError, match=r"\(N, 4\)"):
    tracker.update(4, [[1.0, 2.0, 3.0]])
  assert tracking.longest_tube([]) is None
