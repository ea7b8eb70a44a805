"""Face detection, landmarks and identity embeddings on frames of the sample clip."""

import sys

import numpy as np
import pytest
from PIL import Image

from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax import faces
from mcc_jax.faces import dlib_models
from tests.small_faces import HEAD_SIDE, LARGE_SHAPE, PASTE_AT, paste_small_head

FRAMES = (0, 40, 80, 110)  # The head moves by about 30 pixels over these.

# iBUG 68-point index of each point's mirror image (left and right swapped).
MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] +
    [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40] +
    [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


@pytest.fixture(scope="module")
def clip():
  return sample_clip.decode_clip()


def _centre(box):
  return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def test_mirror_permutation_is_an_involution():
  assert sorted(MIRROR) == list(range(68))
  np.testing.assert_array_equal(MIRROR[MIRROR], np.arange(68))


def test_detects_the_face_inside_the_known_head_region(clip):
  top, left, side = sample_clip.FACE_BOX
  for index in FRAMES:
    boxes = faces.detect_faces(clip[index])
    assert boxes.dtype == np.float64 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert len(boxes) >= 1, f"no face in frame {index}"
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert np.all(np.diff(areas) <= 0), "boxes are not largest first"
    x, y = _centre(boxes[0])
    assert left <= x <= left + side and top <= y <= top + side, (index, boxes[0])
    assert 35 <= boxes[0][2] - boxes[0][0] <= 100, boxes[0]


def test_small_frames_are_upsampled_automatically(clip):
  # The 50-pixel face is below the HOG window at upsample=0; automatic upsamples once.
  assert len(faces.detect_faces(clip[0], upsample=0)) == 0
  np.testing.assert_array_equal(faces.detect_faces(clip[0]),
                                faces.detect_faces(clip[0], upsample=1))


def test_large_frames_are_detected_on_a_downscaled_copy_in_full_size_pixels(clip):
  frame = clip[40]
  large = np.asarray(Image.fromarray(frame).resize((176 * 4, 144 * 4), Image.BILINEAR))
  big_boxes = faces.detect_faces(large)
  assert len(big_boxes) >= 1
  # The same face as in the original frame, in the large frame's pixels.
  np.testing.assert_allclose(big_boxes[0] / 4, faces.detect_faces(frame)[0], atol=8)


def test_no_face_in_a_uniform_image():
  grey = np.full((120, 160, 3), 128, np.uint8)
  boxes = faces.detect_faces(grey)
  assert boxes.shape == (0, 4)
  assert faces.face_landmarks(grey) is None
  assert faces.identity_embedding(grey) is None


@pytest.mark.parametrize("image", [np.zeros((32, 32, 3), np.float32),
                                   np.zeros((32, 32), np.uint8),
                                   np.zeros((32, 32, 4), np.uint8)])
def test_rejects_images_that_are_not_uint8_rgb(image):
  for function in (faces.detect_faces, faces.face_landmarks, faces.identity_embedding):
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
      function(image)


def test_rejects_an_empty_box(clip):
  with pytest.raises(ValueError, match="empty box"):
    faces.face_landmarks(clip[0], (50, 50, 50, 80))


def test_landmarks_follow_the_ibug_layout(clip):
  points = faces.face_landmarks(clip[0])
  assert points.shape == (68, 2) and points.dtype == np.float64
  box = faces.detect_faces(clip[0])[0]
  inside = ((points[:, 0] >= box[0] - 10) & (points[:, 0] <= box[2] + 10) &
            (points[:, 1] >= box[1] - 10) & (points[:, 1] <= box[3] + 10))
  assert inside.all()
  eyes_y = points[36:48, 1].mean()
  assert eyes_y < points[30, 1] < points[48:68, 1].mean()  # eyes, nose tip, mouth
  assert points[36:42, 0].mean() < points[42:48, 0].mean()  # subject's right eye on the left
  assert points[0, 0] < points[8, 0] < points[16, 0]  # the jaw runs left to right


def test_landmarks_of_a_flipped_frame_are_the_mirror_image(clip):
  width = clip.shape[2]
  for index in FRAMES[:3]:
    original = faces.face_landmarks(clip[index])
    flipped = faces.face_landmarks(np.ascontiguousarray(clip[index][:, ::-1]))
    mirrored = flipped[MIRROR] * [-1, 1] + [width - 1, 0]
    errors = np.linalg.norm(mirrored - original, axis=1)
    assert errors.mean() < 1.5 and errors.max() < 4, (index, errors.mean(), errors.max())
    # Without the permutation the points would land on the other side of the face.
    assert np.linalg.norm(flipped * [-1, 1] + [width - 1, 0] - original, axis=1).mean() > 5


def test_landmarks_of_a_shifted_frame_shift_with_it(clip):
  dx, dy = 7, 5
  for index in FRAMES[:2]:
    frame = clip[index]
    shifted = np.pad(frame, ((dy, 0), (dx, 0), (0, 0)), mode="edge")
    original = faces.face_landmarks(frame)
    # Detected again: the box moves by whole HOG cells, the points follow the face.
    errors = np.linalg.norm(faces.face_landmarks(shifted) - (original + [dx, dy]), axis=1)
    assert errors.mean() < 1.5 and errors.max() < 4, errors
    # With the box moved by the same pixels the predictor sees the same crop.
    box = faces.detect_faces(frame)[0]
    moved = faces.face_landmarks(shifted, box + [dx, dy, dx, dy])
    np.testing.assert_allclose(moved, original + [dx, dy], atol=1e-6)


def test_identity_embeddings_are_closer_within_the_clip_than_to_altered_faces(clip):
  reference = faces.identity_embedding(clip[0])
  assert reference.shape == (128,) and reference.dtype == np.float64
  same = [np.linalg.norm(reference - faces.identity_embedding(clip[i])) for i in (10, 30)]
  box = faces.detect_faces(clip[0])[0]
  height = clip.shape[1]
  upside_down = np.ascontiguousarray(clip[0][::-1])
  flipped_box = (box[0], height - box[3], box[2], height - box[1])
  altered = [np.linalg.norm(reference - faces.identity_embedding(upside_down, flipped_box)),
             np.linalg.norm(reference - faces.identity_embedding(255 - clip[0], box))]
  assert max(same) < 0.4, same  # dlib's "same person" threshold is 0.6
  assert min(altered) > 0.6, altered


def test_missing_model_files_raise_face_models_error(clip, monkeypatch):
  monkeypatch.setattr(dlib_models, "_models", {})
  monkeypatch.setattr(dlib_models, "_MODELS_PACKAGE", "no_such_face_models_package")
  with pytest.raises(faces.FaceModelsError,
                     match=r'pip install "mcc-jax\[faces\]"'):
    faces.face_landmarks(clip[0], (60, 40, 110, 90))


def test_missing_dlib_raises_face_models_error(clip, monkeypatch):
  monkeypatch.setattr(dlib_models, "_models", {})
  monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now fails
  with pytest.raises(faces.FaceModelsError, match=r'pip install "mcc-jax\[faces\]"'):
    faces.detect_faces(clip[0])


def small_face_frame(frame, noise=True):
  """(the large frame, the face's (x, y) centre in it)."""
  top, left, side = sample_clip.FACE_BOX
  canvas = paste_small_head(frame, noise)
  # Where the face is: the box found in the original frame (upsampled), mapped.
  x, y = _centre(faces.detect_faces(frame, upsample=1)[0])
  zoom = HEAD_SIDE / side
  y0, x0 = PASTE_AT
  return canvas, (x0 + (x - left) * zoom, y0 + (y - top) * zoom)


@pytest.fixture(scope="module")
def small_face(clip):
  return small_face_frame(clip[0])


def _assert_around(box, centre, tolerance):
  x, y = _centre(box)
  assert abs(x - centre[0]) <= tolerance and abs(y - centre[1]) <= tolerance, (box, centre)
  # About the pasted face's size (44 px in the frame, 53 px here).
  assert 35 <= box[2] - box[0] <= 95 and 35 <= box[3] - box[1] <= 95, box


def test_find_faces_names_hog_for_faces_found_as_before(clip):
  found = faces.find_faces(clip[0])
  assert isinstance(found, faces.FaceDetections) and found.detector == "hog"
  np.testing.assert_array_equal(found.boxes, faces.detect_faces(clip[0]))
  # An explicit upsample is the one HOG pass: nothing found is "none", no fallback.
  missed = faces.find_faces(clip[0], upsample=0)
  assert missed.detector == "none" and missed.boxes.shape == (0, 4)
  with pytest.raises(ValueError, match="find_faces: upsample"):
    faces.find_faces(clip[0], upsample=-1)


def test_a_small_face_in_a_large_frame_is_found_at_full_resolution(small_face):
  canvas, centre = small_face
  # The old behaviour: HOG on the 640-px copy misses the (32-px there) face.
  copy, factors = dlib_models._resized(canvas, 640 / max(LARGE_SHAPE))
  assert max(copy.shape[:2]) == 640
  assert len(dlib_models._detector()(copy, 0)) == 0
  found = faces.find_faces(canvas)
  assert found.detector == "hog-full-resolution"
  assert found.boxes.dtype == np.float64 and found.boxes.shape == (1, 4)
  _assert_around(found.boxes[0], centre, 6)
  # detect_faces (the evaluation metrics' detector) stays HOG on the copy alone.
  assert faces.detect_faces(canvas).shape == (0, 4)
  assert not np.array_equal(factors, np.ones(4))


def _record_hog_calls(monkeypatch, find=True):
  """Records the HOG stages' (scale, upsample); with find=False they find nothing."""
  calls = []
  hog = dlib_models._hog

  def recorded(image, scale, upsample):
    calls.append((round(scale, 4), upsample))
    return hog(image, scale, upsample) if find else np.zeros((0, 4))

  monkeypatch.setattr(dlib_models, "_hog", recorded)
  return calls


def test_the_cnn_detector_finds_the_face_where_hog_finds_nothing(small_face, monkeypatch):
  canvas, centre = small_face
  calls = _record_hog_calls(monkeypatch, find=False)
  found = faces.find_faces(canvas)
  # Every HOG stage ran first: the 640-px copy, full resolution, upsampled once.
  assert calls == [(round(640 / 1080, 4), 0), (1.0, 0), (1.0, 1)]
  assert found.detector == "cnn" and found.boxes.shape == (1, 4)
  # Detected on the 640-px copy, mapped back to the frame's pixels.
  _assert_around(found.boxes[0], centre, 10)


def test_without_the_cnn_stage_nothing_more_runs(small_face, monkeypatch):
  canvas, _ = small_face
  calls = _record_hog_calls(monkeypatch, find=False)
  monkeypatch.setattr(dlib_models, "_cnn", lambda image: pytest.fail("the CNN ran"))
  found = faces.find_faces(canvas, cnn=False)
  assert calls == [(round(640 / 1080, 4), 0), (1.0, 0), (1.0, 1)]
  assert found.detector == "none" and found.boxes.shape == (0, 4)


def test_very_large_frames_skip_the_upsampled_full_resolution_pass(monkeypatch):
  calls = _record_hog_calls(monkeypatch)
  found = faces.find_faces(np.full((80, 1700, 3), 128, np.uint8))
  assert calls == [(round(640 / 1700, 4), 0), (1.0, 0)]
  assert found.detector == "none" and found.boxes.shape == (0, 4)


def test_no_face_and_detector_none_in_a_uniform_image(monkeypatch):
  calls = _record_hog_calls(monkeypatch)
  found = faces.find_faces(np.full((120, 160, 3), 128, np.uint8))
  assert found.detector == "none" and found.boxes.shape == (0, 4)
  assert found.boxes.dtype == np.float64
  assert calls == [(1.0, 1)]  # small frames: no full-resolution pass, only the CNN
