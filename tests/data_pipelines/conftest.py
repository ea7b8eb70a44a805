"""Fixtures for the data-pipeline tests: programmatic video files in ``tmp_path``.

Frames are "coded": a flat colour whose red channel encodes the video number and whose
green channel encodes the frame number, so a test can tell from the pixels alone which
video and frame a pipeline output came from (flat frames survive flips and resizing).
"""

import os
import types

import av
import numpy as np
import pytest
from PIL import Image

RED_STEP, RED_OFFSET = 10, 5
GREEN_STEP, GREEN_OFFSET = 4, 2


def coded_frame(video: int, frame: int, size: int) -> np.ndarray:
  """A flat uint8 (size, size, 3) frame encoding (video, frame)."""
  colour = [RED_OFFSET + RED_STEP * video, GREEN_OFFSET + GREEN_STEP * frame, 128]
  assert max(colour) < 256, "too many videos or frames to code"
  return np.broadcast_to(np.asarray(colour, np.uint8), (size, size, 3)).copy()


def coded_video(video: int, num_frames: int, size: int) -> np.ndarray:
  """uint8 (num_frames, size, size, 3) coded frames of one video."""
  return np.stack([coded_frame(video, f, size) for f in range(num_frames)])


def decode_codes(frames: np.ndarray, value_range=None) -> np.ndarray:
  """Recovers (video, frame) from coded frames.

  Args:
    frames: (..., H, W, 3): uint8 as the pipelines deliver them, or float.
    value_range: the range of float frames; [0, 1] (colour jitter's output) if None.

  Returns:
    int (..., 2) array of (video, frame), from the mean colour of each frame.
  """
  frames = np.asarray(frames)
  if frames.dtype == np.uint8:
    low, high = 0.0, 255.0
  else:
    low, high = (0.0, 1.0) if value_range is None else value_range
  pixels = (np.asarray(frames, np.float64) - low) / (high - low) * 255.0
  mean = pixels.mean(axis=(-3, -2))
  video = np.round((mean[..., 0] - RED_OFFSET) / RED_STEP).astype(int)
  frame = np.round((mean[..., 1] - GREEN_OFFSET) / GREEN_STEP).astype(int)
  return np.stack([video, frame], axis=-1)


def write_frame_folder(path, frames, extension=".png"):
  """Writes frames as 0000000.png, 0000001.png, ... (the video-preprocessing names)."""
  os.makedirs(path, exist_ok=True)
  for index, frame in enumerate(frames):
    Image.fromarray(np.asarray(frame)).save(os.path.join(path, f"{index:07d}{extension}"))
  return str(path)


def write_mp4(path, frames, fps=25):
  """Encodes frames with H.264 (libx264, yuv420p, near-lossless) through PyAV."""
  frames = np.asarray(frames)
  with av.open(str(path), mode="w") as container:
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "1", "preset": "ultrafast"}
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return str(path)


def write_gif(path, frames):
  """Writes an animated GIF (one palette per frame; flat colours survive exactly)."""
  images = [Image.fromarray(np.asarray(f)) for f in frames]
  images[0].save(str(path), save_all=True, append_images=images[1:], duration=40, loop=0,
                 disposal=1)
  return str(path)


def write_strip(path, frames):
  """Writes the frames side by side in one image (video-preprocessing's PNG format)."""
  Image.fromarray(np.concatenate(list(frames), axis=1)).save(str(path))
  return str(path)


@pytest.fixture(scope="session")
def media():
  """The writers and coders above, for use inside tests."""
  return types.SimpleNamespace(
      coded_frame=coded_frame, coded_video=coded_video, decode_codes=decode_codes,
      write_frame_folder=write_frame_folder, write_mp4=write_mp4, write_gif=write_gif,
      write_strip=write_strip)


@pytest.fixture
def coded_dataset(tmp_path):
  """A folder dataset of coded PNG frame folders; returns a builder function.

  The builder takes ``{split: [(video name, num_frames), ...]}`` and a frame size,
  writes ``root/<split>/<name>/`` folders whose frames code (video number, frame
  number) with the video numbered by its position in the list, and returns the root.
  """
  def build(splits, size=16, root_name="dataset"):
    root = tmp_path / root_name
    for split, videos in splits.items():
      for number, (name, num_frames) in enumerate(videos):
        write_frame_folder(root / split / name, coded_video(number, num_frames, size))
    return str(root)

  return build
