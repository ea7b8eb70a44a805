"""Tests of the TFDS builder, the record index and the ``'tfds'`` pipelines."""

import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines.sources.tfds import record_index
from mcc_jax.data_pipelines.config import datasets_config
from mcc_jax.data_pipelines.sources.folder import open_split
from mcc_jax.data_pipelines.sources.tfds.builder import build_tfds_dataset
from mcc_jax.data_pipelines.sources.tfds.split import TfdsSplit, dataset_dir

SIZE = 8
TRAIN = [("idA#0", 4), ("idB#0", 6), ("idB#1", 5), ("idC#0", 3)]
TEST = [("idD#0", 5), ("idE#0", 4)]
MP4_CODE = 9  # Video code of the extra mp4 train video.


@pytest.fixture(scope="module")
def build(tmp_path_factory, media):
  """A folder tree (PNG folders and a 16x16 mp4) and its TFDS build at 8x8."""
  base = tmp_path_factory.mktemp("tfds")
  root = base / "tree"
  for split, videos in (("train", TRAIN), ("test", TEST)):
    for number, (name, frames) in enumerate(videos):
      media.write_frame_folder(root / split / name, media.coded_video(number, frames, SIZE))
  # Resized from 16x16 while converting.
  media.write_mp4(root / "train" / "idF#0.mp4", media.coded_video(MP4_CODE, 4, 16))
  (root / "train" / ".DS_Store").write_bytes(b"junk")
  data_dir = base / "records"
  directory = build_tfds_dataset(str(root), str(data_dir), SIZE)
  return str(root), str(data_dir), directory


def _config(data_dir, **overrides):
  fields = dict(name="tfds", root=data_dir, image_size=SIZE)
  fields.update(overrides)
  return datasets_config(**fields)


def test_build_writes_records_index_and_metadata(build):
  _, data_dir, directory = build
  assert directory == dataset_dir(data_dir, SIZE)
  assert directory.endswith(os.path.join("talking_head_videos", f"{SIZE}px", "1.0.0"))
  for split in ("train", "test"):
    assert os.path.exists(record_index.index_path(directory, split))
  builder = tfds.builder_from_directory(directory)
  assert builder.info.splits["train"].num_examples == sum(n for _, n in TRAIN) + 4
  assert builder.info.splits["test"].num_examples == sum(n for _, n in TEST)


def test_round_trip_through_plain_tfds_matches_the_folder_readers(build):
  root, _, directory = build
  builder = tfds.builder_from_directory(directory)
  for split in ("train", "test"):
    videos = {v.name: v.read_all() for v in open_split(root, split, SIZE,
                                                       skip_bad_files=False)}
    seen = {}
    for example in builder.as_dataset(split=split, shuffle_files=False).as_numpy_iterator():
      name = example["video_name"].decode()
      np.testing.assert_array_equal(example["frame"], videos[name][example["frame_index"]])
      assert example["num_frames"] == len(videos[name])
      assert example["person"].decode() == name.split("#")[0]
      seen.setdefault(name, []).append(int(example["frame_index"]))
    assert {n: sorted(f) for n, f in seen.items()} == {
        n: list(range(len(v))) for n, v in videos.items()}


def test_random_access_reads_the_indexed_records(build):
  _, data_dir, directory = build
  split = TfdsSplit(data_dir, "train", SIZE)
  assert split.video_names == sorted([n for n, _ in TRAIN] + ["idF#0.mp4"])
  assert split.persons == [n.split("#")[0] for n in split.video_names]
  features = tfds.builder_from_directory(directory).info.features
  for video, records in enumerate(split.index.records_of_video):
    for frame_index, record in enumerate(records):
      example = features.deserialize_example_np(split.files.read(record))
      assert example["video_name"].decode() == split.video_names[video]
      assert example["frame_index"] == frame_index


def test_a_missing_index_is_rebuilt_identically(build, tmp_path, caplog):
  _, _, directory = build
  copy = shutil.copytree(directory, tmp_path / "copy")
  os.remove(record_index.index_path(copy, "test"))
  saved = record_index.RecordIndex.load(tfds.builder_from_directory(directory), "test")
  rebuilt = record_index.RecordIndex.load(tfds.builder_from_directory(str(copy)), "test")
  assert "is missing; scanning" in caplog.text
  for field in ("shard", "offset", "length", "video", "frame_index"):
    np.testing.assert_array_equal(getattr(saved, field), getattr(rebuilt, field))
  assert saved.video_names == rebuilt.video_names == [n for n, _ in TEST]


def test_training_pairs_from_records(build, media):
  _, data_dir, _ = build
  dataset = data_pipelines.build_train_pipeline(
      _config(data_dir, time_flip=False), 16, seed=0, process_index=0, process_count=1)
  batches = [b for _, b in zip(range(6), dataset.as_numpy_iterator())]
  source = media.decode_codes(np.concatenate([b["source"] for b in batches]))
  driving = media.decode_codes(np.concatenate([b["driving"] for b in batches]))
  np.testing.assert_array_equal(source[:, 0], driving[:, 0])
  # H.264 shifts the mp4's flat colours by a few levels, too much to read its frames.
  lossless = source[:, 0] != MP4_CODE
  assert np.all(source[lossless, 1] <= driving[lossless, 1])  # Same frame possible.
  # id sampling: persons A, B (2 videos), C, F equally often.
  persons = {0: "A", 1: "B", 2: "B", 3: "C", MP4_CODE: "F"}
  counts = {p: 0 for p in "ABCF"}
  for code in source[:, 0]:
    counts[persons[int(code)]] += 1
  assert counts == {p: 24 for p in "ABCF"}  # 96 pairs, each epoch visits each person.
  again = next(data_pipelines.build_train_pipeline(
      _config(data_dir, time_flip=False), 16, seed=0, process_index=0,
      process_count=1).as_numpy_iterator())
  np.testing.assert_array_equal(again["source"], batches[0]["source"])


def test_two_hosts_read_disjoint_persons(build, media):
  _, data_dir, _ = build
  seen = []
  for host in range(2):
    dataset = data_pipelines.build_train_pipeline(
        _config(data_dir), 8, seed=0, process_index=host, process_count=2)
    codes = np.concatenate([media.decode_codes(b["source"])[:, 0] for _, b in
                            zip(range(4), dataset.as_numpy_iterator())])
    seen.append(set(codes.tolist()))
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == {0, 1, 2, 3, MP4_CODE}


def test_evaluation_from_records_equals_evaluation_from_folders(build):
  root, data_dir, _ = build
  from_records = list(data_pipelines.build_eval_pipeline(
      _config(data_dir), 4, process_index=0, process_count=1).as_numpy_iterator())
  from_folders = list(data_pipelines.build_eval_pipeline(
      datasets_config(name="folder", root=root, image_size=SIZE), 4, process_index=0,
      process_count=1).as_numpy_iterator())
  assert len(from_records) == len(from_folders)
  for a, b in zip(from_records, from_folders):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert data_pipelines.eval_video_names(_config(data_dir)) == [n for n, _ in TEST]


def test_loading_an_unbuilt_size_names_the_expected_directory(build):
  _, data_dir, _ = build
  with pytest.raises(FileNotFoundError, match="talking_head_videos.16px.*build-tfds"):
    data_pipelines.build_train_pipeline(_config(data_dir, image_size=16), 2, seed=0,
                                        process_index=0, process_count=1)


def test_build_with_bad_video_fails_or_skips(tmp_path, media):
  root = tmp_path / "tree"
  media.write_frame_folder(root / "train" / "good", media.coded_video(0, 3, SIZE))
  (root / "train" / "broken.mp4").write_bytes(b"\x00" * 64)
  with pytest.raises(data_pipelines.BadVideoError, match="broken.mp4"):
    build_tfds_dataset(str(root), str(tmp_path / "strict"), SIZE)
  directory = build_tfds_dataset(str(root), str(tmp_path / "lenient"), SIZE,
                                 skip_bad_files=True, frame_format="jpeg")
  builder = tfds.builder_from_directory(directory)
  assert builder.info.splits["train"].num_examples == 3
  assert list(builder.info.splits) == ["train"]
