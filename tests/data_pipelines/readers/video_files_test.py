"""Tests of the readers for each video format of the video-preprocessing layout."""

import os

import numpy as np
import pytest
from PIL import Image

from data_pipelines.pair_sampling import element_rng
from data_pipelines.readers import video_files


def _textured_video(num_frames, size, seed=0):
  # Smooth content, so that lossy codecs stay close to the original.
  y, x = np.mgrid[0:size, 0:size] / size
  frames = []
  for t in range(num_frames):
    phase = 0.3 * t + seed
    frames.append(np.stack([np.sin(3 * x + phase), np.cos(2.5 * y - phase),
                            np.sin(2 * (x + y) + 2 * phase)], -1) * 100 + 128)
  return np.asarray(frames).astype(np.uint8)


def test_frame_folder_reads_every_frame_in_order(tmp_path, media):
  frames = _textured_video(5, 16)
  path = media.write_frame_folder(tmp_path / "vid", frames)
  video = video_files.open_video(path, 16)
  assert isinstance(video, video_files.FrameFolderVideo)
  np.testing.assert_array_equal(video.read_all(), frames)


def test_frame_folder_uses_natural_order_and_ignores_non_images(tmp_path, media):
  folder = tmp_path / "vid"
  folder.mkdir()
  for index in (1, 2, 10):
    Image.fromarray(media.coded_frame(0, index, 8)).save(folder / f"frame{index}.jpg")
  (folder / ".DS_Store").write_bytes(b"\x00\x01junk")
  (folder / "notes.txt").write_text("not a frame")
  (folder / "._frame3.png").write_bytes(b"AppleDouble")  # Hidden resource fork.
  frames = video_files.open_video(str(folder), 8).read_all()
  assert len(frames) == 3
  greens = frames[..., 1].mean(axis=(1, 2))
  np.testing.assert_allclose(greens, [6, 10, 42], atol=3)  # JPEG: close, not exact.


def test_frame_folder_pair_decodes_two_distinct_frames_in_order(tmp_path, media):
  path = media.write_frame_folder(tmp_path / "vid", media.coded_video(0, 12, 8))
  video = video_files.open_video(path, 8)
  for counter in range(30):
    pair = video.read_pair(element_rng(0, counter))
    first, second = pair[:, 0, 0, 1].astype(int)
    assert first < second  # Distinct, earlier frame first.


def test_strip_is_split_into_square_frames(tmp_path, media):
  frames = _textured_video(4, 12)
  path = media.write_strip(tmp_path / "strip.png", frames)
  video = video_files.open_video(path, 12)
  assert isinstance(video, video_files.ImageStripVideo)
  np.testing.assert_array_equal(video.read_all(), frames)


def test_gif_frames_are_read(tmp_path, media):
  frames = media.coded_video(2, 6, 10)
  path = media.write_gif(tmp_path / "clip.gif", frames)
  video = video_files.open_video(path, 10)
  assert isinstance(video, video_files.GifVideo)
  np.testing.assert_array_equal(video.read_all(), frames)


def test_mp4_is_decoded_close_to_the_original(tmp_path, media):
  frames = _textured_video(10, 32)
  path = media.write_mp4(tmp_path / "clip.mp4", frames)
  video = video_files.open_video(path, 32)
  assert isinstance(video, video_files.FfmpegVideo)
  decoded = video.read_all()
  assert decoded.shape == frames.shape and decoded.dtype == np.uint8
  assert np.mean(np.abs(decoded.astype(int) - frames)) < 4.0


def test_mp4_pair_matches_the_full_decode(tmp_path, media):
  path = media.write_mp4(tmp_path / "clip.mp4", _textured_video(12, 32))
  video = video_files.open_video(path, 32)
  everything = video.read_all()
  for counter in range(5):
    pair = video.read_pair(element_rng(3, counter))
    matches = [int(np.argmin(np.abs(everything.astype(int) - f).sum(axis=(1, 2, 3))))
               for f in pair]
    assert matches[0] < matches[1]
    np.testing.assert_array_equal(pair, everything[matches])


@pytest.mark.parametrize("writer", ["frame_folder", "mp4", "gif", "strip"])
def test_frames_of_another_size_are_resized(tmp_path, media, writer):
  frames = np.stack([np.full((24, 24, 3), 60 + 20 * t, np.uint8) for t in range(3)])
  target = {"frame_folder": tmp_path / "v", "mp4": tmp_path / "v.mp4",
            "gif": tmp_path / "v.gif", "strip": tmp_path / "v.png"}[writer]
  path = getattr(media, f"write_{writer}")(target, frames)
  resized = video_files.open_video(path, 8).read_all()
  assert resized.shape == (3, 8, 8, 3)
  np.testing.assert_allclose(resized.mean(axis=(1, 2, 3)), [60, 80, 100], atol=3)


def test_person_of_a_voxceleb_name(tmp_path, media):
  path = media.write_frame_folder(tmp_path / "id10001#7w0IBEWc9Qw#000993#001143.mp4",
                                  media.coded_video(0, 2, 4))
  video = video_files.open_video(path, 4)
  assert video.name == os.path.basename(path)
  assert video.person == "id10001"
