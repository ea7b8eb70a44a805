"""Readers for the video formats of the video-preprocessing layout.

AliaksandrSiarohin/video-preprocessing (the tool behind FOMM's VoxCeleb, TaiChi and
MGif data) stores each video as one of:

* a folder of frames (``0000000.png``, ...), read frame by frame;
* a video file (``.mp4``; also ``.mov``, ``.avi``, ``.mkv``, ``.webm``), decoded with
  PyAV (FFmpeg);
* an animated ``.gif``;
* a horizontal strip: one PNG/JPEG holding the frames side by side, each frame as wide
  as the image is high.

Frames come out as ``uint8`` RGB at the configured size. Opening a video reads
nothing; a pair read touches only what the pair needs (the folder listing and two
frames, or the stream from a keyframe to the later frame). Problems raise
`BadVideoError` naming the file, or its subclass `BadFrameError` when the video is
usable except for some frames (a read that does not touch them succeeds).
"""

from __future__ import annotations

import os
import re

import av
import numpy as np
from PIL import Image, ImageSequence

from mcc_jax.data_pipelines.bad_files import BadFrameError, BadVideoError
from mcc_jax.data_pipelines.readers.frames import (decode_image_file, has_image_extension,
                                           image_file_size, pil_to_rgb8, resize_frame)
from mcc_jax.data_pipelines.pair_sampling import sample_frame_pair
from mcc_jax.data_pipelines.readers.video import Video, check_frame_count

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


def video_format(name: str, is_dir: bool) -> str | None:
  """Says how a directory entry is read, from its name and type alone (no I/O).

  Args:
    name: the entry's base name.
    is_dir: whether it is a folder.

  Returns:
    ``'frames'`` (a frame folder), ``'ffmpeg'`` (a video file), ``'gif'``, ``'strip'``
    (one image holding the frames), or None for what is not a video: hidden entries
    (``.DS_Store``, ``._x.mp4``) and files with other extensions.
  """
  if name.startswith("."):
    return None
  if is_dir:
    return "frames"
  extension = os.path.splitext(name)[1].lower()
  if extension in VIDEO_EXTENSIONS:
    return "ffmpeg"
  if extension == GIF_EXTENSION:
    return "gif"
  return "strip" if has_image_extension(name) else None


def is_video_path(path: str) -> bool:
  """Returns whether a directory entry is a video in the layout's sense.

  Args:
    path: a file or folder inside a split folder.

  Returns:
    True for folders and for files with a video, GIF or image extension. Hidden
    entries (``.DS_Store``, ``._x.mp4``) are never videos.
  """
  return video_format(os.path.basename(path), os.path.isdir(path)) is not None


def open_video(path: str, image_size: int, is_dir: bool | None = None) -> Video:
  """Returns the reader for one video of the layout; reads nothing.

  Args:
    path: a frame folder or a video/GIF/strip file.
    image_size: side of the frames the reader returns.
    is_dir: whether `path` is a folder, if the caller knows (a split listing does);
      looked up otherwise.

  Returns:
    A `Video` whose name is the base name of `path`.

  Raises:
    BadVideoError: if `path` is not a video (see `video_format`).
  """
  if is_dir is None:
    is_dir = os.path.isdir(path)
  kind = video_format(os.path.basename(os.path.normpath(path)), is_dir)
  if kind is None:
    raise BadVideoError(path, "not a video: expected a frame folder or a file ending in "
                              f"one of {VIDEO_EXTENSIONS + (GIF_EXTENSION,)} or an image "
                              "extension")
  reader = {"frames": FrameFolderVideo, "ffmpeg": FfmpegVideo, "gif": GifVideo,
            "strip": ImageStripVideo}[kind]
  return reader(path, image_size)


def _size_text(size: tuple[int, int]) -> str:
  return f"{size[0]}x{size[1]}"


class FrameFolderVideo(Video):
  """A folder of frame images, in natural name order.

  Files without an image extension (``.DS_Store``, ``Thumbs.db``, notes) and hidden
  files are ignored. Opening reads nothing: the first read lists the folder (once per
  reader; the names are kept as one compact array) and reads the header of its first
  frame. Every frame must have the first frame's size; this is checked for each frame
  decoded, so a pair checks its two frames and `read_all` every frame (a frame of
  another size fails the reads that decode it, see `BadFrameError`).
  """

  def __init__(self, path: str, image_size: int):
    """Stores the folder; nothing is read until a frame is needed.

    Args:
      path: the folder.
      image_size: side of the frames to return.
    """
    super().__init__(os.path.basename(os.path.normpath(path)), path, image_size)
    # (frame file names as bytes, (height, width) of the first frame), once listed.
    self._listing: tuple[np.ndarray, tuple[int, int]] | None = None

  def _list(self) -> tuple[np.ndarray, tuple[int, int]]:
    listing = self._listing
    if listing is not None:
      return listing
    try:
      names = os.listdir(self.path)
    except OSError as error:
      raise BadVideoError(self.path,
                          f"cannot list frame folder ({error.strerror})") from error
    frames = sorted((n for n in names if has_image_extension(n) and not n.startswith(".")),
                    key=natural_sort_key)
    check_frame_count(self.path, len(frames))
    try:
      first_size = image_file_size(os.path.join(self.path, frames[0]))
    except BadVideoError as error:
      raise BadVideoError(self.path, f"frame {frames[0]}: {error.reason}") from error
    # Fixed-width bytes: a few bytes per frame instead of a Python string each, which
    # matters when a host keeps the listings of thousands of long videos.
    listing = (np.asarray([os.fsencode(n) for n in frames]), first_size)
    self._listing = listing
    return listing

  @property
  def num_frames(self) -> int:
    """Frames in the folder (lists it on first use)."""
    return len(self._list()[0])

  def _read_frame(self, index: int) -> np.ndarray:
    names, first_size = self._list()
    name = os.fsdecode(names[index])
    try:
      frame = decode_image_file(os.path.join(self.path, name))
    except BadVideoError as error:
      # The video is the unit that gets skipped; the message still names the frame.
      raise BadFrameError(self.path, f"frame {name}: {error.reason}") from error
    if frame.shape[:2] != first_size:
      raise BadFrameError(
          self.path, f"frames of mixed sizes: {os.fsdecode(names[0])} is "
                     f"{_size_text(first_size)} but {name} is "
                     f"{_size_text(frame.shape[:2])} (height x width)")
    return resize_frame(frame, self.image_size)

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; decodes only the two frames. ``(2, S, S, 3)``."""
    indices = sample_frame_pair(rng, self.num_frames)
    return np.stack([self._read_frame(i) for i in indices])

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    return np.stack([self._read_frame(i) for i in range(self.num_frames)])


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
  """An animated GIF; a pair converts only its two frames."""

  def __init__(self, path: str, image_size: int):
    """Stores the path; nothing is read until a frame is needed.

    Args:
      path: the GIF file.
      image_size: side of the frames to return.
    """
    super().__init__(os.path.basename(path), path, image_size)

  def _frames(self, rng: np.random.Generator | None) -> np.ndarray:
    """Every frame (``rng`` None) or a pair drawn with ``rng``, resized."""
    try:
      with Image.open(self.path) as image:
        count = image.n_frames
        check_frame_count(self.path, count)
        chosen = range(count) if rng is None else sample_frame_pair(rng, count)
        wanted = {int(i) for i in chosen}
        kept = {}
        # Pillow composites each GIF frame onto the previous ones while iterating, so
        # frames are visited in order; only the wanted ones are converted.
        for index, frame in enumerate(ImageSequence.Iterator(image)):
          if index in wanted:
            kept[index] = resize_frame(pil_to_rgb8(frame), self.image_size)
            if len(kept) == len(wanted):
              break
    except BadVideoError:
      raise
    except (OSError, SyntaxError, ValueError, EOFError) as error:
      raise BadVideoError(self.path, f"cannot decode GIF ({error})") from error
    return np.stack([kept[int(i)] for i in chosen])

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    return self._frames(None)

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; ``(2, S, S, 3)`` uint8."""
    return self._frames(rng)


class _UnusableTimestamps(Exception):
  """Frame timestamps that do not give frame numbers: decode from the start instead."""


class FfmpegVideo(Video):
  """A video file decoded by FFmpeg through PyAV.

  Pairs are drawn from the frame count the container declares (counted from its
  packets when it declares none). A pair read seeks to the keyframe at or before the
  earlier frame and decodes forward to the later one (seeking again when it knows a
  keyframe in between, from earlier reads), keeping only the two chosen frames, so its
  memory does not grow with the clip's length. Frame numbers come from
  timestamps: with the first frame's timestamp (decoded once per reader) and the
  frame rate, a frame's number is ``(pts - first pts) * rate * time base``. The read
  checks them: the first frame decoded after the seek must be a keyframe at or before
  the wanted frame and every following frame must be the next number; otherwise
  (variable frame rate, missing timestamps, a container that seeks imprecisely) the
  pair is decoded again from the start, counting frames. Kept frames must have the
  stream's declared size. A stream that ends before a chosen frame is reported as
  truncated.
  """

  # A timestamp may sit this far (in frames) from its frame's nominal time.
  _PTS_TOLERANCE = 0.25

  def __init__(self, path: str, image_size: int):
    """Stores the path; nothing is read until a frame is needed.

    Args:
      path: the video file.
      image_size: side of the frames to return.
    """
    super().__init__(os.path.basename(path), path, image_size)
    self._count: int | None = None
    # (first frame's pts, pts per frame), False if unusable, None until known.
    self._timing: tuple[int, float] | bool | None = None
    # Numbers of the keyframes decoded so far: where a second seek can land.
    self._keyframes: set[int] = set()

  def _open(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    try:
      container = av.open(self.path)
    except (av.FFmpegError, OSError) as error:
      raise BadVideoError(self.path, f"cannot open video ({error})") from error
    if not container.streams.video:
      container.close()
      raise BadVideoError(self.path, "contains no video stream")
    return container, container.streams.video[0]

  def _frame_count(self, container, stream) -> int:
    """Declared frames, else the number of the stream's packets (demuxed, not decoded)."""
    if self._count is None:
      count = max(int(stream.frames or 0), 0)
      if not count:
        try:
          count = sum(1 for packet in container.demux(stream) if packet.size)
          container.seek(0)
        except (av.FFmpegError, OSError) as error:
          raise BadVideoError(self.path, f"cannot read packets ({error})") from error
      self._count = count
    return self._count

  def _check_size(self, frame: av.VideoFrame, number: int,
                  size: tuple[int, int] | None) -> None:
    if size is not None and (frame.height, frame.width) != size:
      raise BadFrameError(self.path, f"frames of mixed sizes: the stream is "
                                     f"{_size_text(size)} but frame {number} is "
                                     f"{frame.height}x{frame.width} (height x width)")

  def _stream_timing(self, container, stream) -> tuple[int, float] | None:
    if self._timing is None:
      self._timing = False
      rate = stream.average_rate or stream.guessed_rate
      if rate and stream.time_base:
        try:
          first = next(iter(container.decode(stream)), None)
        except (av.FFmpegError, OSError) as error:
          raise BadFrameError(self.path, f"decoding frame 0 failed ({error})") from error
        if first is not None and first.pts is not None:
          self._timing = (int(first.pts), float(1 / (rate * stream.time_base)))
    return self._timing or None

  def _decode_after_seek(self, container, stream, wanted: list[int],
                         timing: tuple[int, float], size) -> dict[int, av.VideoFrame]:
    """Seeks to the keyframe at or before each wanted frame when that saves decoding.

    The first wanted frame is always sought. A later one is sought again when a
    keyframe this reader has seen lies between the decoder's position and it;
    otherwise decoding goes on from where it is.
    """
    first_pts, step = timing
    kept: dict[int, av.VideoFrame] = {}
    frames, expected = None, None
    for target in wanted:
      # A snapshot: other reader threads may add keyframes meanwhile.
      known_keyframes = tuple(self._keyframes)
      if frames is None or any(expected < k <= target for k in known_keyframes):
        try:
          container.seek(first_pts + int(round(target * step)), backward=True,
                         any_frame=False, stream=stream)
        except (av.FFmpegError, OSError) as error:
          raise _UnusableTimestamps() from error
        frames, expected = iter(container.decode(stream)), None
      for frame in frames:
        if frame.pts is None:
          raise _UnusableTimestamps()
        position = (frame.pts - first_pts) / step
        number = int(round(position))
        if abs(position - number) > self._PTS_TOLERANCE:
          raise _UnusableTimestamps()
        if expected is None and (not frame.key_frame or number > target):
          raise _UnusableTimestamps()
        if expected is not None and number != expected:
          raise _UnusableTimestamps()
        expected = number + 1
        if frame.key_frame:
          self._keyframes.add(number)
        if number == target:
          self._check_size(frame, number, size)
          kept[number] = frame
          break
      else:
        break  # The stream ended before the target: reported as truncated.
    return kept

  def _decode_from_start(self, wanted: list[int], size) -> dict[int, av.VideoFrame]:
    container, stream = self._open()
    kept = {}
    with container:
      for number, frame in enumerate(container.decode(stream)):
        if number in wanted:
          self._check_size(frame, number, size)
          kept[number] = frame
        if number >= wanted[-1]:
          break
    return kept

  def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
    return resize_frame(frame.to_ndarray(format="rgb24"), self.image_size)

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; ``(2, S, S, 3)`` uint8."""
    container, stream = self._open()
    with container:
      count = self._frame_count(container, stream)
      check_frame_count(self.path, count)
      indices = sample_frame_pair(rng, count)
      wanted = sorted({int(i) for i in indices})
      size = (stream.codec_context.height, stream.codec_context.width)
      size = size if min(size) > 0 else None
      try:
        timing = self._stream_timing(container, stream)
        kept = None
        if timing is not None:
          try:
            kept = self._decode_after_seek(container, stream, wanted, timing, size)
          except _UnusableTimestamps:
            kept = None
        if kept is None:
          kept = self._decode_from_start(wanted, size)
      except (av.FFmpegError, OSError) as error:
        raise BadFrameError(self.path, f"decoding failed ({error})") from error
    missing = [i for i in wanted if i not in kept]
    if missing:
      raise BadFrameError(self.path, f"truncated: the container declares {count} frames "
                                     f"but frame {missing[0]} does not decode")
    self._check_size(kept[wanted[-1]], wanted[-1],
                     (kept[wanted[0]].height, kept[wanted[0]].width))
    return np.stack([self._to_rgb(kept[int(i)]) for i in indices])

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    container, stream = self._open()
    frames: list[np.ndarray] = []
    with container:
      declared = max(int(stream.frames or 0), 0)
      first_size = None
      try:
        for frame in container.decode(stream):
          if first_size is None:
            first_size = (frame.height, frame.width)
          elif (frame.height, frame.width) != first_size:
            raise BadFrameError(
                self.path, f"frames of mixed sizes: frame 0 is {_size_text(first_size)} "
                           f"but frame {len(frames)} is {frame.height}x{frame.width} "
                           "(height x width)")
          frames.append(self._to_rgb(frame))
      except (av.FFmpegError, OSError) as error:
        raise BadFrameError(self.path, f"decoding failed after {len(frames)} frame(s) "
                                       f"({error})") from error
    if declared and len(frames) < declared:
      raise BadFrameError(self.path, f"truncated: the container declares {declared} "
                                     f"frames but only {len(frames)} decode")
    check_frame_count(self.path, len(frames))
    return np.stack(frames)
