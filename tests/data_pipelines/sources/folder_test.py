"""Tests of the ``folder`` dataset kind: the video-preprocessing layout on disk."""

import numpy as np

from data_pipelines.sources import folder


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
