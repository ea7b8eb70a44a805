"""Every dataset kind keeps the contract of `DatasetSource` that the pipelines rely on.

That includes exact resume: a training stream started at batch n (``start_batch``)
continues the uninterrupted stream, for every kind.

A kind without a small dataset in `_DATASETS` fails here: adding a kind means adding
one (see docs/data.md, "Adding a dataset kind").
"""

import numpy as np
import pytest
import tensorflow as tf

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines import config as config_lib
from mcc_jax.data_pipelines import sources
from mcc_jax.data_pipelines.sources.base import DatasetSource
from mcc_jax.data_pipelines.sources.tfds.builder import build_tfds_dataset

SIZE = 8
# Two persons, one with two videos; coded frames tell video and frame apart.
FOLDER_VIDEOS = [("idA#0", 3), ("idA#1", 5), ("idB#0", 4)]


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory, media):
  root = tmp_path_factory.mktemp("contract") / "tree"
  for number, (name, frames) in enumerate(FOLDER_VIDEOS):
    media.write_frame_folder(root / "train" / name, media.coded_video(number, frames, SIZE))
  return str(root)


def _records(tree, scratch):
  data_dir = scratch.mktemp("contract_records")
  build_tfds_dataset(tree, str(data_dir), SIZE)
  return str(data_dir)


# Kind -> (folder tree, tmp_path_factory) -> fields of a small ``datasets`` block
# with a train split.
_DATASETS = {
    "folder": lambda tree, scratch: dict(root=tree),
    "tfds": lambda tree, scratch: dict(root=_records(tree, scratch)),
    "sample": lambda tree, scratch: {},
    "synthetic": lambda tree, scratch: dict(synthetic=dict(
        num_train_identities=2, videos_per_identity=2, num_frames=3)),
}


@pytest.fixture(scope="module", params=sources.names())
def kind_config(request, folder_root, tmp_path_factory):
  name = request.param
  assert name in _DATASETS, (f"dataset kind {name!r} has no small dataset in "
                             "contract_test._DATASETS")
  fields = _DATASETS[name](folder_root, tmp_path_factory)
  return config_lib.datasets_config(name=name, image_size=SIZE, **fields)


def _decoded(source, stored):
  return np.asarray(source.decode(tf.convert_to_tensor(stored)))


def test_kinds_are_found_by_name():
  assert sources.names() == config_lib.DATASET_NAMES
  assert set(sources.names()) >= {"folder", "tfds", "sample", "synthetic"}
  for name in sources.names():
    assert issubclass(sources.get(name), DatasetSource)
  with pytest.raises(ValueError, match="unknown dataset kind 'voxceleb'.*folder"):
    sources.get("voxceleb")


def test_listing_is_sorted_and_opening_a_position_gives_that_video(kind_config):
  source = sources.get(kind_config.name)(kind_config, "train")
  names = source.video_names
  assert names and names == sorted(names) and len(set(names)) == len(names)
  assert len(source.persons) == len(names)
  for position, name in enumerate(names):
    video = source.open(position)
    assert (video.name, video.person) == (name, source.persons[position])
  first = kind_config.copy_and_resolve_references()
  first.max_videos = 1
  assert sources.get(first.name)(first, "train").video_names == names[:1]


def test_readers_return_stored_frames_that_decode_to_the_videos_frames(kind_config):
  source = sources.get(kind_config.name)(kind_config, "train")
  stored = source.stored_frame
  empty = source.stored_frame.empty(2)
  assert empty.shape == (2,) + tuple(stored.shape)
  for position in range(len(source.video_names)):
    video = source.open(position)
    everything = video.read_all()
    assert everything.dtype == empty.dtype and everything.shape[1:] == empty.shape[1:]
    frames = _decoded(source, everything)
    assert frames.dtype == np.uint8 and frames.shape[1:] == (SIZE, SIZE, 3)
    assert len(frames) >= 2
    pair = video.read_pair(np.random.default_rng(position))
    assert pair.dtype == empty.dtype and pair.shape == empty.shape
    np.testing.assert_array_equal(
        _decoded(source, video.read_pair(np.random.default_rng(position))),
        _decoded(source, pair))
    # Each frame of the pair is a frame of the video, the earlier one first.
    hits = [np.flatnonzero((frames == f).all(axis=(1, 2, 3)))
            for f in _decoded(source, pair)]
    # Drawn with replacement: the two may be the same frame.
    assert all(len(h) >= 1 for h in hits) and hits[0][0] <= hits[1][-1]


def _train_batches(config, seed, start_batch, count, batch_size=3):
  dataset = data_pipelines.build_train_pipeline(
      config, batch_size, seed=seed, start_batch=start_batch, process_index=0,
      process_count=1)
  return [b for _, b in zip(range(count), dataset.as_numpy_iterator())]


def test_a_stream_started_at_batch_n_continues_the_uninterrupted_stream(kind_config):
  # Exact resume: batch k depends only on the data, the seed, the host and k. With
  # shuffled epochs, id sampling and both flips on, and 3 pairs a batch: batch 1
  # (element 3) starts mid-way through an epoch of the two-person datasets here,
  # batch 4 (element 12) at an epoch's start.
  whole = _train_batches(kind_config, 7, 0, 7)
  for start, count in ((0, 7), (1, 6), (4, 3)):
    for expected, got in zip(whole[start:], _train_batches(kind_config, 7, start, count),
                             strict=True):
      for key in ("source", "driving"):
        np.testing.assert_array_equal(got[key], expected[key])
  other_seed = _train_batches(kind_config, 8, 0, 1)
  assert not np.array_equal(other_seed[0]["source"], whole[0]["source"])
