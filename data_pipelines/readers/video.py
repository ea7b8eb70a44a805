"""The per-video reader interface, `Video`, and the in-memory implementation.

A `Video` is one video of a split, opened by its dataset kind (`data_pipelines.sources`).
Training asks it for a random pair (`read_pair`), evaluation for every frame in order
(`read_all`). Readers return ``uint8`` RGB frames of shape ``(S, S, 3)`` at the
configured size, except for kinds that decode in the TensorFlow graph, whose readers
return the stored (encoded) frames instead (see `sources.base.StoredFrame`). Readers
raise `BadVideoError` for anything unusable.
"""

from __future__ import annotations

import abc

import numpy as np

from mcc_jax.data_pipelines.bad_files import BadVideoError
from mcc_jax.data_pipelines.readers.frames import as_rgb8, resize_frame
from mcc_jax.data_pipelines.pair_sampling import person_id, sample_frame_pair

# Frames a video needs. Training pairs are drawn with replacement (as FOMM and the
# official code draw them), so one frame gives a pair; the reconstruction protocol
# needs a source and at least one other frame. Readers check the first rule; the
# evaluation pipeline and `mcc-jax check-data` (for the test split) the second.
MIN_PAIR_FRAMES = 1
MIN_EVAL_FRAMES = 2


def check_frame_count(path: str, num_frames: int, minimum: int = MIN_PAIR_FRAMES,
                      purpose: str = "a video") -> None:
  """Raises unless a video has enough frames.

  Args:
    path: the video, for the message.
    num_frames: how many frames it has.
    minimum: frames needed (`MIN_PAIR_FRAMES` or `MIN_EVAL_FRAMES`).
    purpose: what needs them, for the message (``'evaluation'``).

  Raises:
    BadVideoError: if ``num_frames < minimum``.
  """
  if num_frames < minimum:
    raise BadVideoError(path, f"has {num_frames} frame(s); {purpose} needs at least "
                              f"{minimum}")


class Video(abc.ABC):
  """One video of a split.

  Attributes:
    name: unique name within the split (file or folder name for files on disk).
    person: the identity, used by id sampling.
    path: where the video comes from, quoted in error messages.
    image_size: side of the frames it returns.
  """

  def __init__(self, name: str, path: str, image_size: int):
    """Stores the identity of the video.

    Args:
      name: unique name within the split; the person is the part before ``'#'``.
      path: where the video comes from, for error messages.
      image_size: side of the frames to return.
    """
    self.name = name
    self.person = person_id(name)
    self.path = path
    self.image_size = image_size

  @abc.abstractmethod
  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """Reads two frames drawn by `pair_sampling.sample_frame_pair`, earlier first.

    The two may be the same frame (drawn with replacement).

    Args:
      rng: generator that decides the frame indices.

    Returns:
      ``uint8`` array of shape ``(2, S, S, 3)`` (for kinds that decode in the graph:
      the two stored frames, ``(2, *stored shape)``).

    Raises:
      BadVideoError: if the video cannot be read.
    """

  @abc.abstractmethod
  def read_all(self) -> np.ndarray:
    """Reads every frame in order.

    Returns:
      ``uint8`` array of shape ``(T, S, S, 3)`` with ``T >= 1`` (for kinds that decode
      in the graph: the stored frames, ``(T, *stored shape)``).

    Raises:
      BadVideoError: if the video cannot be read.
    """

  def __repr__(self) -> str:
    return f"{type(self).__name__}({self.path!r})"


class ArrayVideo(Video):
  """A video held in memory (the embedded sample clip, tests)."""

  def __init__(self, name: str, frames: np.ndarray, image_size: int):
    """Converts and resizes the frames once.

    Args:
      name: video name; the person is the part before the first ``'#'``.
      frames: ``(T, H, W[, C])`` array in any layout `as_rgb8` accepts.
      image_size: side of the frames to return.

    Raises:
      BadVideoError: if there is no frame.
    """
    super().__init__(name, name, image_size)
    check_frame_count(name, len(frames))
    self._frames = np.stack([resize_frame(as_rgb8(f), image_size) for f in frames])

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; ``(2, S, S, 3)`` uint8."""
    return self._frames[sample_frame_pair(rng, len(self._frames))]

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    return self._frames.copy()
