"""Tests of person grouping, frame-pair sampling and host sharding."""

import itertools

import numpy as np
import pytest
from scipy import stats

from data_pipelines import pair_sampling
from data_pipelines.bad_files import EmptyDatasetError

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


def test_frame_pairs_are_distinct_sorted_and_uniform():
  num_frames, draws = 6, 15000
  counts = {pair: 0 for pair in itertools.combinations(range(num_frames), 2)}
  for counter in range(draws):
    first, second = pair_sampling.sample_frame_pair(
        pair_sampling.element_rng(5, counter), num_frames)
    assert 0 <= first < second < num_frames
    counts[(int(first), int(second))] += 1
  assert _uniformity_p_value(list(counts.values())) > 1 - _CHI2_QUANTILE


def test_frame_pair_needs_two_frames():
  with pytest.raises(ValueError, match="at least 2"):
    pair_sampling.sample_frame_pair(np.random.default_rng(0), 1)


def test_element_generator_depends_only_on_seed_and_counter():
  first = pair_sampling.element_rng(3, 17).integers(0, 1 << 30, 4)
  again = pair_sampling.element_rng(3, 17).integers(0, 1 << 30, 4)
  other = pair_sampling.element_rng(3, 18).integers(0, 1 << 30, 4)
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


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
