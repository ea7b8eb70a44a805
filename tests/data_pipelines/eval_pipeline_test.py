"""Tests of the evaluation pipeline (reconstruction protocol)."""

import time

import numpy as np
import pytest

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines import eval_pipeline
from mcc_jax.data_pipelines.config import datasets_config
from mcc_jax.data_pipelines.readers import video_files

SIZE = 8
TEST_VIDEOS = [("id1#a", 5), ("id1#b", 3), ("id2#a", 7)]


@pytest.fixture
def root(coded_dataset):
  return coded_dataset({"train": TEST_VIDEOS[:1], "test": TEST_VIDEOS}, size=SIZE)


def _elements(config, batch_size, **hosts):
  batches = list(data_pipelines.build_eval_pipeline(
      config, batch_size, **hosts).as_numpy_iterator())
  for batch in batches:
    assert batch["driving"].shape == (batch_size, SIZE, SIZE, 3)
    assert batch["mask"].shape == (batch_size,)
  stacked = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
  return {k: v[stacked["mask"]] for k, v in stacked.items()}, stacked


def test_every_frame_in_order_with_the_first_frame_as_source(root, media):
  config = datasets_config(name="folder", root=root, image_size=SIZE)
  elements, _ = _elements(config, 4, process_index=0, process_count=1)
  expected = [(v, f) for v, (_, n) in enumerate(TEST_VIDEOS) for f in range(n)]
  driving = media.decode_codes(elements["driving"])
  np.testing.assert_array_equal(driving, expected)
  np.testing.assert_array_equal(elements["video_index"], [v for v, _ in expected])
  np.testing.assert_array_equal(elements["frame_index"], [f for _, f in expected])
  source = media.decode_codes(elements["source"])
  np.testing.assert_array_equal(source[:, 0], driving[:, 0])
  np.testing.assert_array_equal(source[:, 1], 0)
  assert data_pipelines.eval_video_names(config) == [name for name, _ in TEST_VIDEOS]


def test_last_batch_is_padded_and_masked(root):
  config = datasets_config(name="folder", root=root, image_size=SIZE)
  _, stacked = _elements(config, 4, process_index=0, process_count=1)
  total = sum(n for _, n in TEST_VIDEOS)  # 15 frames -> 4 batches, one padding row.
  assert len(stacked["mask"]) == 16 and stacked["mask"].sum() == total
  assert not stacked["mask"][-1]
  assert np.all(stacked["driving"][-1] == 0)


def test_hosts_split_the_videos(root, media):
  config = datasets_config(name="folder", root=root, image_size=SIZE)
  seen = []
  for host in range(2):
    elements, _ = _elements(config, 4, process_index=host, process_count=2)
    seen.append(set(elements["video_index"].tolist()))
  assert seen == [{0, 2}, {1}]


def test_host_without_videos_gets_an_empty_pass(root):
  config = datasets_config(name="folder", root=root, image_size=SIZE)
  dataset = data_pipelines.build_eval_pipeline(config, 4, process_index=3,
                                               process_count=4)
  assert list(dataset.as_numpy_iterator()) == []


def test_batches_are_uint8(root):
  config = datasets_config(name="folder", root=root, image_size=SIZE)
  batch = next(data_pipelines.build_eval_pipeline(
      config, 4, process_index=0, process_count=1).as_numpy_iterator())
  assert batch["source"].dtype == batch["driving"].dtype == np.uint8


def test_videos_are_read_as_batches_are_taken(tmp_path, media, monkeypatch):
  # Host memory is bounded by the videos read ahead, whatever the split's size.
  for number in range(40):
    media.write_frame_folder(tmp_path / "root" / "test" / f"v{number:02d}",
                             media.coded_video(number % 20, 3, SIZE))
  reads = []
  original = video_files.FrameFolderVideo.read_all

  def counting(self):
    reads.append(self.name)
    return original(self)

  monkeypatch.setattr(video_files.FrameFolderVideo, "read_all", counting)
  config = datasets_config(name="folder", root=str(tmp_path / "root"), image_size=SIZE)
  batches = data_pipelines.build_eval_pipeline(config, 3, process_index=0,
                                               process_count=1).as_numpy_iterator()
  next(batches)
  time.sleep(0.5)  # Let the pipeline read as far ahead as it will.
  # One video fills a batch of 3; the pipeline may hold the videos in flight, the
  # batches ahead and the video being cut into frames, nothing more.
  assert len(reads) <= eval_pipeline.VIDEOS_IN_FLIGHT + eval_pipeline.BATCHES_AHEAD + 1
  assert sum(1 for _ in batches) == 39 and len(reads) == 40
