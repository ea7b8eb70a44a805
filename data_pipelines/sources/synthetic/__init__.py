"""The ``synthetic`` dataset kind: procedurally rendered talking-head videos.

Each split has its own identities (train identities never appear in the test split,
so cross-identity reenactment can be evaluated), each identity several videos with
different motions. Frames are rendered on demand, so a pair costs two renders and no
memory is held. Names follow VoxCeleb's ``<person>#<clip>`` convention so that id
sampling groups the videos of one identity. The renderer is `heads`.
"""

from __future__ import annotations

import re
from typing import Sequence

import ml_collections
import numpy as np

from mcc_jax.data_pipelines.pair_sampling import sample_frame_pair
from mcc_jax.data_pipelines.readers.video import Video, check_frame_count
from mcc_jax.data_pipelines.sources.base import DatasetSource
from mcc_jax.data_pipelines.sources.synthetic import reenactment
from mcc_jax.data_pipelines.sources.synthetic.heads import (HeadIdentity, HeadMotion, render_head,
                                                    sample_identity, sample_motion)

# Seed-stream tags: identities of different splits come from disjoint streams.
_SPLIT_TAGS = {"train": 0, "test": 1}
_IDENTITY_STREAM = 0
_MOTION_STREAM = 1


class SyntheticVideo(Video):
  """A rendered video: one identity performing one motion."""

  def __init__(self, name: str, identity: HeadIdentity, motion: HeadMotion,
               num_frames: int, image_size: int):
    """Stores the recipe of the video.

    Args:
      name: ``<person>#<clip>``.
      identity: who is shown.
      motion: how they move.
      num_frames: video length.
      image_size: side of the rendered frames.
    """
    super().__init__(name, name, image_size)
    check_frame_count(name, num_frames)
    self.identity = identity
    self.motion = motion
    self.num_frames = num_frames

  def render(self, frame: int) -> np.ndarray:
    """Renders one frame.

    Args:
      frame: frame index.

    Returns:
      uint8 ``(S, S, 3)``.
    """
    return render_head(self.identity, self.motion.pose(frame), self.image_size)

  def read_pair(self, rng: np.random.Generator) -> np.ndarray:
    """See `Video.read_pair`; renders only the two frames. ``(2, S, S, 3)``."""
    return np.stack([self.render(i) for i in sample_frame_pair(rng, self.num_frames)])

  def read_all(self) -> np.ndarray:
    """See `Video.read_all`; ``(T, S, S, 3)`` uint8."""
    return np.stack([self.render(i) for i in range(self.num_frames)])


def identity_for(seed: int, split: str, person: int) -> HeadIdentity:
  """The identity of one synthetic person.

  Args:
    seed: dataset seed (``datasets.synthetic.seed``).
    split: ``'train'`` or ``'test'``; the splits use disjoint seed streams.
    person: person index within the split.

  Returns:
    A `HeadIdentity` that depends only on the arguments.
  """
  return sample_identity(np.random.default_rng(
      [seed, _SPLIT_TAGS[split], person, _IDENTITY_STREAM]))


def _check_split(split: str) -> None:
  if split not in _SPLIT_TAGS:
    raise ValueError(f"the 'synthetic' dataset has the splits {sorted(_SPLIT_TAGS)}, "
                     f"got {split!r}")


def _video_name(split: str, person: int, clip: int) -> str:
  return f"synthetic-{split}-{person:04d}#{clip:02d}"


def video_named(datasets: ml_collections.ConfigDict, name: str) -> SyntheticVideo:
  """The video of the synthetic dataset that has a given name.

  Args:
    datasets: the ``datasets`` block (its ``synthetic`` seed and frame count, and its
      ``image_size``).
    name: ``synthetic-<split>-<person>#<clip>``, as in ``video_names``.

  Returns:
    The `SyntheticVideo`, identity and motion included.

  Raises:
    ValueError: for a name that is not of that form.
  """
  match = re.fullmatch(r"synthetic-(\w+)-(\d+)#(\d+)", name)
  if match is None or match.group(1) not in _SPLIT_TAGS:
    raise ValueError(f"{name!r} is not the name of a synthetic video (expected "
                     f"'synthetic-<split>-<person>#<clip>' with a split of "
                     f"{sorted(_SPLIT_TAGS)})")
  return synthetic_video(match.group(1), int(datasets.image_size),
                         seed=datasets.synthetic.seed, person=int(match.group(2)),
                         clip=int(match.group(3)), num_frames=datasets.synthetic.num_frames)


def synthetic_video(split: str, image_size: int, *, seed: int, person: int, clip: int,
                    num_frames: int) -> SyntheticVideo:
  """One video of the synthetic dataset: a person's identity and one of their motions.

  Args:
    split: ``'train'`` or ``'test'``.
    image_size: side of the frames.
    seed: dataset seed.
    person: person index within the split.
    clip: video index within the person's videos.
    num_frames: frames per video.

  Returns:
    The `SyntheticVideo` named ``synthetic-<split>-<person>#<clip>``; it depends only
    on the arguments.

  Raises:
    ValueError: for an unknown split.
  """
  _check_split(split)
  motion = sample_motion(np.random.default_rng(
      [seed, _SPLIT_TAGS[split], person, _MOTION_STREAM, clip]), num_frames)
  return SyntheticVideo(_video_name(split, person, clip), identity_for(seed, split, person),
                        motion, num_frames, image_size)


def synthetic_videos(split: str, image_size: int, *, seed: int, num_identities: int,
                     videos_per_identity: int, num_frames: int) -> list[SyntheticVideo]:
  """The videos of one split of the synthetic dataset.

  Args:
    split: ``'train'`` or ``'test'``.
    image_size: side of the frames.
    seed: dataset seed.
    num_identities: persons in the split.
    videos_per_identity: videos per person.
    num_frames: frames per video.

  Returns:
    `SyntheticVideo`s named ``synthetic-<split>-<person>#<clip>``, sorted by name.

  Raises:
    ValueError: for an unknown split.
  """
  _check_split(split)
  return [synthetic_video(split, image_size, seed=seed, person=person, clip=clip,
                          num_frames=num_frames)
          for person in range(num_identities) for clip in range(videos_per_identity)]


class SyntheticSource(DatasetSource):
  """A split of the synthetic dataset (``datasets.synthetic``); videos render on demand."""

  def __init__(self, config: ml_collections.ConfigDict, split: str):
    """Names the split's videos; nothing is rendered.

    Args:
      config: the ``datasets`` block; ``config.synthetic`` sets the seed and sizes, and
        the train split has ``num_train_identities`` persons, any other split
        ``num_test_identities``.
      split: ``'train'`` or ``'test'``.

    Raises:
      ValueError: for an unknown split.
    """
    super().__init__(config, split)
    _check_split(split)
    self._synthetic = config.synthetic
    num_identities = (self._synthetic.num_train_identities if split == config.train_split
                      else self._synthetic.num_test_identities)
    self._names = [_video_name(split, person, clip) for person in range(num_identities)
                   for clip in range(self._synthetic.videos_per_identity)
                   ][:config.max_videos]

  @property
  def video_names(self) -> list[str]:
    """``synthetic-<split>-<person>#<clip>``, sorted."""
    return self._names

  renders_reenactment = True

  def reenactment_target(self, source_name: str, driving_name: str,
                         frames: Sequence[int]) -> np.ndarray:
    """See `DatasetSource.reenactment_target`; relative motion, composed as in
    `reenactment`."""
    return reenactment.reenactment_target(video_named(self.config, source_name),
                                          video_named(self.config, driving_name), frames,
                                          "relative")

  def open(self, position: int) -> SyntheticVideo:
    """See `DatasetSource.open`; samples the identity and motion, renders nothing."""
    person, clip = divmod(position, self._synthetic.videos_per_identity)
    return synthetic_video(self.split, self.image_size, seed=self._synthetic.seed,
                           person=person, clip=clip, num_frames=self._synthetic.num_frames)


DATASET_SOURCE = SyntheticSource
