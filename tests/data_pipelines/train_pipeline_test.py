"""Tests of the training pipeline: pairs, sampling, augmentation, determinism, hosts."""

import collections

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines import train_pipeline
from mcc_jax.data_pipelines.augment import augment_pair, color_jitter
from mcc_jax.data_pipelines.config import datasets_config

SIZE = 8
# Persons with 1, 4 and 2 videos: id sampling must still give each a third of the pairs.
VIDEOS = [("idA#0", 5), ("idB#0", 5), ("idB#1", 6), ("idB#2", 5), ("idB#3", 7),
          ("idC#0", 6), ("idC#1", 5)]
PERSON_OF_CODE = [name.split("#")[0] for name, _ in VIDEOS]


@pytest.fixture
def root(coded_dataset):
  return coded_dataset({"train": VIDEOS, "test": VIDEOS[:2]}, size=SIZE)


def _config(root, **overrides):
  fields = dict(name="folder", root=root, image_size=SIZE)
  fields.update(overrides)
  return datasets_config(**fields)


def _pairs(config, num_batches, batch_size=16, seed=0, process_index=0, process_count=1,
           start_batch=0):
  dataset = data_pipelines.build_train_pipeline(
      config, batch_size, seed=seed, start_batch=start_batch, process_index=process_index,
      process_count=process_count)
  batches = [b for _, b in zip(range(num_batches), dataset.as_numpy_iterator())]
  return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


def test_batches_are_uint8_or_unit_floats_with_colour_jitter(root, media):
  pairs = _pairs(_config(root), 2)
  for key in ("source", "driving"):
    assert pairs[key].shape == (32, SIZE, SIZE, 3) and pairs[key].dtype == np.uint8
  jittered = _pairs(_config(root, color_jitter=True), 2)
  for key in ("source", "driving"):
    assert jittered[key].shape == (32, SIZE, SIZE, 3)
    assert jittered[key].dtype == np.float32
    assert jittered[key].min() >= 0.0 and jittered[key].max() <= 1.0
  # Jitter of strength 0: the same elements and flips, as floats in [0, 1].
  still = _pairs(_config(root, color_jitter=True, jitter=dict(
      brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)), 2)
  for key in ("source", "driving"):
    np.testing.assert_allclose(still[key], pairs[key] / 255.0, atol=1e-5)
  # The value range is the trainer's business now: the stream does not change.
  unit = _pairs(_config(root, value_range=(0.0, 1.0)), 2)
  np.testing.assert_array_equal(unit["source"], pairs["source"])


def test_both_frames_come_from_one_video_in_order(root, media):
  pairs = _pairs(_config(root, time_flip=False), 8)
  source = media.decode_codes(pairs["source"])
  driving = media.decode_codes(pairs["driving"])
  np.testing.assert_array_equal(source[:, 0], driving[:, 0])
  # Without time flip the earlier frame is the source; drawn with replacement, a
  # pair may repeat a frame (for 5-7 frames, about one pair in six does).
  assert np.all(source[:, 1] <= driving[:, 1])
  assert 0 < np.sum(source[:, 1] == driving[:, 1]) < len(source) // 2
  lengths = np.asarray([n for _, n in VIDEOS])
  assert np.all(driving[:, 1] < lengths[driving[:, 0]])


def test_time_flip_swaps_about_half_of_the_pairs(root, media):
  pairs = _pairs(_config(root, time_flip=True), 16)
  source = media.decode_codes(pairs["source"])[:, 1]
  driving = media.decode_codes(pairs["driving"])[:, 1]
  swapped = int(np.sum(source > driving))
  # Binomial(256, 1/2): far outside this range only with probability ~1e-9.
  assert 64 < swapped < 192


def test_id_sampling_draws_persons_uniformly(root, media):
  pairs = _pairs(_config(root, id_sampling=True), 30)
  codes = media.decode_codes(pairs["source"])[:, 0]
  persons = collections.Counter(PERSON_OF_CODE[c] for c in codes)
  counts = [persons[p] for p in ("idA", "idB", "idC")]
  assert stats.chisquare(counts).pvalue > 1e-6
  # Within a person, videos are uniform too.
  person_b = [np.sum(codes == code) for code in (1, 2, 3, 4)]
  assert stats.chisquare(person_b).pvalue > 1e-6


def test_without_id_sampling_persons_are_weighted_by_their_videos(root, media):
  pairs = _pairs(_config(root, id_sampling=False), 14)
  codes = media.decode_codes(pairs["source"])[:, 0]
  share_b = np.mean([PERSON_OF_CODE[c] == "idB" for c in codes])
  assert abs(share_b - 4 / 7) < 0.05  # Every epoch visits each video once.


def test_same_seed_same_stream_other_seed_other_stream(root):
  config = _config(root, color_jitter=True)
  first = _pairs(config, 3, seed=11)
  again = _pairs(config, 3, seed=11)
  other = _pairs(config, 3, seed=12)
  for key in ("source", "driving"):
    np.testing.assert_array_equal(first[key], again[key])
  assert not np.array_equal(first["source"], other["source"])


@pytest.mark.parametrize("id_sampling", [False, True])
def test_two_hosts_read_disjoint_videos_that_cover_the_split(root, media, id_sampling):
  config = _config(root, id_sampling=id_sampling)
  seen = []
  for host in range(2):
    pairs = _pairs(config, 12, process_index=host, process_count=2)
    seen.append(set(media.decode_codes(pairs["source"])[:, 0].tolist()))
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(range(len(VIDEOS)))
  if id_sampling:
    persons = [{PERSON_OF_CODE[c] for c in host} for host in seen]
    assert not persons[0] & persons[1]


def test_a_host_opens_only_its_own_videos(tmp_path, media):
  root = tmp_path / "root"
  for number, name in enumerate(["a", "b", "c"]):
    media.write_frame_folder(root / "train" / name, media.coded_video(number, 4, SIZE))
  # Sorted last, so dealt to host 1 of 2; a folder without frames fails when read.
  (root / "train" / "d").mkdir()
  config = _config(str(root), id_sampling=False)
  pairs = _pairs(config, 2, process_index=0, process_count=2)
  assert set(media.decode_codes(pairs["source"])[:, 0].tolist()) == {0, 2}
  # Videos are opened lazily: the error comes with the first read.
  with pytest.raises((data_pipelines.BadVideoError, tf.errors.OpError),
                     match="has 0 frame"):
    _pairs(config, 2, process_index=1, process_count=2)


@pytest.mark.parametrize("id_sampling", [False, True])
def test_a_stream_started_at_batch_n_is_the_rest_of_the_stream(root, id_sampling):
  # 7 videos (3 persons), 3 pairs a batch: batch 5 starts in the middle of an epoch.
  config = _config(root, id_sampling=id_sampling)
  whole = _pairs(config, 8, batch_size=3, seed=3)
  rest = _pairs(config, 3, batch_size=3, seed=3, start_batch=5)
  for key in ("source", "driving"):
    np.testing.assert_array_equal(rest[key], whole[key][15:])


def test_a_resumed_stream_reads_nothing_before_its_start(root, monkeypatch):
  counters = []
  original = train_pipeline.VideoPairReader.__call__

  def recording(self, counter):
    counters.append(int(counter))
    return original(self, counter)

  monkeypatch.setattr(train_pipeline.VideoPairReader, "__call__", recording)
  _pairs(_config(root), 2, batch_size=4, start_batch=1000)
  assert counters and min(counters) == 4000


def test_start_batch_must_be_a_non_negative_integer(root):
  for bad in (-1, 1.5, True):
    with pytest.raises(ValueError, match="start_batch"):
      data_pipelines.build_train_pipeline(_config(root), 2, seed=0, start_batch=bad,
                                          process_index=0, process_count=1)


def _asymmetric_pair():
  ramp = np.tile(np.arange(SIZE, dtype=np.uint8)[None, :, None] * 30, (SIZE, 1, 3))
  return tf.constant(np.stack([ramp, ramp // 2]))


def test_horizontal_flip_flips_both_frames_together_about_half_the_time():
  pair = _asymmetric_pair()
  flipped = 0
  for counter in range(200):
    out = augment_pair(pair, tf.constant([0, counter], tf.int64), horizontal_flip=True,
                       time_flip=False, use_color_jitter=False, jitter={}).numpy()
    assert out.dtype == np.uint8  # Flips move pixels only.
    flips = [out[i, 0, 0, 0] > out[i, 0, -1, 0] for i in range(2)]
    assert flips[0] == flips[1]
    flipped += flips[0]
  assert 50 < flipped < 150  # Binomial(200, 1/2).


def test_color_jitter_applies_one_brightness_factor_within_its_range():
  frames = tf.constant(np.random.default_rng(0).uniform(0.1, 0.8, (2, SIZE, SIZE, 3)),
                       tf.float32)
  for counter in range(10):
    out = color_jitter(frames, tf.constant([3, counter], tf.int64), brightness=0.2,
                       contrast=0.0, saturation=0.0, hue=0.0).numpy()
    ratio = out / frames.numpy()
    assert np.ptp(ratio) < 1e-4  # One factor for every pixel of both frames.
    assert 0.8 - 1e-6 <= ratio.mean() <= 1.2 + 1e-6


def test_color_jitter_contrast_scales_deviations_from_the_gray_mean():
  frames = tf.constant(np.random.default_rng(1).uniform(0.3, 0.7, (2, SIZE, SIZE, 3)),
                       tf.float32)
  out = color_jitter(frames, tf.constant([4, 0], tf.int64), brightness=0.0,
                     contrast=0.3, saturation=0.0, hue=0.0).numpy()
  gray = frames.numpy() @ np.array([0.299, 0.587, 0.114], np.float32)
  mean = gray.mean(axis=(1, 2))[:, None, None, None]
  factor = (out - mean) / (frames.numpy() - mean)
  assert np.ptp(factor[np.abs(frames.numpy() - mean) > 0.05]) < 1e-3
  assert 0.7 - 1e-6 <= factor.mean() <= 1.3 + 1e-6


def test_color_jitter_changes_colours_but_not_identical_frames_differently():
  frame = np.random.default_rng(2).uniform(0, 1, (SIZE, SIZE, 3)).astype(np.float32)
  frames = tf.constant(np.stack([frame, frame]))
  out = color_jitter(frames, tf.constant([5, 1], tf.int64), brightness=0.1, contrast=0.1,
                     saturation=0.1, hue=0.1).numpy()
  np.testing.assert_allclose(out[0], out[1], atol=1e-6)
  assert np.abs(out[0] - frame).mean() > 1e-3
  assert out.min() >= 0.0 and out.max() <= 1.0
