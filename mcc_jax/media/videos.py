"""Videos: decoding any format FFmpeg reads, and writing H.264 mp4 files atomically."""

from __future__ import annotations

import dataclasses
import fractions
import os
import pathlib
import tempfile
from typing import Callable, Iterator

import av
import numpy as np

from mcc_jax.media.errors import MediaError

# Used when a container states no frame rate at all (some GIFs).
DEFAULT_FPS = fractions.Fraction(25)


@dataclasses.dataclass(frozen=True)
class VideoClip:
  """Decoded frames and their timing.

  Attributes:
    frames: ``uint8`` ``(T, H, W, 3)`` RGB (after the transform given to
      :func:`read_video`, if any).
    fps: frames per second, exact where the container states it (29.97 is 30000/1001).
    source_size: ``(height, width)`` of the frames as stored in the file.
  """

  frames: np.ndarray
  fps: fractions.Fraction
  source_size: tuple[int, int]

  def __len__(self) -> int:
    return len(self.frames)


def _frame_rate(stream) -> fractions.Fraction:
  for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
    if rate is not None and rate > 0:
      return fractions.Fraction(rate.numerator, rate.denominator)
  return DEFAULT_FPS


def _check_readable(path) -> None:
  if not os.path.exists(path):
    raise MediaError(path, "no such file (expected a video: mp4, mov, webm, avi, gif, ...)")
  if os.path.isdir(path):
    raise MediaError(path, "is a directory (expected a video file: mp4, mov, webm, avi, gif)")


def iterate_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
  """Decodes a video frame by frame, without holding it all in memory.

  Args:
    path: any video FFmpeg decodes (mp4, mov, webm, avi, mkv, gif, ...).

  Yields:
    ``uint8`` ``(H, W, 3)`` RGB frames.

  Raises:
    MediaError: missing file, no video stream, or a decoding error (naming how many
      frames decoded before it).
  """
  _check_readable(path)
  try:
    container = av.open(os.fspath(path))
  except (av.FFmpegError, OSError) as error:
    raise MediaError(path, f"is not a video FFmpeg can open ({error})") from error
  with container:
    if not container.streams.video:
      raise MediaError(path, "contains no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    count = 0
    try:
      for frame in container.decode(stream):
        yield frame.to_ndarray(format="rgb24")
        count += 1
    except (av.FFmpegError, OSError) as error:
      raise MediaError(path, f"decoding failed after {count} frame(s) ({error})") from error


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What a video's container says about it, read without decoding any frame.

  Attributes:
    fps: frames per second (as :attr:`VideoClip.fps`).
    source_size: ``(height, width)`` of the stored frames.
    frame_count: the number of frames the container states, or None where it states
      none (some webm, gif and streamed files): a count for progress bars, not a
      promise (decoding yields what the file holds).
  """

  fps: fractions.Fraction
  source_size: tuple[int, int]
  frame_count: int | None


def probe_video(path: str | os.PathLike) -> VideoInfo:
  """Reads a video's frame rate, frame size and stated frame count without decoding it.

  Raises:
    MediaError: a missing file or one FFmpeg cannot open, or no video stream.
  """
  _check_readable(path)
  try:
    with av.open(os.fspath(path)) as container:
      if not container.streams.video:
        raise MediaError(path, "contains no video stream")
      stream = container.streams.video[0]
      count = int(stream.frames or 0)
      return VideoInfo(_frame_rate(stream), (int(stream.height), int(stream.width)),
                       count if count > 0 else None)
  except (av.FFmpegError, OSError) as error:
    raise MediaError(path, f"is not a video FFmpeg can open ({error})") from error


def read_video(path: str | os.PathLike,
               transform: Callable[[np.ndarray], np.ndarray] | None = None,
               max_frames: int | None = None) -> VideoClip:
  """Decodes a whole video.

  Args:
    path: any video FFmpeg decodes (mp4, mov, webm, avi, mkv, gif, ...).
    transform: applied to each ``(H, W, 3)`` frame as it is decoded (e.g. crop and
      resize to the model size), so that a long high-resolution video never has to fit
      in memory at full size.
    max_frames: stop after this many frames (None: all).

  Returns:
    A :class:`VideoClip`.

  Raises:
    MediaError: missing or undecodable file, or a video without frames.
  """
  fps = probe_video(path).fps
  frames, source_size = [], None
  for frame in iterate_frames(path):
    source_size = source_size or frame.shape[:2]
    frames.append(frame if transform is None else transform(frame))
    if max_frames is not None and len(frames) >= max_frames:
      break
  if not frames:
    raise MediaError(path, "contains no frames (an empty video)")
  return VideoClip(np.stack(frames), fps, tuple(int(v) for v in source_size))


class VideoWriter:
  """Writes an H.264 mp4 (yuv420p, playable everywhere) into a temporary file and
  renames it to its path only when the ``with`` block ends without an error, so a
  failed or interrupted run never leaves a partial video at the output path.

  Example::

    with VideoWriter("out.mp4", fps=25) as writer:
      for batch in batches:
        writer.write(batch)        # (N, H, W, 3) or (H, W, 3) uint8

  Frames of odd width or height are padded by one edge pixel (H.264 in yuv420p needs
  even sides).
  """

  def __init__(self, path: str | os.PathLike, fps, *, crf: int = 18):
    """Args: path: the mp4 to write; fps: frames per second (a Fraction keeps 30000/1001
    exact); crf: x264 quality, 0 (lossless) to 51; 18 is visually lossless."""
    self.path = pathlib.Path(path)
    self.fps = fractions.Fraction(fps).limit_denominator(100000)
    if self.fps <= 0:
      raise ValueError(f"VideoWriter: fps must be positive, got {fps}")
    self.crf = int(crf)
    self.frames_written = 0
    self._temporary = None
    self._container = None
    self._stream = None

  def __enter__(self) -> "VideoWriter":
    parent = self.path.parent
    if self.path.is_dir():
      raise MediaError(self.path, "is a directory (expected the path of an .mp4 file to write)")
    if not parent.is_dir():
      raise MediaError(self.path, f"cannot be written: the directory {parent} does not exist")
    try:
      handle, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".partial.mp4",
                                      dir=parent)
      os.close(handle)
    except OSError as error:
      raise MediaError(self.path, f"cannot be written ({error.strerror})") from error
    self._temporary = pathlib.Path(name)
    self._container = av.open(str(self._temporary), mode="w", format="mp4")
    return self

  def _open_stream(self, height: int, width: int) -> None:
    stream = self._container.add_stream("libx264", rate=self.fps)
    stream.width, stream.height = width + width % 2, height + height % 2
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": str(self.crf)}
    self._stream = stream

  def write(self, frames: np.ndarray) -> None:
    """Appends one ``(H, W, 3)`` frame or a batch ``(N, H, W, 3)`` of ``uint8`` RGB."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
      frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
      raise ValueError(f"VideoWriter.write: expected uint8 (N, H, W, 3) frames, got "
                       f"{frames.dtype} {frames.shape}")
    if self._container is None:
      raise RuntimeError("VideoWriter.write called outside its `with` block")
    height, width = frames.shape[1:3]
    if self._stream is None:
      self._open_stream(height, width)
    if (height + height % 2, width + width % 2) != (self._stream.height, self._stream.width):
      raise ValueError(f"VideoWriter.write: frames of {height}x{width} after frames of "
                       f"{self._stream.height}x{self._stream.width}")
    if height % 2 or width % 2:
      frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    for frame in frames:
      video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
      for packet in self._stream.encode(video_frame):
        self._container.mux(packet)
      self.frames_written += 1

  def __exit__(self, error_type, error, traceback) -> None:
    container, self._container = self._container, None
    try:
      if error_type is None:
        if self._stream is None:
          raise MediaError(self.path, "no frames were written")
        for packet in self._stream.encode():
          container.mux(packet)
      container.close()
    except BaseException:
      self._temporary.unlink(missing_ok=True)
      raise
    if error_type is not None:
      self._temporary.unlink(missing_ok=True)
      return
    os.replace(self._temporary, self.path)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps, *, crf: int = 18) -> None:
  """Writes ``uint8`` ``(T, H, W, 3)`` frames as an H.264 mp4; see :class:`VideoWriter`."""
  with VideoWriter(path, fps, crf=crf) as writer:
    writer.write(frames)
