"""Exact resume: batch k of the training stream depends only on the data, seed, host and k.

For every dataset kind: the same seed gives the same stream, and a stream started at
batch n (``start_batch=n``, what a resumed run asks for) yields exactly batches n, n+1,
... of the uninterrupted stream, with shuffled epochs, id sampling and both flips on.
"""

import numpy as np
import pytest

import data_pipelines
from data_pipelines import config as config_lib
from data_pipelines.sources.tfds.builder import build_tfds_dataset

SIZE = 8
BATCH = 3
TOTAL_BATCHES = 7
# Two persons, one with two videos: 3 videos, 2 items an epoch with id sampling, so
# batch 4 (element 12) starts mid-way through the stream's epochs.
FOLDER_VIDEOS = [("idA#0", 3), ("idA#1", 5), ("idB#0", 4)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory, media):
  root = tmp_path_factory.mktemp("resume") / "tree"
  for number, (name, frames) in enumerate(FOLDER_VIDEOS):
    media.write_frame_folder(root / "train" / name, media.coded_video(number, frames, SIZE))
  return str(root)


def _fields(kind, tree, scratch):
  if kind == "folder":
    return dict(root=tree)
  if kind == "tfds":
    data_dir = scratch.mktemp("resume_records")
    build_tfds_dataset(tree, str(data_dir), SIZE)
    return dict(root=str(data_dir))
  if kind == "synthetic":
    return dict(synthetic=dict(num_train_identities=2, videos_per_identity=2,
                               num_frames=3))
  return {}  # sample


def _batches(config, seed, start_batch, count):
  dataset = data_pipelines.build_train_pipeline(
      config, BATCH, seed=seed, start_batch=start_batch, process_index=0, process_count=1)
  return [b for _, b in zip(range(count), dataset.as_numpy_iterator())]


def _assert_same(first, second):
  assert len(first) == len(second)
  for a, b in zip(first, second):
    for key in ("source", "driving"):
      np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("kind", ["synthetic", "sample", "folder", "tfds"])
def test_a_stream_started_at_batch_n_continues_the_uninterrupted_stream(
    kind, tree, tmp_path_factory):
  config = config_lib.datasets_config(name=kind, image_size=SIZE,
                                      **_fields(kind, tree, tmp_path_factory))
  whole = _batches(config, 7, 0, TOTAL_BATCHES)
  _assert_same(whole, _batches(config, 7, 0, TOTAL_BATCHES))
  for start in (1, 4):
    _assert_same(whole[start:], _batches(config, 7, start, TOTAL_BATCHES - start))
  other_seed = _batches(config, 8, 0, 1)
  assert not np.array_equal(other_seed[0]["source"], whole[0]["source"])
