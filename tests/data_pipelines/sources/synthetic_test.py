"""Tests of the procedural talking-head generator and the ``synthetic`` dataset."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines.sources import synthetic
from mcc_jax.data_pipelines.sources.synthetic import heads
from mcc_jax.data_pipelines.config import datasets_config


def _videos(split, size=64, seed=0, identities=3, per_identity=2, frames=40):
  return synthetic.synthetic_videos(
      split, size, seed=seed, num_identities=identities, videos_per_identity=per_identity,
      num_frames=frames)


def _identity_vector(identity):
  parts = []
  for field in dataclasses.fields(identity):
    parts.append(np.ravel(np.asarray(getattr(identity, field.name), np.float64)))
  return np.concatenate(parts)


def test_rendering_is_deterministic_per_seed():
  first = _videos("train", frames=6)[1].read_all()
  again = _videos("train", frames=6)[1].read_all()
  other = _videos("train", seed=1, frames=6)[1].read_all()
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_train_and_test_identities_are_different_people():
  train = {v.person: v.identity for v in _videos("train", identities=8)}
  test = {v.person: v.identity for v in _videos("test", identities=8)}
  assert not set(train) & set(test)
  for a in train.values():
    for b in test.values():
      assert np.abs(_identity_vector(a) - _identity_vector(b)).max() > 1e-3


def test_videos_of_one_person_share_the_identity_but_not_the_motion():
  first, second = _videos("train", identities=1, per_identity=2)
  assert first.person == second.person
  np.testing.assert_array_equal(_identity_vector(first.identity),
                                _identity_vector(second.identity))
  assert not np.array_equal(first.render(5), second.render(5))


def test_motion_moves_the_head_blinks_and_talks():
  motion = heads.sample_motion(np.random.default_rng(3), 400)
  poses = [motion.pose(t) for t in range(400)]
  x = np.array([p.translation[0] for p in poses])
  roll = np.array([p.roll for p in poses])
  scale = np.array([p.scale for p in poses])
  mouth = np.array([p.mouth_opening for p in poses])
  eyes = np.array([p.eye_openness for p in poses])
  assert np.ptp(x) > 0.02 and np.ptp(roll) > 0.05 and np.ptp(scale) > 0.02
  assert mouth.min() < 0.3 and mouth.max() > 0.7
  assert eyes.min() == 0.0 and np.mean(eyes == 1.0) > 0.7
  # Smooth: consecutive frames are close.
  assert np.max(np.abs(np.diff(x))) < 0.02


def test_blink_closes_the_eyes_in_the_picture():
  identity = heads.sample_identity(np.random.default_rng(0))
  open_pose = heads.HeadPose((0.0, 0.0), 0.0, 1.5, 0.0, 1.0, 0.0)
  shut_pose = dataclasses.replace(open_pose, eye_openness=0.0)
  wide_mouth = dataclasses.replace(open_pose, mouth_opening=1.0)
  base = heads.render_head(identity, open_pose, 64).astype(int)
  blink = heads.render_head(identity, shut_pose, 64).astype(int)
  talk = heads.render_head(identity, wide_mouth, 64).astype(int)
  eye_rows, mouth_rows = slice(20, 34), slice(38, 56)
  assert np.abs(base - blink)[eye_rows].sum() > 10 * np.abs(base - blink)[mouth_rows].sum()
  assert np.abs(base - talk)[mouth_rows].sum() > 10 * np.abs(base - talk)[eye_rows].sum()


@pytest.mark.parametrize("size", [32, 64, 256])
def test_any_resolution_renders_the_same_scene(size):
  video = _videos("test", size=size, frames=4)[0]
  frame = video.render(2)
  assert frame.shape == (size, size, 3) and frame.dtype == np.uint8
  reference = _videos("test", size=256, frames=4)[0].render(2)
  shrunk = np.asarray(Image.fromarray(reference).resize((size, size), Image.BILINEAR))
  assert np.mean(np.abs(shrunk.astype(int) - frame)) < 6.0


def test_pair_renders_match_the_full_video():
  video = _videos("train", frames=10)[0]
  everything = video.read_all()
  pair = video.read_pair(np.random.default_rng(9))
  hits = [np.flatnonzero((everything == f).all(axis=(1, 2, 3))) for f in pair]
  assert all(len(h) >= 1 for h in hits) and hits[0][0] < hits[1][-1]


def test_synthetic_pipelines_use_the_configured_identities():
  config = datasets_config(name="synthetic", image_size=32,
                           synthetic=dict(num_train_identities=3, num_test_identities=2,
                                          videos_per_identity=2, num_frames=6))
  batch = next(data_pipelines.build_train_pipeline(
      config, 4, seed=0, process_index=0, process_count=1).as_numpy_iterator())
  assert batch["source"].shape == (4, 32, 32, 3)
  names = data_pipelines.eval_video_names(config)
  assert len(names) == 4 and all(n.startswith("synthetic-test-") for n in names)
  frames = sum(int(b["mask"].sum()) for b in data_pipelines.build_eval_pipeline(
      config, 5, process_index=0, process_count=1).as_numpy_iterator())
  assert frames == 4 * 6
