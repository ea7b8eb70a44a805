"""Tests of person grouping, frame-pair sampling and host sharding."""

import itertools

import numpy as np
import pytest
from scipy import stats

from mcc_jax.data_pipelines import pair_sampling
from mcc_jax.data_pipelines.bad_files import EmptyDatasetError

# Chi-square tests reject only beyond this quantile: with fixed seeds the outcome is
# deterministic, and a correct sampler lands far inside it.
_CHI2_QUANTILE = 1 - 1e-6


def _uniformity_p_value(counts):
  counts = np.asarray(counts, float)
  expected = np.full_like(counts, counts.sum() / len(counts))
  return stats.chisquare(counts, expected).pvalue


@pytest.mark.parametrize("name, person", [
    ("id10001#7w0IBEWc9Qw#000993#001143.mp4", "id10001"),
    ("id10001#abc", "id10001"),
    ("taichi_clip_17.mp4", "taichi_clip_17.mp4"),
])
def test_person_id(name, person):
  assert pair_sampling.person_id(name) == person


def test_frame_pairs_are_sorted_and_drawn_with_replacement():
  # Two independent uniform draws, sorted: an unordered pair {i, j} with i < j comes
  # up with probability 2 / n^2, a repeated frame (i, i) with 1 / n^2.
  num_frames, draws = 6, 15000
  expected = {(i, j): draws * (1 if i == j else 2) / num_frames**2
              for i in range(num_frames) for j in range(i, num_frames)}
  counts = dict.fromkeys(expected, 0)
  for counter in range(draws):
    first, second = pair_sampling.sample_frame_pair(
        pair_sampling.element_rng(5, counter), num_frames)
    assert 0 <= first <= second < num_frames
    counts[(int(first), int(second))] += 1
  keys = sorted(expected)
  p_value = stats.chisquare([counts[k] for k in keys], [expected[k] for k in keys]).pvalue
  assert p_value > 1 - _CHI2_QUANTILE


def test_frame_pair_needs_one_frame():
  with pytest.raises(ValueError, match="at least 1"):
    pair_sampling.sample_frame_pair(np.random.default_rng(0), 0)
  np.testing.assert_array_equal(
      pair_sampling.sample_frame_pair(np.random.default_rng(0), 1), [0, 0])


def test_element_generator_depends_only_on_seed_and_counter():
  first = pair_sampling.element_rng(3, 17).integers(0, 1 << 30, 4)
  again = pair_sampling.element_rng(3, 17).integers(0, 1 << 30, 4)
  other = pair_sampling.element_rng(3, 18).integers(0, 1 << 30, 4)
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_redraws_use_other_generators_than_the_element():
  draws = {tuple(pair_sampling.element_rng(3, 17).integers(0, 1 << 30, 4))}
  for attempt in (1, 2):
    draws.add(tuple(pair_sampling.redraw_rng(3, 17, attempt).integers(0, 1 << 30, 4)))
  assert len(draws) == 3
  np.testing.assert_array_equal(pair_sampling.redraw_rng(3, 17, 2).integers(0, 99, 3),
                                pair_sampling.redraw_rng(3, 17, 2).integers(0, 99, 3))


@pytest.mark.parametrize("shuffle", [False, True])
def test_schedule_visits_each_item_once_per_epoch_and_any_element_directly(shuffle):
  num_items = 7
  schedule = pair_sampling.ElementSchedule(num_items, seed=4, shuffle=shuffle)
  stream = [schedule.item(c) for c in range(5 * num_items)]
  epochs = np.reshape(stream, (5, num_items))
  for epoch in epochs:
    assert sorted(epoch) == list(range(num_items))
  if shuffle:
    assert len({tuple(e) for e in epochs}) > 1
  else:
    np.testing.assert_array_equal(epochs, np.tile(np.arange(num_items), (5, 1)))
  # A fresh schedule asked in another order (as a resumed run asks) agrees.
  fresh = pair_sampling.ElementSchedule(num_items, seed=4, shuffle=shuffle)
  for counter in reversed(range(len(stream))):
    assert fresh.item(counter) == stream[counter]
  other_seed = pair_sampling.ElementSchedule(num_items, seed=5, shuffle=shuffle)
  assert ([other_seed.item(c) for c in range(len(stream))] != stream) == shuffle


def test_id_sampling_picks_persons_then_their_videos_uniformly():
  persons = ["a"] + ["b"] * 4 + ["c"] * 2
  sampler = pair_sampling.PairSampler(persons, id_sampling=True)
  assert sampler.num_items == 3
  video_counts = np.zeros(len(persons), int)
  draws_per_person = 4000
  for item in range(3):
    for counter in range(draws_per_person):
      video = sampler.video_for_item(item, pair_sampling.element_rng(1, counter))
      assert persons[video] == "abc"[item]
      video_counts[video] += 1
  assert video_counts[0] == draws_per_person
  assert _uniformity_p_value(video_counts[1:5]) > 1 - _CHI2_QUANTILE
  assert _uniformity_p_value(video_counts[5:7]) > 1 - _CHI2_QUANTILE


def test_without_id_sampling_items_are_videos():
  sampler = pair_sampling.PairSampler(["a", "b", "b"], id_sampling=False)
  assert sampler.num_items == 3
  assert [sampler.video_for_item(i, None) for i in range(3)] == [0, 1, 2]


@pytest.mark.parametrize("id_sampling", [False, True])
@pytest.mark.parametrize("process_count", [1, 2, 3])
def test_host_shares_are_disjoint_and_cover_the_split(id_sampling, process_count):
  persons = [f"id{p}" for p in (1, 1, 2, 3, 3, 3, 4, 5, 6, 6)]
  shares = [pair_sampling.host_share(persons, id_sampling, index, process_count)
            for index in range(process_count)]
  everything = sorted(itertools.chain.from_iterable(shares))
  assert everything == list(range(len(persons)))
  if id_sampling:  # A person's videos all go to one host.
    owners = {}
    for host, share in enumerate(shares):
      for video in share:
        assert owners.setdefault(persons[video], host) == host


def test_host_share_errors():
  with pytest.raises(EmptyDatasetError, match="only 2 persons"):
    pair_sampling.host_share(["a", "b"], True, 2, 3)
  assert pair_sampling.host_share(["a", "b"], False, 2, 3, allow_empty=True) == []
  with pytest.raises(ValueError, match="process_index"):
    pair_sampling.host_share(["a"], False, 1, 1)


def test_host_seeds_differ_between_hosts_and_are_stable():
  seeds = [pair_sampling.host_seed(7, host) for host in range(4)]
  assert len(set(seeds)) == 4
  assert seeds == [pair_sampling.host_seed(7, host) for host in range(4)]
  assert all(0 <= s < 2**31 for s in seeds)
