"""Bad inputs: every case either raises naming the file or is skipped and counted."""

import logging
import os
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines.bad_files import BadFileLog, BadVideoError, EmptyDatasetError
from mcc_jax.data_pipelines.config import datasets_config

SIZE = 8
GOOD_VIDEOS = 2  # Coded PNG folders 'good0', 'good1' (video codes 0 and 1).


def _make_bad(split_dir, kind, media):
  """Creates one bad video of a kind in `split_dir`; returns its path."""
  rng = np.random.default_rng(0)
  frame = media.coded_frame(7, 0, SIZE)
  if kind == "folder_with_one_frame":
    return media.write_frame_folder(split_dir / "one_frame", [frame])
  if kind == "folder_without_frames":
    folder = split_dir / "no_frames"
    folder.mkdir()
    (folder / ".DS_Store").write_bytes(b"junk")
    return str(folder)
  if kind == "mp4_with_one_frame":
    return media.write_mp4(split_dir / "one_frame.mp4", [np.repeat(np.repeat(frame, 2, 0),
                                                                  2, 1)])
  if kind == "strip_with_one_frame":
    return media.write_strip(split_dir / "one_frame.png", [frame])
  if kind == "truncated_mp4":
    full = media.write_mp4(split_dir.parent.parent / f"full_{split_dir.name}.mp4",
                           media.coded_video(7, 20, 16))
    path = split_dir / "truncated.mp4"
    data = open(full, "rb").read()
    path.write_bytes(data[:len(data) // 2])
    return str(path)
  if kind == "garbage_mp4":
    path = split_dir / "garbage.mp4"
    path.write_bytes(rng.bytes(3000))
    return str(path)
  if kind == "garbage_gif":
    path = split_dir / "garbage.gif"
    path.write_bytes(b"GIF89a" + rng.bytes(100))
    return str(path)
  if kind == "garbage_strip":
    path = split_dir / "garbage.png"
    path.write_bytes(rng.bytes(500))
    return str(path)
  if kind == "strip_of_wrong_width":
    path = split_dir / "wrong_width.png"
    Image.fromarray(np.zeros((SIZE, SIZE * 2 + 3, 3), np.uint8)).save(path)
    return str(path)
  if kind == "folder_with_truncated_png":
    folder = media.write_frame_folder(split_dir / "truncated_frame", [frame, frame])
    second = os.path.join(folder, "0000001.png")
    big = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)  # Incompressible.
    data = tf.io.encode_png(big).numpy()
    open(second, "wb").write(data[:len(data) // 2])
    return folder
  if kind == "folder_with_garbage_png":
    folder = media.write_frame_folder(split_dir / "garbage_frame", [frame, frame])
    open(os.path.join(folder, "0000001.png"), "wb").write(rng.bytes(400))
    return folder
  if kind == "folder_with_mixed_sizes":
    folder = media.write_frame_folder(split_dir / "mixed_sizes", [frame] * 3)
    Image.fromarray(np.zeros((SIZE + 4, SIZE + 4, 3), np.uint8)).save(
        os.path.join(folder, "0000002.png"))
    return folder
  raise ValueError(kind)


BAD_KINDS = ["folder_without_frames", "truncated_mp4", "garbage_mp4", "garbage_gif",
             "garbage_strip", "strip_of_wrong_width", "folder_with_truncated_png",
             "folder_with_garbage_png", "folder_with_mixed_sizes"]
# Videos whose container or folder is fine but one frame is bad: the frames (of
# video code 7) that still decode.
GOOD_FRAMES_OF_VIDEO_WITH_BAD_FRAME = {"folder_with_truncated_png": {0},
                                       "folder_with_garbage_png": {0},
                                       "folder_with_mixed_sizes": {0, 1}}
# Pairs are drawn with replacement, so one frame makes a training pair (twice the
# frame); evaluation needs a source and another frame.
ONE_FRAME_KINDS = ["folder_with_one_frame", "mp4_with_one_frame", "strip_with_one_frame"]


@pytest.fixture
def dataset_with_bad_video(tmp_path, media):
  """Builds root/train and root/test with two good videos and one bad one each."""
  def build(kind):
    root = tmp_path / "root"
    bad_paths = {}
    for split in ("train", "test"):
      for number in range(GOOD_VIDEOS):
        media.write_frame_folder(root / split / f"good{number}",
                                 media.coded_video(number, 4, SIZE))
      bad_paths[split] = _make_bad(root / split, kind, media)
    return str(root), bad_paths

  return build


def _config(root, **overrides):
  # In-order visits without id sampling reach every video within the first epoch.
  # One bad video of three is far above the default share of bad files allowed.
  fields = dict(name="folder", root=root, image_size=SIZE, id_sampling=False,
                shuffle_videos=False, horizontal_flip=False, time_flip=False,
                max_bad_file_share=1.0)
  fields.update(overrides)
  return datasets_config(**fields)


def _take_batches(dataset, count):
  return [batch for _, batch in zip(range(count), dataset.as_numpy_iterator())]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_training_raises_naming_the_bad_file(dataset_with_bad_video, kind):
  root, bad = dataset_with_bad_video(kind)
  name = os.path.basename(bad["train"])
  with pytest.raises((BadVideoError, tf.errors.OpError), match=name):
    dataset = data_pipelines.build_train_pipeline(
        _config(root), 2, seed=0, process_index=0, process_count=1)
    _take_batches(dataset, 4)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_training_skips_and_counts_the_bad_file(dataset_with_bad_video, media, caplog,
                                                kind):
  root, bad = dataset_with_bad_video(kind)
  log = BadFileLog("test")
  with caplog.at_level(logging.WARNING, logger="mcc_jax.data_pipelines.bad_files"):
    dataset = data_pipelines.build_train_pipeline(
        _config(root, skip_bad_files=True), 3, seed=0, process_index=0, process_count=1,
        bad_file_log=log)
    batches = _take_batches(dataset, 6)
  assert len(batches) == 6
  # A video whose container or folder is fine but one frame is not fails only the
  # reads of that frame (skipping it as a whole from the moment it is found would
  # make the stream depend on thread timing and on where a run was resumed): its
  # good frames may still appear, its bad frame never.
  good_frames_of_bad_video = GOOD_FRAMES_OF_VIDEO_WITH_BAD_FRAME.get(kind, set())
  for batch in batches:
    assert batch["source"].shape == (3, SIZE, SIZE, 3)
    codes = media.decode_codes(np.stack([batch["source"], batch["driving"]]))
    for video, frame in codes.reshape(-1, 2):
      assert video in range(GOOD_VIDEOS) or (video == 7
                                             and frame in good_frames_of_bad_video)
  assert [entry.path for entry in log.entries] == [bad["train"]]
  assert bad["train"] in caplog.text and "Skipping bad file 1" in caplog.text


@pytest.mark.parametrize("kind", ONE_FRAME_KINDS)
def test_training_pairs_a_one_frame_video_with_itself(dataset_with_bad_video, media, kind):
  root, bad = dataset_with_bad_video(kind)
  log = BadFileLog("test")
  dataset = data_pipelines.build_train_pipeline(
      _config(root), 3, seed=0, process_index=0, process_count=1, bad_file_log=log)
  batches = _take_batches(dataset, 4)
  source = np.concatenate([b["source"] for b in batches])
  driving = np.concatenate([b["driving"] for b in batches])
  # In-order visits: every third element is the one-frame video (code 7, frame 0).
  lossless = kind != "mp4_with_one_frame"
  for element in range(2, 12, 3):
    np.testing.assert_array_equal(source[element], driving[element])
    if lossless:
      np.testing.assert_array_equal(media.decode_codes(source[element]), [7, 0])
  assert log.count == 0


@pytest.mark.parametrize("kind", ["truncated_mp4", "folder_with_mixed_sizes",
                                  "folder_with_one_frame", "mp4_with_one_frame"])
def test_evaluation_raises_or_skips_the_bad_file(dataset_with_bad_video, media, kind):
  root, bad = dataset_with_bad_video(kind)
  with pytest.raises((BadVideoError, tf.errors.OpError),
                     match=os.path.basename(bad["test"])):
    list(data_pipelines.build_eval_pipeline(
        _config(root), 4, process_index=0, process_count=1).as_numpy_iterator())
  log = BadFileLog("test")
  config = _config(root, skip_bad_files=True)
  batches = list(data_pipelines.build_eval_pipeline(
      config, 4, process_index=0, process_count=1, bad_file_log=log).as_numpy_iterator())
  masks = np.concatenate([b["mask"] for b in batches])
  assert masks.sum() == GOOD_VIDEOS * 4  # Every frame of the good videos, nothing else.
  assert log.count == 1 and log.entries[0].path == bad["test"]


def test_missing_root_and_split_raise_naming_the_path(tmp_path, media):
  missing = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    data_pipelines.build_train_pipeline(_config(missing, skip_bad_files=True), 2, seed=0,
                                        process_index=0, process_count=1)
  media.write_frame_folder(tmp_path / "root" / "test" / "v", media.coded_video(0, 3, SIZE))
  with pytest.raises(FileNotFoundError, match=r"train'? does not exist"):
    data_pipelines.build_train_pipeline(_config(str(tmp_path / "root")), 2, seed=0,
                                        process_index=0, process_count=1)


def test_empty_split_raises_naming_the_folder(tmp_path):
  split = tmp_path / "root" / "train"
  split.mkdir(parents=True)
  (split / ".DS_Store").write_bytes(b"junk")
  (split / "list.txt").write_text("no videos here")
  for skip in (False, True):
    with pytest.raises(EmptyDatasetError, match="holds no video"):
      data_pipelines.build_train_pipeline(_config(str(tmp_path / "root"),
                                                  skip_bad_files=skip),
                                          2, seed=0, process_index=0, process_count=1)


def test_all_videos_bad_raises_instead_of_hanging(tmp_path):
  split = tmp_path / "root" / "train"
  split.mkdir(parents=True)
  for index in range(3):
    (split / f"broken{index}.mp4").write_bytes(b"\x00" * 100)
  dataset = data_pipelines.build_train_pipeline(
      _config(str(tmp_path / "root"), skip_bad_files=True), 2, seed=0, process_index=0,
      process_count=1)
  outcome = {}

  def consume():
    try:
      _take_batches(dataset, 1)
      outcome["result"] = "yielded a batch"
    except tf.errors.OpError as error:
      outcome["result"] = str(error)

  worker = threading.Thread(target=consume, daemon=True)
  worker.start()
  worker.join(timeout=60)
  assert not worker.is_alive(), "the pipeline hung"
  assert "all 3 videos of this host are unreadable" in outcome["result"]


def test_grayscale_rgba_and_16_bit_frames_are_used(tmp_path):
  split = tmp_path / "root" / "train"
  levels = {"gray": 60, "rgba": 120, "deep": 200}
  for name, level in levels.items():
    folder = split / name
    folder.mkdir(parents=True)
    for index in range(2):
      path = folder / f"{index}.png"
      if name == "gray":
        Image.fromarray(np.full((SIZE, SIZE), level, np.uint8), mode="L").save(path)
      elif name == "rgba":
        Image.fromarray(np.full((SIZE, SIZE, 4), level, np.uint8), mode="RGBA").save(path)
      else:
        deep = np.full((SIZE, SIZE, 1), level * 257, np.uint16)
        path.write_bytes(tf.io.encode_png(deep).numpy())
  log = BadFileLog("test")
  dataset = data_pipelines.build_train_pipeline(
      _config(str(tmp_path / "root"), skip_bad_files=True), 3,
      seed=0, process_index=0, process_count=1, bad_file_log=log)
  batch = _take_batches(dataset, 1)[0]
  assert log.count == 0
  for name, index in zip(sorted(levels), range(3)):  # In-order: deep, gray, rgba.
    np.testing.assert_allclose(batch["source"][index], levels[name], atol=1e-3)


@pytest.mark.parametrize("kind", ["garbage_mp4", "folder_with_garbage_png"])
def test_a_skipped_bad_video_does_not_shift_the_stream(dataset_with_bad_video, kind):
  # Shuffled epochs and flips: the replacement of an element is drawn from its own
  # generator, so batch k is the same whether the stream started at 0 or at k, and
  # whichever elements met the bad video first.
  root, bad = dataset_with_bad_video(kind)
  config = _config(root, skip_bad_files=True, shuffle_videos=True, horizontal_flip=True,
                   time_flip=True)

  def batches(start, count):
    log = BadFileLog("test")
    dataset = data_pipelines.build_train_pipeline(
        config, 3, seed=5, start_batch=start, process_index=0, process_count=1,
        bad_file_log=log)
    return _take_batches(dataset, count), log

  whole, log = batches(0, 8)
  assert [entry.path for entry in log.entries] == [bad["train"]]
  for start in (3, 6):
    rest, _ = batches(start, 8 - start)
    for expected, got in zip(whole[start:], rest):
      for key in ("source", "driving"):
        np.testing.assert_array_equal(got[key], expected[key])


def test_more_bad_files_than_the_allowed_share_stop_the_pipeline(dataset_with_bad_video):
  root, bad = dataset_with_bad_video("garbage_mp4")
  log = BadFileLog("train split")
  dataset = data_pipelines.build_train_pipeline(
      _config(root, skip_bad_files=True, max_bad_file_share=0.2), 3, seed=0,
      process_index=0, process_count=1, bad_file_log=log)
  # 1 of 3 videos is 33% > 20%; the message names the file, the count and the limit.
  with pytest.raises(tf.errors.OpError,
                     match=r"1 of 3 videos .* unreadable .*max_bad_file_share = 0.2.*"
                           r"garbage\.mp4"):
    _take_batches(dataset, 4)
  assert log.count == 1 and log.covered == 3 and log.share == pytest.approx(1 / 3)


def test_bad_file_log_counts_its_share_and_appends_new_files_to_a_text_file(tmp_path):
  log = BadFileLog("train split")
  log.cover("train, host 0", 100, max_share=0.02)
  log.cover("train, host 0", 100, max_share=0.02)  # A rebuilt pipeline: not added.
  log.record(BadVideoError("/data/a.mp4", "cannot open video"))
  assert log.covered == 100 and log.share == 0.01
  listing = tmp_path / "bad_files.txt"
  assert log.append_new_to(str(listing)) == 1
  log.record(BadVideoError("/data/b", "frame 3.png: cannot decode\nimage"))  # 2%: allowed.
  assert log.append_new_to(str(listing)) == 1 and log.append_new_to(str(listing)) == 0
  assert listing.read_text().splitlines() == [
      "/data/a.mp4\tcannot open video", "/data/b\tframe 3.png: cannot decode image"]
  # A resumed run's new log does not write the files it finds again.
  again = BadFileLog("train split")
  again.record(BadVideoError("/data/b", "frame 3.png: cannot decode image"))
  again.record(BadVideoError("/data/c.gif", "cannot decode GIF"))
  assert again.append_new_to(str(listing)) == 1
  assert len(listing.read_text().splitlines()) == 3
  # 3 of 100 is above 2%: the error names the files, the count and the limit.
  with pytest.raises(data_pipelines.TooManyBadFilesError,
                     match=r"3 of 100 videos .*3\.00%.* 0\.02 .*/data/a.mp4, /data/b, "
                           r"/data/c.gif"):
    log.record(BadVideoError("/data/c.gif", "cannot decode GIF"))
  assert log.count == 3
