"""Tests of the ``folder`` dataset kind: the video-preprocessing layout on disk."""

import os

import numpy as np

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines.config import datasets_config
from mcc_jax.data_pipelines.sources import folder


def test_split_listing_finds_each_video_kind_and_skips_other_files(tmp_path, media):
  split = tmp_path / "root" / "train"
  frames = media.coded_video(0, 3, 8)
  media.write_frame_folder(split / "a_folder", frames)
  media.write_mp4(split / "b.mp4", np.repeat(np.repeat(frames, 2, 1), 2, 2))
  media.write_gif(split / "c.gif", frames)
  media.write_strip(split / "d.png", frames)
  (split / ".DS_Store").write_bytes(b"junk")
  (split / "readme.txt").write_text("hello")
  videos = folder.open_split(str(tmp_path / "root"), "train", 8, skip_bad_files=False)
  assert [v.name for v in videos] == ["a_folder", "b.mp4", "c.gif", "d.png"]
  assert [type(v).__name__ for v in videos] == [
      "FrameFolderVideo", "FfmpegVideo", "GifVideo", "ImageStripVideo"]
  for video in videos:
    assert video.read_all().shape == (3, 8, 8, 3)


def test_listing_and_building_a_pipeline_touch_no_video(tmp_path, media, monkeypatch):
  split = tmp_path / "root" / "train"
  for number in range(6):
    media.write_frame_folder(split / f"id{number}#0", media.coded_video(number, 3, 8))
  media.write_mp4(split / "id9#0.mp4", np.repeat(np.repeat(
      media.coded_video(9, 3, 8), 2, 1), 2, 2))
  touched = []
  for name in ("listdir", "scandir", "stat", "lstat", "open"):
    real = getattr(os, name)

    def spy(path, *args, real=real, name=name, **kwargs):
      if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(
          str(split) + os.sep):
        touched.append((name, os.fspath(path)))
      return real(path, *args, **kwargs)

    monkeypatch.setattr(os, name, spy)
  config = datasets_config(name="folder", root=str(tmp_path / "root"), image_size=8)
  source = folder.FolderSource(config, "train")
  assert source.video_names == [f"id{n}#0" for n in range(6)] + ["id9#0.mp4"]
  data_pipelines.build_train_pipeline(config, 2, seed=0, process_index=0,
                                      process_count=1)
  assert touched == []  # Only the split folder itself was read.
  next(data_pipelines.build_train_pipeline(config, 2, seed=0, process_index=0,
                                           process_count=1).as_numpy_iterator())
  assert any(name == "listdir" for name, _ in touched)  # The spies do see reads.
