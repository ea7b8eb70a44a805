"""Readers for the video formats of the video-preprocessing layout.

AliaksandrSiarohin/video-preprocessing (the tool behind FOMM's VoxCeleb, TaiChi and
MGif data) stores each video as one of:

* a folder of frames (``0000000.png``, ...), read frame by frame;
* a video file (``.mp4``; also ``.mov``, ``.avi``, ``.mkv``, ``.webm``), decoded with
  PyAV (FFmpeg);
* an animated ``.gif``;
* a horizontal strip: one PNG/JPEG holding the frames side by side, each frame as wide
  as the image is high.

Frames come out as ``uint8`` RGB at the configured size; problems raise
`BadVideoError` naming the file.
"""

from __future__ import annotations

import os
import re

import av
import numpy as np
from PIL import Image, ImageSequence

from data_pipelines.bad_files import BadVideoError
from data_pipelines.readers.frames import (decode_image_file, has_image_extension,
                                   image_file_size, pil_to_rgb8, resize_frame)
from data_pipelines.pair_sampling import sample_frame_pair
from data_pipelines.readers.video import Video, check_frame_count

# Containers decoded by FFmpeg.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
GIF_EXTENSION = ".gif"


def natural_sort_key(name: str) -> tuple:
  """Sort key that orders ``frame2.png`` before ``frame10.png``.

  Zero-padded names (what video-preprocessing writes) sort as with plain `sorted`.

  Args:
    name: a file name.

  Returns:
    A tuple comparing digit runs as numbers.
  """
  return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
               for part in re.split(r"(\d+)", name))


def is_video_path(path: str) -> bool:
  """Returns whether a directory entry is a video in the layout's sense.

  Args:
    path: a file or folder inside a split folder.

  Returns:
    True for folders and for files with a video, GIF or image extension. Hidden
    entries (``.DS_Store``, ``._x.mp4``) are never videos.
  """
  if os.path.basename(path).startswith("."):
    return False
  if os.path.isdir(path):
    return True
  extension = os.path.splitext(path)[1].lower()
  return extension in VIDEO_EXTENSIONS or extension == GIF_EXTENSION or (
      has_image_extension(path))


def open_video(path: str, image_size: int) -> Video:
  """Returns the reader for one video of the layout.

  Args:
    path: a frame folder or a video/GIF/strip file.
    image_size: side of the frames the reader returns.

  Returns:
    A `Video` whose name is the base name of `path`.

  Raises:
    BadVideoError: if `path` is not a video (see `is_video_path`), or is a frame
      folder that cannot be listed or holds fewer than two frames.
  """
  if not is_video_path(path):
    raise BadVideoError(path, "not a video: expected a frame folder or a file ending in "
                              f"one of {VIDEO_EXTENSIONS + (GIF_EXTENSION,)} or an image "
                              "extension")
  if os.path.isdir(path):
    return FrameFolderVideo(path, image_size)
  extension = os.path.splitext(path)[1].lower()
  if extension in VIDEO_EXTENSIONS:
    return FfmpegVideo(path, image_size)
  if extension == GIF_EXTENSION:
    return GifVideo(path, image_size)
  return ImageStripVideo(path, image_size)


class FrameFolderVideo(Video):
  """A folder of frame images, in natural name order.

  Files without an image extension (``.DS_Store``, ``Thumbs.db``, notes) and hidden
  files are ignored. All frames must have the same size; this is checked from the
  image headers the first time the video is read.
  """

  def __init__(self, path: str, image_size: int):
    """Lists the frames.

    Args:
      path: the folder.
      image_size: side of the frames to return.

    Raises:
      BadVideoError: if the folder cannot be listed or has fewer than two frames.
    """
    super().__init__(os.path.basename(os.path.normpath(path)), path, image_size)
    try:
      names = os.listdir(path)
    except OSError as error:
      raise BadVideoError(path, f"cannot list frame folder ({error.strerror})") from error
    frames = [n for n in names if has_image_extension(n) and not n.startswith(".")]
    self.frame_paths = [os.path.join(path, n) for n in sorted(frames, key=natural_sort_key)]
    check_frame_count(path, len(self.frame_paths))
    self._sizes_checked = False

  def _frame_error(self, error: BadVideoError) -> BadVideoError:
    # The video is the unit that gets skipped; the message still names the frame.
    return BadVideoError(self.path, f"frame {os.path.basename(error.path)}: {error.reason}")

  def _check_sizes(self) -> None:
    # Headers only: cheap next to decoding, and done once per process.
    if self._sizes_checked:
      return
    try:
      sizes = [image_file_size(p) for p in self.frame_paths]
    except BadVideoError as error:
      raise self._frame_error(error) from error
    first = sizes[0]
    for frame_path, size in zip(self.frame_paths[1:], sizes[1:]):
      if size != first:
        raise BadVideoError(
            self.path, f"frames of mixed sizes: {os.path.basename(self.frame_paths[0])} "
                       f"is {first[0]}x{first[1]} but {os.path.basename(frame_path)} is "
                       f"{size[0]}x{size[1]} (height x width)")
    self._sizes_checked = True

  def _read_frame(self, index: int) -> np.ndarray:
    try:
      frame = decode_image_file(self.frame_paths[index])
    except BadVideoError as error:
      raise self._frame_error(error) from error
    return resize_frame(frame, self.image_size)

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; decodes only the two frames. ``(2, S, S, 3)``."""
    self._check_sizes()
    indices = sample_frame_pair(rng, len(self.frame_paths))
    return np.stack([self._read_frame(i) for i in indices])

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    self._check_sizes()
    return np.stack([self._read_frame(i) for i in range(len(self.frame_paths))])


class ImageStripVideo(Video):
  """One image holding the frames side by side (frame width = image height)."""

  def __init__(self, path: str, image_size: int):
    """Stores the path; nothing is read until a frame is needed.

    Args:
      path: the strip image.
      image_size: side of the frames to return.
    """
    super().__init__(os.path.basename(path), path, image_size)

  def _frames(self) -> np.ndarray:
    strip = decode_image_file(self.path)
    height, width = strip.shape[:2]
    if width % height:
      raise BadVideoError(self.path, f"is {width} pixels wide, not a multiple of its "
                                     f"height {height}; a frame strip holds square frames "
                                     "side by side")
    count = width // height
    check_frame_count(self.path, count)
    return strip.reshape(height, count, height, 3).transpose(1, 0, 2, 3)

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; ``(2, S, S, 3)`` uint8."""
    frames = self._frames()
    indices = sample_frame_pair(rng, len(frames))
    return np.stack([resize_frame(frames[i], self.image_size) for i in indices])

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    return np.stack([resize_frame(f, self.image_size) for f in self._frames()])


class GifVideo(Video):
  """An animated GIF."""

  def __init__(self, path: str, image_size: int):
    """Stores the path; nothing is read until a frame is needed.

    Args:
      path: the GIF file.
      image_size: side of the frames to return.
    """
    super().__init__(os.path.basename(path), path, image_size)

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    try:
      with Image.open(self.path) as image:
        # Pillow composites each GIF frame onto the previous ones while iterating.
        frames = [pil_to_rgb8(frame) for frame in ImageSequence.Iterator(image)]
    except (OSError, SyntaxError, ValueError, EOFError) as error:
      raise BadVideoError(self.path, f"cannot decode GIF ({error})") from error
    check_frame_count(self.path, len(frames))
    return np.stack([resize_frame(f, self.image_size) for f in frames])

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; ``(2, S, S, 3)`` uint8."""
    frames = self.read_all()
    return frames[sample_frame_pair(rng, len(frames))]


class FfmpegVideo(Video):
  """A video file decoded by FFmpeg through PyAV.

  Pairs are drawn using the frame count the container declares, decoding only up to
  the later frame and converting only the two chosen frames to RGB. A stream that
  ends before the declared count is reported as truncated.
  """

  def __init__(self, path: str, image_size: int):
    """Stores the path; nothing is read until a frame is needed.

    Args:
      path: the video file.
      image_size: side of the frames to return.
    """
    super().__init__(os.path.basename(path), path, image_size)

  def _decode(self, rng: np.random.Generator | None
             ) -> tuple[list[av.VideoFrame], int, np.ndarray | None]:
    """Decodes frames, kept in the codec's pixel format until chosen.

    Args:
      rng: if given and the container declares its frame count, a pair is drawn from
        that count and decoding stops at the later frame; otherwise all is decoded.

    Returns:
      The decoded frames, the declared frame count (0 if unknown) and the drawn pair
      (None if none was drawn).
    """
    try:
      container = av.open(self.path)
    except (av.FFmpegError, OSError) as error:
      raise BadVideoError(self.path, f"cannot open video ({error})") from error
    frames: list[av.VideoFrame] = []
    indices = None
    with container:
      if not container.streams.video:
        raise BadVideoError(self.path, "contains no video stream")
      stream = container.streams.video[0]
      declared = max(int(stream.frames or 0), 0)
      stop_after = None
      if rng is not None and declared >= 2:
        indices = sample_frame_pair(rng, declared)
        stop_after = int(indices[1])
      try:
        for frame in container.decode(stream):
          if frames and (frame.width, frame.height) != (frames[0].width, frames[0].height):
            raise BadVideoError(
                self.path, f"frames of mixed sizes: frame 0 is {frames[0].height}x"
                           f"{frames[0].width} but frame {len(frames)} is {frame.height}x"
                           f"{frame.width} (height x width)")
          frames.append(frame)
          if stop_after is not None and len(frames) > stop_after:
            break
      except (av.FFmpegError, OSError) as error:
        raise BadVideoError(self.path, f"decoding failed after {len(frames)} frame(s) "
                                       f"({error})") from error
    needed = declared if stop_after is None else stop_after + 1
    if declared and len(frames) < needed:
      raise BadVideoError(self.path, f"truncated: the container declares {declared} "
                                     f"frames but only {len(frames)} decode")
    return frames, declared, indices

  def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
    return resize_frame(frame.to_ndarray(format="rgb24"), self.image_size)

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; ``(2, S, S, 3)`` uint8."""
    frames, _, indices = self._decode(rng)
    if indices is None:
      check_frame_count(self.path, len(frames))
      indices = sample_frame_pair(rng, len(frames))
    return np.stack([self._to_rgb(frames[i]) for i in indices])

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    frames, _, _ = self._decode(rng=None)
    check_frame_count(self.path, len(frames))
    return np.stack([self._to_rgb(f) for f in frames])
