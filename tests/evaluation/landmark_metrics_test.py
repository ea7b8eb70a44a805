"""AKD, AED and identity similarity on real face frames (the sample clip)."""

import numpy as np
import pytest

from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax.evaluation import landmark_metrics as lm


@pytest.fixture(scope="module", name="frames")
def _frames():
  return sample_clip.sample_videos("test", 64)[0].read_all()[:2]


def test_a_frame_against_itself_scores_zero(frames):
  meter = lm.FaceMeter(face_box="detect")
  faces = meter(frames)
  assert all(f.landmarks is not None and f.landmarks.shape == (68, 2) for f in faces)
  assert all(f.embedding is not None and f.embedding.shape == (128,) for f in faces)
  np.testing.assert_allclose(np.linalg.norm(faces[0].embedding), 1.0)
  np.testing.assert_array_equal(lm.keypoint_distances(faces, faces), 0.0)
  np.testing.assert_array_equal(lm.embedding_distances(faces, faces), 0.0)
  np.testing.assert_allclose(lm.embedding_similarities(faces, faces), 1.0)


def test_shifted_landmarks_give_the_mean_over_both_coordinates(frames):
  face = lm.measure_face(frames[0], face_box="frame", embedding=False)
  assert face.embedding is None
  shifted = lm.Face(face.landmarks + np.array([3.0, 0.0]), None)
  # |dx| = 3 and |dy| = 0 for every point: the mean over 68 x 2 coordinates is 1.5.
  assert lm.keypoint_distance(face.landmarks, shifted.landmarks) == pytest.approx(1.5)
  np.testing.assert_allclose(lm.keypoint_distances([face], [shifted]), [1.5])


def test_missed_faces_are_nan():
  blank = np.zeros((1, 64, 64, 3), np.uint8)
  missed = lm.FaceMeter(face_box="detect")(blank)[0]
  assert missed == lm.Face(None, None)
  found = lm.Face(np.zeros((68, 2)), np.eye(128)[0])
  assert np.isnan(lm.keypoint_distances([found], [missed])[0])
  assert np.isnan(lm.embedding_distances([missed], [found])[0])
  with pytest.raises(ValueError, match="face_box"):
    lm.FaceMeter(face_box="guess")


def test_aed_is_the_squared_distance_of_normalised_embeddings():
  a, b = np.eye(128)[0], np.eye(128)[1]
  faces_a, faces_b = [lm.Face(None, a)], [lm.Face(None, b)]
  np.testing.assert_allclose(lm.embedding_distances(faces_a, faces_b), [2.0])
  np.testing.assert_allclose(lm.embedding_similarities(faces_a, faces_b), [0.0])
