"""Tests of the readers for each video format of the video-preprocessing layout."""

import os

import numpy as np
import pytest
from PIL import Image

from mcc_jax.data_pipelines.bad_files import BadFrameError
from mcc_jax.data_pipelines.pair_sampling import element_rng, sample_frame_pair
from mcc_jax.data_pipelines.readers import frames as frame_files
from mcc_jax.data_pipelines.readers import video_files


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


def test_frame_folder_pair_decodes_the_drawn_frames_in_order(tmp_path, media):
  path = media.write_frame_folder(tmp_path / "vid", media.coded_video(0, 12, 8))
  video = video_files.open_video(path, 8)
  for counter in range(30):
    pair = video.read_pair(element_rng(0, counter))
    drawn = sample_frame_pair(element_rng(0, counter), 12)
    np.testing.assert_array_equal(media.decode_codes(pair)[:, 1], drawn)
    assert drawn[0] <= drawn[1]  # Earlier frame first; may be the same frame.


def test_a_frame_folder_is_listed_on_first_read_and_only_decoded_frames_opened(
    tmp_path, media, monkeypatch):
  path = media.write_frame_folder(tmp_path / "vid", media.coded_video(0, 40, 8))
  listed, opened = [], []
  real_listdir, real_open = os.listdir, frame_files.Image.open
  monkeypatch.setattr(os, "listdir", lambda p: listed.append(p) or real_listdir(p))
  monkeypatch.setattr(frame_files.Image, "open", lambda p, *a, **k: (
      opened.append(os.path.basename(p)) or real_open(p, *a, **k)))
  video = video_files.open_video(path, 8)
  assert not listed and not opened  # Opening reads nothing.
  for counter in range(3):
    drawn = sample_frame_pair(element_rng(1, counter), 40)
    opened.clear()
    video.read_pair(element_rng(1, counter))
    # The first read also reads the first frame's header (the size every frame
    # must have); otherwise only the two drawn frames are opened.
    header = ["0000000.png"] if counter == 0 else []
    assert opened == header + [f"{i:07d}.png" for i in drawn]
  assert listed == [path]  # Listed once, by the first read.


def test_a_frame_of_another_size_fails_the_reads_that_decode_it(tmp_path, media):
  path = media.write_frame_folder(tmp_path / "vid", media.coded_video(0, 3, 8))
  Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(os.path.join(path, "0000002.png"))
  video = video_files.open_video(path, 8)
  outcomes = set()
  for counter in range(20):
    drawn = sample_frame_pair(element_rng(2, counter), 3)
    if 2 in drawn:
      with pytest.raises(BadFrameError, match="0000000.png is 8x8 but 0000002.png is 12x12"):
        video.read_pair(element_rng(2, counter))
    else:
      video.read_pair(element_rng(2, counter))
    outcomes.add(2 in drawn)
  assert outcomes == {True, False}
  with pytest.raises(BadFrameError, match="mixed sizes"):
    video.read_all()


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
    assert matches[0] <= matches[1]
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
