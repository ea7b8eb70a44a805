"""Animator: batched inference equal to the networks applied directly; relative motion."""

import jax
import numpy as np
import pytest

from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax import inference
from mcc_jax import media
from mcc_jax.inference.animation import to_model_range


@pytest.fixture(scope="module", name="model")
def _model(tiny_checkpoint):
  path, _ = tiny_checkpoint
  return inference.load_model(checkpoint=path)


@pytest.fixture(scope="module", name="frames")
def _frames():
  clip = sample_clip.decode_clip()[::9][:10]  # 10 frames a third of a second apart
  return np.stack([media.crop_and_resize(f, None, 64) for f in clip])


def _direct(model, source, driving):
  """The networks applied one frame at a time, without the Animator."""

  @jax.jit
  def frame_fn(variables, s, d):
    motion = model.estimator.apply(variables["motion_estimator"], s, d, train=False)
    return model.generator.apply(variables["generator"], s, motion.deformation,
                                 motion.occlusion, motion.driving_heatmaps, train=False).image

  out = []
  for frame in driving:
    image = frame_fn(model.variables, to_model_range(source[None]), to_model_range(frame[None]))
    out.append(np.round((np.clip(np.asarray(image[0]), -1, 1) + 1) * 127.5))
  return np.stack(out)


def test_absolute_motion_equals_the_networks_frame_by_frame(model, frames):
  animator = inference.Animator(model)
  # Batches of 4: the last batch (2 frames) is padded, and its padding dropped.
  batches = list(animator.animate(frames[3], frames, relative=False, batch_size=4))
  assert [b.start for b in batches] == [0, 4, 8]
  generated = np.concatenate([b.frames for b in batches])
  assert generated.shape == (10, 64, 64, 3) and generated.dtype == np.uint8
  expected = _direct(model, frames[3], frames)
  assert np.max(np.abs(generated.astype(int) - expected)) <= 1
  # Not a constant picture: frames differ where the driving frames differ.
  assert np.abs(generated[0].astype(int) - generated[9]).mean() > 0.5


def test_relative_motion_at_its_anchor_keeps_the_source_pose(model, frames):
  animator = inference.Animator(model)
  source = frames[0]
  relative = np.concatenate([b.frames for b in animator.animate(
      source, frames, relative=True, adapt_scale=True, anchor_index=5, batch_size=4)])
  # At the anchor the driving keypoints have not moved: the source keypoints are used
  # unchanged, which is the absolute animation of the source by itself.
  itself = next(animator.animate(source, source[None], relative=False, batch_size=1)).frames[0]
  assert np.max(np.abs(relative[5].astype(int) - itself)) <= 1
  absolute = np.concatenate([b.frames for b in animator.animate(source, frames, relative=False,
                                                                batch_size=4)])
  assert np.abs(relative[9].astype(int) - absolute[9]).mean() > 0.1


def test_keypoints_are_batched_in_order(model, frames):
  animator = inference.Animator(model)
  keypoints = animator.keypoints(frames, batch_size=3)
  single = animator.keypoints(frames[7:8], batch_size=1)
  assert keypoints.value.shape == (10, model.config.model.num_keypoints, 2)
  np.testing.assert_allclose(keypoints.value[7], single.value[0], atol=1e-5)
  np.testing.assert_allclose(keypoints.jacobian[7], single.jacobian[0], atol=1e-5)


def test_precomputed_keypoints_give_the_same_frames(model, frames):
  animator = inference.Animator(model)
  keypoints = animator.keypoints(frames, batch_size=4)
  a = np.concatenate([b.frames for b in animator.animate(frames[0], frames, anchor_index=2,
                                                         batch_size=4)])
  b = np.concatenate([b.frames for b in animator.animate(
      frames[0], frames, anchor_index=2, batch_size=4, driving_keypoints=keypoints)])
  assert np.max(np.abs(a.astype(int) - b)) <= 1


def test_flow_and_occlusion_come_with_the_frames(model, frames):
  batch = next(inference.Animator(model).animate(frames[0], frames[:2], batch_size=2,
                                                 with_flow=True))
  assert batch.flow.shape == (2, 16, 16, 2) and batch.occlusion.shape == (2, 16, 16, 1)
  assert np.all((batch.occlusion >= 0) & (batch.occlusion <= 1))


def test_bad_frames_are_refused(model, frames):
  animator = inference.Animator(model)
  with pytest.raises(ValueError, match=r"expected \(T, 64, 64, 3\)"):
    next(animator.animate(frames[0], frames[:, :32]))
  with pytest.raises(ValueError, match="anchor_index 10 is outside the 10"):
    next(animator.animate(frames[0], frames, anchor_index=10))


class _CountingStream:
  """An iterator over frames that records how many were taken."""

  def __init__(self, frames):
    self._frames = iter(frames)
    self.taken = 0

  def __iter__(self):
    return self

  def __next__(self):
    frame = next(self._frames)
    self.taken += 1
    return frame


def test_a_stream_of_frames_is_consumed_one_batch_at_a_time(model, frames):
  # A decoder's stream: each batch is generated after at most its own frames were
  # taken, so nothing but one batch is held, whatever the video's length.
  animator = inference.Animator(model)
  stream = _CountingStream(list(frames))
  taken_when_yielded, batches = [], []
  for batch in animator.animate(frames[0], stream, batch_size=4):
    taken_when_yielded.append(stream.taken)
    batches.append(batch)
  assert taken_when_yielded == [4, 8, 10]
  assert [b.start for b in batches] == [0, 4, 8]
  np.testing.assert_array_equal(np.concatenate([b.driving for b in batches]), frames)
  # The same frames as the whole array with its keypoints computed in the same batches
  # (the anchor: frame 0, as computed in the first batch).
  keypoints = animator.keypoints(frames, batch_size=4)
  whole = np.concatenate([b.frames for b in animator.animate(
      frames[0], frames, batch_size=4, driving_keypoints=keypoints)])
  np.testing.assert_array_equal(np.concatenate([b.frames for b in batches]), whole)
  # Keypoints of a stream equal those of the array.
  streamed = animator.keypoints(iter(list(frames)), batch_size=4)
  np.testing.assert_array_equal(streamed.value, keypoints.value)


def test_a_stream_with_an_anchor_needs_its_keypoints(model, frames):
  animator = inference.Animator(model)
  with pytest.raises(ValueError, match="anchored at frame 0 unless driving_keypoints"):
    next(animator.animate(frames[0], iter(list(frames)), anchor_index=3, batch_size=4))
  keypoints = animator.keypoints(frames, batch_size=4)
  anchored = np.concatenate([b.frames for b in animator.animate(
      frames[0], iter(list(frames)), anchor_index=3, batch_size=4,
      driving_keypoints=keypoints)])
  expected = np.concatenate([b.frames for b in animator.animate(
      frames[0], frames, anchor_index=3, batch_size=4, driving_keypoints=keypoints)])
  np.testing.assert_array_equal(anchored, expected)
  # Keypoints of another number of frames than the stream holds are refused.
  with pytest.raises(ValueError, match="driving_keypoints cover 10 frames"):
    list(animator.animate(frames[0], iter(list(frames[:7])), batch_size=4,
                          driving_keypoints=keypoints))
  with pytest.raises(ValueError, match=r"expected \(T, 64, 64, 3\)"):
    list(animator.animate(frames[0], iter([frames[0][:32]]), batch_size=4))
