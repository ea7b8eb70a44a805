"""Video reading and atomic H.264 writing."""

import fractions

import av
import numpy as np
import pytest

from mcc_jax import media


def _moving_square(count, height, width):
  frames = np.full((count, height, width, 3), 40, np.uint8)
  for t in range(count):
    frames[t, 10:30, 5 + 3 * t:25 + 3 * t] = (230, 60, 20)
  return frames


def test_round_trip_keeps_frame_count_rate_and_content(tmp_path):
  frames = _moving_square(9, 48, 64)
  path = tmp_path / "clip.mp4"
  media.write_video(path, frames, fractions.Fraction(30000, 1001), crf=0)
  clip = media.read_video(path)
  assert len(clip) == 9
  assert clip.fps == fractions.Fraction(30000, 1001)
  assert clip.source_size == (48, 64)
  # Lossless x264 with 4:2:0 chroma: colours bleed at edges only, so the means agree.
  assert np.abs(clip.frames.astype(int) - frames).mean() < 6
  # The moving square is where it was written, frame by frame.
  red = clip.frames[..., 0].astype(int) - clip.frames[..., 2]
  columns = np.argmax(red[:, 20] > 100, axis=1)
  np.testing.assert_allclose(columns, 5 + 3 * np.arange(9), atol=1)


def test_odd_sizes_are_padded_to_even(tmp_path):
  path = tmp_path / "odd.mp4"
  media.write_video(path, _moving_square(3, 33, 47), 25)
  with av.open(str(path)) as container:
    stream = container.streams.video[0]
    assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 48, 34)


def test_transform_and_max_frames(tmp_path):
  path = tmp_path / "clip.mp4"
  media.write_video(path, _moving_square(6, 40, 60), 12)
  clip = media.read_video(path, transform=lambda f: media.crop_and_resize(f, None, 16),
                          max_frames=4)
  assert clip.frames.shape == (4, 16, 16, 3) and clip.source_size == (40, 60)
  assert clip.fps == 12


def test_gif_is_read_with_its_rate(tmp_path):
  import imageio.v3 as iio

  path = tmp_path / "clip.gif"
  iio.imwrite(path, _moving_square(5, 32, 32), duration=100, loop=0)
  clip = media.read_video(path)
  assert len(clip) == 5 and clip.fps == 10


def test_nothing_is_left_when_writing_fails(tmp_path):
  path = tmp_path / "out.mp4"
  with pytest.raises(RuntimeError, match="interrupted"):
    with media.VideoWriter(path, 25) as writer:
      writer.write(_moving_square(2, 16, 16))
      raise RuntimeError("interrupted")
  assert list(tmp_path.iterdir()) == []


def test_an_existing_file_survives_a_failed_write(tmp_path):
  path = tmp_path / "out.mp4"
  media.write_video(path, _moving_square(2, 16, 16), 25)
  before = path.read_bytes()
  with pytest.raises(ValueError, match="expected uint8"):
    media.write_video(path, np.zeros((2, 16, 16, 3), np.float32), 25)
  assert path.read_bytes() == before
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_writer_errors_name_the_path(tmp_path):
  with pytest.raises(media.MediaError, match="does not exist"):
    with media.VideoWriter(tmp_path / "missing" / "out.mp4", 25):
      pass
  with pytest.raises(media.MediaError, match="no frames were written"):
    with media.VideoWriter(tmp_path / "empty.mp4", 25):
      pass
  assert list(tmp_path.iterdir()) == []


def test_reading_errors_name_the_file(tmp_path):
  with pytest.raises(media.MediaError, match="missing.mp4: no such file"):
    media.read_video(tmp_path / "missing.mp4")
  with pytest.raises(media.MediaError, match="is a directory"):
    media.read_video(tmp_path)
  garbage = tmp_path / "garbage.mp4"
  garbage.write_bytes(np.random.default_rng(0).bytes(5000))
  with pytest.raises(media.MediaError, match="garbage.mp4"):
    media.read_video(garbage)
  # A container with an audio stream only.
  audio = tmp_path / "audio.mp4"
  with av.open(str(audio), "w") as container:
    stream = container.add_stream("aac", rate=8000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                       layout="mono")
    frame.sample_rate = 8000
    for packet in stream.encode(frame):
      container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  with pytest.raises(media.MediaError, match="audio.mp4: contains no video stream"):
    media.read_video(audio)


def write_empty_video(path):
  """An AVI with a video stream and no frames (AVI keeps the stream header)."""
  container = av.open(str(path), "w")
  stream = container.add_stream("mpeg4", rate=25)
  stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
  container.start_encoding()
  container.close()


def test_a_video_without_frames_is_an_error(tmp_path):
  path = tmp_path / "empty.avi"
  write_empty_video(path)
  with pytest.raises(media.MediaError, match="empty.avi: contains no frames"):
    media.read_video(path)


def test_probe_reads_rate_size_and_count_without_decoding(tmp_path, monkeypatch):
  path = tmp_path / "clip.mp4"
  media.write_video(path, _moving_square(7, 40, 60), fractions.Fraction(30000, 1001))
  # No frame is decoded: a decoder that fails on use proves it.
  monkeypatch.setattr(av.container.InputContainer, "decode",
                      lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
  info = media.probe_video(path)
  assert info.fps == fractions.Fraction(30000, 1001)
  assert info.source_size == (40, 60) and info.frame_count == 7
  with pytest.raises(media.MediaError, match="no such file"):
    media.probe_video(tmp_path / "missing.mp4")


def test_probe_of_a_gif_states_no_count_or_its_count(tmp_path):
  import imageio.v3 as iio

  path = tmp_path / "clip.gif"
  iio.imwrite(path, _moving_square(5, 32, 32), duration=100, loop=0)
  info = media.probe_video(path)
  assert info.fps == 10 and info.source_size == (32, 32)
  assert info.frame_count in (None, 5)
