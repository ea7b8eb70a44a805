"""Which video and which two frames each training pair comes from.

FOMM's ``FramesDataset`` with ``id_sampling`` first picks a person (VoxCeleb videos are
named ``id10001#<youtube id>#<start>#<end>``, the person being the part before the
first ``#``) and then one of that person's videos; without it every video is an item.
It then draws two frame indices uniformly and independently (with replacement, so
both may be the same frame) and sorts them, so the source precedes the driving frame
before the time flip; the official code draws them the same way.

All randomness is derived from ``(seed, element counter)``, so element ``k`` of a
pipeline is the same whatever the number of parallel readers or the host it runs on,
and any element can be computed without the ones before it (`ElementSchedule`): a
resumed run continues the stream exactly where it stopped.
"""

from __future__ import annotations

import collections
import threading
from typing import Sequence

import numpy as np

from mcc_jax.data_pipelines.bad_files import EmptyDatasetError

# VoxCeleb (video-preprocessing) names: person id, then '#'-separated clip details.
PERSON_SEPARATOR = "#"


def person_id(video_name: str) -> str:
  """Returns the person a video belongs to.

  Args:
    video_name: file or folder name, e.g. ``'id10001#7w0IBEWc9Qw#000993#001143.mp4'``.

  Returns:
    The part before the first ``'#'`` (``'id10001'``); the whole name when there is
    none, which makes every such video its own person.
  """
  return video_name.split(PERSON_SEPARATOR, 1)[0]


def element_rng(seed: int, counter: int) -> np.random.Generator:
  """Returns the generator for one pipeline element.

  Args:
    seed: the pipeline seed.
    counter: the element's position in the stream of sampled items.

  Returns:
    A ``numpy`` generator that depends only on ``(seed, counter)``.
  """
  return np.random.default_rng([int(seed), int(counter)])


def redraw_rng(seed: int, counter: int, attempt: int) -> np.random.Generator:
  """Returns the generator that replaces an element whose video was unreadable.

  Args:
    seed: the pipeline seed.
    counter: the element's position in the stream.
    attempt: 1 for the first replacement, 2 for the next, ...

  Returns:
    A ``numpy`` generator that depends only on the arguments; different from
    `element_rng` (whose entropy ``[seed, counter]`` reads as ``[seed, counter, 0]``).
  """
  if attempt < 1:
    raise ValueError(f"attempt must be at least 1, got {attempt}")
  return np.random.default_rng([int(seed), int(counter), int(attempt)])


def host_seed(seed: int, process_index: int) -> int:
  """Derives the seed of one host's stream from the pipeline seed.

  Without it, hosts would flip and pick frame positions in lockstep.

  Args:
    seed: the pipeline seed.
    process_index: the host.

  Returns:
    A non-negative 31-bit integer that depends only on the arguments.
  """
  state = np.random.SeedSequence([int(seed), int(process_index)]).generate_state(1)
  return int(state[0] >> 1)


def sample_frame_pair(rng: np.random.Generator, num_frames: int) -> np.ndarray:
  """Draws two frame indices uniformly and independently, in increasing order.

  As FOMM and the official code do (``np.sort(np.random.choice(num_frames, size=2,
  replace=True))``): the two indices may be equal, so a video of one frame gives the
  pair (0, 0).

  Args:
    rng: the element's generator.
    num_frames: frames in the video; at least 1.

  Returns:
    ``int64`` array of shape ``(2,)`` with ``0 <= first <= second < num_frames``.

  Raises:
    ValueError: if ``num_frames < 1``.
  """
  if num_frames < 1:
    raise ValueError(f"a pair needs at least 1 frame, got {num_frames}")
  return np.sort(rng.choice(num_frames, size=2, replace=True)).astype(np.int64)


class ElementSchedule:
  """Which item (person or video) each element of the endless stream visits.

  Elements are numbered by a counter ``c = 0, 1, 2, ...``; with ``n`` items, element
  ``c`` visits position ``c % n`` of epoch ``c // n``, and each epoch is a permutation
  of the items seeded by ``(seed, epoch)`` (in order without shuffling). So every item
  is visited once per epoch, and any element is found without computing the ones
  before it: the permutations of the last few epochs used are kept, which makes an
  element O(1) on average. Safe to call from several threads.
  """

  # Epochs whose permutation is kept: parallel readers straddle at most two.
  _CACHED_EPOCHS = 4

  def __init__(self, num_items: int, seed: int, shuffle: bool):
    """Stores the schedule's parameters.

    Args:
      num_items: items per epoch; at least 1.
      seed: the host's pipeline seed.
      shuffle: permute each epoch (True) or visit the items in order (False).
    """
    if num_items < 1:
      raise ValueError(f"num_items must be at least 1, got {num_items}")
    self.num_items = int(num_items)
    self._seed = int(seed)
    self._shuffle = shuffle
    self._lock = threading.Lock()
    self._permutations: collections.OrderedDict[int, np.ndarray] = (
        collections.OrderedDict())

  def permutation(self, epoch: int) -> np.ndarray:
    """The order of the items in one epoch.

    Args:
      epoch: epoch index.

    Returns:
      int64 ``(num_items,)``, a permutation of ``range(num_items)`` that depends only
      on ``(seed, epoch)``; the identity without shuffling.
    """
    with self._lock:
      cached = self._permutations.get(epoch)
      if cached is not None:
        self._permutations.move_to_end(epoch)
        return cached
    if self._shuffle:
      # Entropy of four words: never that of an `element_rng` or `redraw_rng`.
      rng = np.random.default_rng([self._seed, int(epoch), 0, 1])
      order = rng.permutation(self.num_items).astype(np.int64)
    else:
      order = np.arange(self.num_items, dtype=np.int64)
    with self._lock:
      self._permutations[epoch] = order
      while len(self._permutations) > self._CACHED_EPOCHS:
        self._permutations.popitem(last=False)
    return order

  def item(self, counter: int) -> int:
    """The item element ``counter`` visits.

    Args:
      counter: the element's position in the stream, >= 0.

    Returns:
      An item index in ``[0, num_items)``.
    """
    epoch, position = divmod(int(counter), self.num_items)
    return int(self.permutation(epoch)[position])


class PairSampler:
  """Maps the items of an epoch (persons or videos) to videos."""

  def __init__(self, persons: Sequence[str], id_sampling: bool):
    """Groups videos by person.

    Args:
      persons: the person of each video, in video order.
      id_sampling: make persons the items (True) or videos (False).

    Raises:
      EmptyDatasetError: if there are no videos.
    """
    if not persons:
      raise EmptyDatasetError("no videos to sample pairs from")
    self._id_sampling = id_sampling
    grouped: dict[str, list[int]] = {}
    for video, person in enumerate(persons):
      grouped.setdefault(person, []).append(video)
    self._videos_of_person = [np.asarray(grouped[p]) for p in sorted(grouped)]
    self._num_videos = len(persons)

  @property
  def num_items(self) -> int:
    """Items per epoch: persons with id sampling, videos otherwise."""
    return len(self._videos_of_person) if self._id_sampling else self._num_videos

  @property
  def num_videos(self) -> int:
    """Number of videos (the ``persons`` given to the constructor)."""
    return self._num_videos

  def video_for_item(self, item: int, rng: np.random.Generator) -> int:
    """Picks the video of an item.

    Args:
      item: index in ``[0, num_items)``.
      rng: the element's generator (used only with id sampling).

    Returns:
      Index of the video in the ``persons`` sequence given to the constructor.
    """
    if not self._id_sampling:
      return int(item)
    return int(rng.choice(self._videos_of_person[item]))


def host_share(persons: Sequence[str], id_sampling: bool, process_index: int,
               process_count: int, *, allow_empty: bool = False) -> list[int]:
  """Selects the videos one host reads.

  With id sampling whole persons are dealt out, so that each host still samples
  persons uniformly; otherwise videos are. Units are dealt round-robin in sorted
  order, so hosts get disjoint shares that together cover the split.

  Args:
    persons: the person of each video of the split, in video order.
    id_sampling: deal persons (True) or videos (False).
    process_index: this host, in ``[0, process_count)``.
    process_count: number of hosts.
    allow_empty: return an empty share instead of raising (evaluation, where a host
      may have nothing left to play).

  Returns:
    Sorted indices of this host's videos.

  Raises:
    ValueError: for an invalid host index or count.
    EmptyDatasetError: if this host gets no video (fewer units than hosts) and
      `allow_empty` is False.
  """
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f"process_index must be in [0, {process_count}) and process_count "
                     f">= 1, got process_index={process_index}, "
                     f"process_count={process_count}")
  if id_sampling:
    units = sorted(set(persons))
    mine = set(units[process_index::process_count])
    share = [v for v, person in enumerate(persons) if person in mine]
    what = f"{len(units)} persons"
  else:
    share = list(range(process_index, len(persons), process_count))
    what = f"{len(persons)} videos"
  if not share and not allow_empty:
    raise EmptyDatasetError(f"host {process_index} of {process_count} gets no video: the "
                            f"split has only {what}")
  return share
