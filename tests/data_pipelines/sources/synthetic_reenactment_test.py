"""The rendered ground truth of cross-identity reenactment on the procedural heads."""

import numpy as np
import pytest

from mcc_jax.data_pipelines.config import datasets_config
from mcc_jax.data_pipelines.sources import synthetic
from mcc_jax.data_pipelines.sources.synthetic import heads
from mcc_jax.data_pipelines.sources.synthetic import reenactment


def _video(person, clip=0, split="test", frames=24):
  return synthetic.synthetic_video(split, 64, seed=0, person=person, clip=clip,
                                   num_frames=frames)


def _pose_vector(pose):
  return np.array([*pose.translation, pose.roll, pose.scale, pose.yaw, pose.eye_openness,
                   pose.mouth_opening], np.float64)


def _channels(motion, frame):
  """Pose of a frame computed from the motion's waves directly (numpy, vectorised)."""
  amplitude, frequency, phase = (motion.waves[..., i].astype(np.float64) for i in range(3))
  x, y, roll, scale, yaw, mouth = (amplitude * np.sin(2 * np.pi * frequency * frame + phase)
                                   ).sum(axis=1)
  blink = np.clip(np.min(np.abs(motion.blink_frames - frame), initial=np.inf) / 2.5, 0, 1)
  return np.array([motion.offset[0] + x, motion.offset[1] + y, roll, 1.5 * np.exp(scale),
                   np.clip(yaw, -1, 1), blink, np.clip(0.5 + mouth, 0, 1)])


def test_absolute_target_is_a_rendered_in_b_poses():
  a, b = _video(0), _video(1)
  frames = [0, 5, 17]
  target = reenactment.reenactment_target(a, b, frames, "absolute")
  assert target.shape == (3, 64, 64, 3) and target.dtype == np.uint8
  for i, t in enumerate(frames):
    # Independent: B's pose from its waves in numpy, rendered with A's identity.
    p = _channels(b.motion, t)
    pose = heads.HeadPose(translation=(p[0], p[1]), roll=p[2], scale=p[3], yaw=p[4],
                          eye_openness=p[5], mouth_opening=p[6])
    expected = heads.render_head(a.identity, pose, 64)
    assert np.abs(target[i].astype(int) - expected).max() <= 1
    # Neither A's own frame nor B's frame: A's looks in B's pose.
    assert np.abs(target[i].astype(int) - b.render(t)).mean() > 5
  # Frame 0 in B's pose is not A's first frame (their poses differ).
  assert np.abs(target[0].astype(int) - a.render(0)).mean() > 1


def test_relative_pose_composes_each_parameter():
  source, first, driving = (_video(0).motion.pose(3), _video(1).motion.pose(0),
                            _video(1).motion.pose(9))
  composed = _pose_vector(reenactment.relative_pose(source, first, driving))
  s, f, d = _pose_vector(source), _pose_vector(first), _pose_vector(driving)
  expected = s + (d - f)
  expected[3] = s[3] * d[3] / f[3]
  expected[4] = np.clip(expected[4], -1, 1)
  expected[5:] = np.clip(expected[5:], 0, 1)
  np.testing.assert_allclose(composed, expected, rtol=1e-6, atol=1e-7)


def test_relative_target_starts_at_the_source_frame_and_follows_the_driving_change():
  a, b = _video(2), _video(3)
  target = reenactment.reenactment_target(a, b, range(12), "relative")
  # At the anchor frame nothing has moved: the target is the source image itself.
  np.testing.assert_array_equal(target[0], a.render(0))
  # Driving a video by itself reproduces the video (up to one level of rounding).
  own = reenactment.reenactment_target(a, a, range(12), "relative")
  assert np.abs(own.astype(int) - a.read_all()[:12]).max() <= 1
  # The relative target differs from the absolute one once B has moved.
  absolute = reenactment.reenactment_target(a, b, range(12), "absolute")
  assert np.abs(target[11].astype(int) - absolute[11]).mean() > 1


def test_an_unknown_motion_is_refused():
  with pytest.raises(ValueError, match="absolute"):
    reenactment.reenactment_target(_video(0), _video(1), [0], "sideways")


def test_video_named_finds_the_video_of_a_name():
  datasets = datasets_config()
  datasets.image_size = 64
  datasets.synthetic.num_frames = 10
  video = synthetic.video_named(datasets, "synthetic-test-0003#01")
  expected = synthetic.synthetic_video("test", 64, seed=0, person=3, clip=1, num_frames=10)
  assert video.name == expected.name
  np.testing.assert_array_equal(video.render(4), expected.render(4))
  assert video.identity.face_radii == expected.identity.face_radii
  for bad in ("carphone#096", "synthetic-valid-0001#00", "synthetic-test-x#00"):
    with pytest.raises(ValueError, match="not the name of a synthetic video"):
      synthetic.video_named(datasets, bad)


def test_only_the_synthetic_kind_renders_a_reenactment_target():
  from mcc_jax.data_pipelines import sources  # pylint: disable=import-outside-toplevel
  assert sources.get("synthetic").renders_reenactment
  for kind in ("folder", "tfds", "sample"):
    assert not sources.get(kind).renders_reenactment, kind
  datasets = datasets_config()
  datasets.image_size = 64
  datasets.synthetic.num_frames = 6
  split = sources.get("synthetic")(datasets, "test")
  target = split.reenactment_target("synthetic-test-0000#01", "synthetic-test-0002#00", [0, 5])
  expected = reenactment.reenactment_target(
      synthetic.synthetic_video("test", 64, seed=0, person=0, clip=1, num_frames=6),
      synthetic.synthetic_video("test", 64, seed=0, person=2, clip=0, num_frames=6),
      [0, 5], "relative")
  np.testing.assert_array_equal(target, expected)
  sample = sources.get("sample")(datasets_config(name="sample"), "test")
  with pytest.raises(NotImplementedError, match="'sample' dataset cannot render"):
    sample.reenactment_target("a", "b", [0])
