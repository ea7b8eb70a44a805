"""A pair read from a long video file seeks, keeps only its two frames and gets them right.

The clip has a keyframe every `GOP` frames and B-frames (decoding order differs from
display order). Frames are checked against an independent decoder, the ffmpeg
command-line tool bundled with imageio-ffmpeg, and against the reader's own full
decode; memory is checked by counting the decoded frames alive at any time.
"""

import av
import imageio_ffmpeg
import numpy as np
import pytest

from mcc_jax.data_pipelines.pair_sampling import element_rng, sample_frame_pair
from mcc_jax.data_pipelines.readers import video_files

LENGTH, SIZE, GOP = 300, 32, 25
DRAWS = 12


def _frame(index):
  # Smooth, so that the codec keeps it well; neighbours differ by far more than the
  # colour-conversion differences between two decoders.
  y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
  phase = 0.7 * index
  return (np.stack([np.sin(3 * x + phase), np.cos(2.5 * y - 0.6 * phase),
                    np.sin(2 * (x + y) + 0.3 * phase)], -1) * 100 + 128).astype(np.uint8)


def _write(path):
  with av.open(str(path), "w") as container:
    stream = container.add_stream("libx264", rate=25)
    stream.width = stream.height = SIZE
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "1", "preset": "veryfast",
                      "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"}
    for index in range(LENGTH):
      container.mux(stream.encode(av.VideoFrame.from_ndarray(_frame(index), "rgb24")))
    container.mux(stream.encode())
  return str(path)


@pytest.fixture(scope="module", params=["mp4", "mkv"])
def clip(request, tmp_path_factory):
  """The clip in mp4 (declares its frame count) and Matroska (does not)."""
  return _write(tmp_path_factory.mktemp("long") / f"clip.{request.param}")


@pytest.fixture(scope="module")
def reference(clip):
  # imageio-ffmpeg starts the ffmpeg binary; JAX warns about any fork in its process.
  reader = imageio_ffmpeg.read_frames(clip, pix_fmt="rgb24")
  next(reader)
  return np.stack([np.frombuffer(f, np.uint8).reshape(SIZE, SIZE, 3) for f in reader])


class _CountedFrame:
  """Stands for a decoded frame and counts how many are alive."""
  alive = 0
  peak = 0
  created = 0

  def __init__(self, frame):
    self._frame = frame
    cls = type(self)
    cls.alive += 1
    cls.created += 1
    cls.peak = max(cls.peak, cls.alive)

  def __del__(self):
    type(self).alive -= 1

  def __getattr__(self, name):
    return getattr(self._frame, name)


class _CountingContainer:
  def __init__(self, container):
    self._container = container

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return self._container.__exit__(*exc)

  def decode(self, *args, **kwargs):
    for frame in self._container.decode(*args, **kwargs):
      yield _CountedFrame(frame)

  def __getattr__(self, name):
    return getattr(self._container, name)


@pytest.fixture
def counted(monkeypatch):
  real_open = av.open
  monkeypatch.setattr(av, "open", lambda *a, **k: _CountingContainer(real_open(*a, **k)))
  _CountedFrame.alive = _CountedFrame.peak = _CountedFrame.created = 0
  return _CountedFrame


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_pairs_are_the_drawn_frames_of_an_independent_full_decode(clip, reference):
  assert reference.shape == (LENGTH, SIZE, SIZE, 3)
  neighbours = np.abs(np.diff(reference.astype(int), axis=0)).mean(axis=(1, 2, 3))
  assert neighbours.min() > 8  # An off-by-one frame could not pass the checks below.
  video = video_files.open_video(clip, SIZE)
  everything = video.read_all()
  assert np.abs(everything.astype(int) - reference).mean(axis=(1, 2, 3)).max() < 2
  for counter in range(DRAWS):
    indices = sample_frame_pair(element_rng(9, counter), LENGTH)
    pair = video.read_pair(element_rng(9, counter))
    np.testing.assert_array_equal(pair, everything[indices])
    assert np.abs(pair.astype(int) - reference[indices]).mean(axis=(1, 2, 3)).max() < 2


def test_a_pair_keeps_two_frames_and_decodes_from_the_keyframe_before_it(clip, counted):
  video = video_files.open_video(clip, SIZE)
  latest = 0
  for counter in range(DRAWS):
    earlier, later = sample_frame_pair(element_rng(4, counter), LENGTH)
    latest = max(latest, later)
    counted.created = 0
    video.read_pair(element_rng(4, counter))
    # The two kept frames, the one being decoded and one the decoder hands over.
    assert counted.peak <= 4
    # From the keyframe at or before the earlier frame to the later frame (the first
    # read also decodes frame 0 once, for the timestamps).
    assert counted.created <= later - earlier // GOP * GOP + 1 + (counter == 0)
  assert latest > 200


def test_unusable_timestamps_fall_back_to_decoding_from_the_start(clip, monkeypatch):
  video = video_files.open_video(clip, SIZE)
  everything = video.read_all()
  # Timestamps that do not step by one frame: the check after the seek fails.
  real_timing = video_files.FfmpegVideo._stream_timing
  monkeypatch.setattr(video_files.FfmpegVideo, "_stream_timing",
                      lambda self, c, s: (lambda t: (t[0], t[1] * 1.5))(real_timing(self, c, s)))
  for counter in range(4):
    indices = sample_frame_pair(element_rng(6, counter), LENGTH)
    np.testing.assert_array_equal(video.read_pair(element_rng(6, counter)),
                                  everything[indices])
