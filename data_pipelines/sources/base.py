"""The interface every dataset kind implements: `DatasetSource`.

A dataset kind (``datasets.name``) is a module or package ``data_pipelines.sources.<name>``
that sets ``DATASET_SOURCE`` to a subclass of `DatasetSource`; `data_pipelines.sources.get`
finds it by name. The training and evaluation pipelines are written once against this
interface:

1. ``DATASET_SOURCE(config, split)`` lists the videos of one split of the ``datasets``
   block: `video_names` (sorted, at most ``config.max_videos``) and their `persons`.
   Listing opens no video, so that every host can list the whole split cheaply and
   then open only its own share.
2. `open` returns the per-video reader (`data_pipelines.readers.video.Video`) of one
   listed video; the pipelines call its ``read_pair(rng)`` for training and
   ``read_all()`` for evaluation from ``tf.numpy_function``. `open_videos` opens a
   host's share, skipping and counting bad videos when asked to.
3. `stored_frame` says what those readers return per frame, and `decode` turns it
   into uint8 frames inside the TensorFlow graph. Kinds that decode in numpy return
   uint8 ``(S, S, 3)`` frames and keep the identity `decode`; kinds whose files hold
   encoded frames can instead return them as bytes (``stored_frame`` of dtype
   ``'string'``) and set ``decodes_in_graph``, so that decoding runs as TensorFlow
   ops in parallel ``map`` calls outside Python's global lock (the ``tfds`` kind).

Facts about a kind that configuration checks need are class attributes
(`requires_root`). `data_pipelines.config.validate_datasets_config` imports the kind's
module to read them, so a kind's module must not import TensorFlow at import time;
import it where a split is opened.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, ClassVar, Sequence

import ml_collections
import numpy as np

from mcc_jax.data_pipelines.bad_files import BadFileLog, BadVideoError
from mcc_jax.data_pipelines.pair_sampling import person_id
from mcc_jax.data_pipelines.readers.video import Video

if TYPE_CHECKING:
  import tensorflow as tf

# TensorFlow dtype names of stored frames, and the placeholder value of each.
_PLACEHOLDERS = {"uint8": (np.uint8, 0), "string": (object, b"")}


@dataclasses.dataclass(frozen=True)
class StoredFrame:
  """What a kind's per-video readers return for each frame, before `decode`.

  Attributes:
    dtype: TensorFlow dtype name: ``'uint8'`` for RGB frames, ``'string'`` for
      encoded frames (one bytes object per frame).
    shape: shape of one frame: ``(S, S, 3)`` for RGB frames, ``()`` for bytes.
  """
  dtype: str
  shape: tuple[int, ...]

  def __post_init__(self):
    if self.dtype not in _PLACEHOLDERS:
      raise ValueError(f"StoredFrame.dtype must be one of {sorted(_PLACEHOLDERS)}, got "
                       f"{self.dtype!r}")

  def empty(self, count: int) -> np.ndarray:
    """Placeholder frames for an element that is dropped (a skipped bad video).

    Args:
      count: number of frames.

    Returns:
      ``(count, *shape)`` zeros, or empty bytes objects for ``'string'``.
    """
    dtype, value = _PLACEHOLDERS[self.dtype]
    return np.full((count,) + tuple(self.shape), value, dtype)


class DatasetSource(abc.ABC):
  """One split of a dataset of one kind: its videos, listed, and how to open them.

  Subclasses implement `video_names` and `open`; those that decode in the graph also
  override `stored_frame`, `decode` and ``decodes_in_graph``.

  Attributes:
    requires_root: whether the kind reads ``datasets.root`` (validation then requires
      a non-empty root).
    decodes_in_graph: whether readers return encoded frames that `decode` turns into
      uint8 frames in the graph (otherwise they return uint8 frames).
    renders_reenactment: whether `reenactment_target` can render the ground truth of
      cross-identity reenactment (one video's person in another video's motion).
    config: the ``datasets`` block.
    split: the split's name.
    image_size: side ``S`` of the frames.
  """

  requires_root: ClassVar[bool] = False
  decodes_in_graph: ClassVar[bool] = False
  renders_reenactment: ClassVar[bool] = False

  def __init__(self, config: ml_collections.ConfigDict, split: str):
    """Lists the videos of a split; opens none of them.

    Args:
      config: a valid ``datasets`` block.
      split: split name (``config.train_split`` or ``config.eval_split``).

    Raises:
      FileNotFoundError: for a missing root, split or build (subclasses).
      EmptyDatasetError: for a split without videos (subclasses).
      ValueError: for a split the kind does not have (subclasses).
    """
    self.config = config
    self.split = split
    self.image_size = config.image_size

  @property
  @abc.abstractmethod
  def video_names(self) -> list[str]:
    """Names of the split's videos, sorted; at most ``config.max_videos``."""

  @property
  def persons(self) -> list[str]:
    """The person of each video of `video_names`, for id sampling and host shares."""
    return [person_id(name) for name in self.video_names]

  def reenactment_target(self, source_name: str, driving_name: str,
                         frames: Sequence[int]) -> np.ndarray:
    """The first frame's person of ``source_name`` moved like ``driving_name`` (relative
    motion), for the kinds that can render it (``renders_reenactment``).

    Args:
      source_name: the video whose first frame is the source image.
      driving_name: the driving video.
      frames: driving frame indices.

    Returns:
      uint8 ``(len(frames), S, S, 3)``.

    Raises:
      NotImplementedError: a real dataset has no such ground truth.
    """
    raise NotImplementedError(f"the {self.config.name!r} dataset cannot render what one "
                              f"person looks like in another's motion")

  @abc.abstractmethod
  def open(self, position: int) -> Video:
    """Opens the reader of one video, reading as little as possible.

    The training pipeline opens all of a host's videos at start, so a video's files
    should be read on its first read, not here.

    Args:
      position: index into `video_names`.

    Returns:
      A `Video` named ``video_names[position]`` whose readers return `stored_frame`s.

    Raises:
      BadVideoError: if the video is unusable already when opened.
    """

  def open_videos(self, positions: Sequence[int], *, skip_bad_files: bool,
                  bad_file_log: BadFileLog) -> dict[int, Video]:
    """Opens the readers of some videos, e.g. a host's share.

    Args:
      positions: indices into `video_names`, in the order to open them.
      skip_bad_files: record videos that fail already here in `bad_file_log` and
        leave them out, instead of raising.
      bad_file_log: where skipped videos are recorded.

    Returns:
      ``{position: reader}`` for the videos that could be opened, in `positions` order.

    Raises:
      BadVideoError: for a bad video when `skip_bad_files` is False.
    """
    videos = {}
    for position in positions:
      try:
        videos[position] = self.open(position)
      except BadVideoError as error:
        if not skip_bad_files:
          raise
        bad_file_log.record(error)
    return videos

  @property
  def stored_frame(self) -> StoredFrame:
    """What the readers return per frame: uint8 ``(S, S, 3)`` unless overridden."""
    return StoredFrame("uint8", (self.image_size, self.image_size, 3))

  def decode(self, stored: tf.Tensor) -> tf.Tensor:
    """Turns stored frames into uint8 frames (a graph op; identity unless overridden).

    Args:
      stored: ``(K, *stored_frame.shape)`` frames as the readers return them; ``K``
        is 2 for a training pair (static) and the video length for evaluation.

    Returns:
      uint8 ``(K, S, S, 3)`` frames.
    """
    return stored
