"""Face-based metrics: AKD (landmarks), AED and identity similarity (embeddings).

The paper measures faces with face-alignment's FAN (68 landmarks, for AKD) and
OpenFace (128-d identity embeddings, for AED). Neither is available offline, so the
stand-ins here are dlib's models (:mod:`mcc_jax.faces`): the 68-point iBUG shape
predictor (the same 68-point scheme as FAN) and dlib's ResNet face descriptor (128-d).
**The values are therefore not comparable with the paper's tables**; they compare
models measured the same way.

Per frame, as the official ``basicsr/metrics/extract.py``:

* AKD: ``mean |lm_ref - lm_gen|`` over the 68 x 2 landmark coordinates (mean absolute
  coordinate difference in pixels, not a Euclidean distance), averaged over the frames
  where both faces are found; the fraction of frames where either is missed is
  reported next to it.
* AED: the squared L2 distance ``sum (e_ref - e_gen)^2`` of the L2-normalised embeddings
  (in [0, 4]), averaged over the frames where both faces are found.
* Identity similarity (CSIM): the cosine ``<e_ref, e_gen>`` of the L2-normalised
  embeddings (the official ``cmp_id_similarity`` uses ArcFace; here dlib), in [-1, 1].

A frame whose face is missed holds NaN in the per-frame arrays.

Faces are found either by dlib's detector in every image independently (``'detect'``,
as face-alignment does) or by taking the whole frame as the face box (``'frame'``, for
datasets of face crops such as VoxCeleb after video-preprocessing; it never misses).
dlib holds Python's lock while it runs, so frames can be measured in worker processes.
"""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
from typing import NamedTuple, Sequence

import numpy as np

FACE_BOX_CHOICES = ("detect", "frame")


class Face(NamedTuple):
  """What was measured on one image.

  Attributes:
    landmarks: float64 (68, 2) ``(x, y)`` pixels, or None (not found or not asked for).
    embedding: float64 (128,) L2-normalised identity embedding, or None.
  """

  landmarks: np.ndarray | None
  embedding: np.ndarray | None


def measure_face(image: np.ndarray, *, face_box: str = "detect", landmarks: bool = True,
                 embedding: bool = True) -> Face:
  """Landmarks and identity embedding of the face in an image.

  Args:
    image: ``uint8`` (H, W, 3) RGB.
    face_box: ``'detect'`` (the largest face dlib's detector finds) or ``'frame'``
      (the whole image is the face box).
    landmarks: compute the 68 landmarks.
    embedding: compute the identity embedding.

  Returns:
    A :class:`Face`; both fields None when no face is found.
  """
  from mcc_jax import faces  # pylint: disable=import-outside-toplevel

  image = np.asarray(image)
  if face_box == "frame":
    box = (0, 0, image.shape[1], image.shape[0])
  elif face_box == "detect":
    boxes = faces.detect_faces(image)
    if not len(boxes):
      return Face(None, None)
    box = boxes[0]
  else:
    raise ValueError(f"face_box must be one of {FACE_BOX_CHOICES}, got {face_box!r}")
  points = faces.face_landmarks(image, box) if landmarks else None
  vector = None
  if embedding:
    vector = faces.identity_embedding(image, box)
    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
  return Face(points, vector)


class FaceMeter:
  """Measures faces of many frames, in this process or in worker processes.

  Attributes:
    face_box: see :func:`measure_face`.
    workers: worker processes (0: measure in this process). Workers are started with
      ``spawn`` (they import dlib and numpy only) on first use; call :meth:`close`.
  """

  def __init__(self, *, face_box: str = "detect", workers: int = 0):
    """Checks the settings; no process is started yet.

    Args:
      face_box: ``'detect'`` or ``'frame'``.
      workers: worker processes (0: this process).
    """
    if face_box not in FACE_BOX_CHOICES:
      raise ValueError(f"face_box must be one of {FACE_BOX_CHOICES}, got {face_box!r}")
    if workers < 0:
      raise ValueError(f"workers must be >= 0, got {workers}")
    self.face_box = face_box
    self.workers = workers
    self._pool: concurrent.futures.Executor | None = None

  def __call__(self, frames: np.ndarray, *, landmarks: bool = True,
               embedding: bool = True) -> list[Face]:
    """Measures every frame.

    Args:
      frames: ``uint8`` (N, H, W, 3).
      landmarks: compute landmarks.
      embedding: compute identity embeddings.

    Returns:
      N :class:`Face` in frame order.
    """
    measure = functools.partial(measure_face, face_box=self.face_box, landmarks=landmarks,
                                embedding=embedding)
    if self.workers == 0 or len(frames) < 2:
      return [measure(frame) for frame in frames]
    if self._pool is None:
      self._pool = concurrent.futures.ProcessPoolExecutor(
          self.workers, mp_context=multiprocessing.get_context("spawn"))
    chunk = max(1, len(frames) // (4 * self.workers))
    return list(self._pool.map(measure, list(frames), chunksize=chunk))

  def close(self) -> None:
    """Stops the worker processes, if any."""
    if self._pool is not None:
      self._pool.shutdown()
      self._pool = None


def keypoint_distance(reference: np.ndarray, generated: np.ndarray) -> float:
  """Mean absolute coordinate difference of two landmark sets (one frame's AKD).

  Args:
    reference: (68, 2) ``(x, y)``.
    generated: (68, 2) ``(x, y)``.

  Returns:
    ``mean |reference - generated|`` over all 136 coordinates, in pixels.
  """
  reference, generated = np.asarray(reference, np.float64), np.asarray(generated, np.float64)
  if reference.shape != generated.shape or reference.ndim != 2 or reference.shape[1] != 2:
    raise ValueError(f"keypoint_distance: expected two (P, 2) landmark sets of one shape, got "
                     f"{reference.shape} and {generated.shape}")
  return float(np.mean(np.abs(reference - generated)))


def _pairwise(reference: Sequence[Face], generated: Sequence[Face], field: str,
              score) -> np.ndarray:
  if len(reference) != len(generated):
    raise ValueError(f"expected as many reference as generated faces, got {len(reference)} "
                     f"and {len(generated)}")
  out = np.full((len(generated),), np.nan)
  for i, (ref, gen) in enumerate(zip(reference, generated)):
    a, b = getattr(ref, field), getattr(gen, field)
    if a is not None and b is not None:
      out[i] = score(a, b)
  return out


def keypoint_distances(reference: Sequence[Face], generated: Sequence[Face]) -> np.ndarray:
  """Per-frame AKD.

  Args:
    reference: N faces of the reference frames.
    generated: N faces of the generated frames.

  Returns:
    float64 (N,); NaN where either face has no landmarks.
  """
  return _pairwise(reference, generated, "landmarks", keypoint_distance)


def embedding_distances(reference: Sequence[Face], generated: Sequence[Face]) -> np.ndarray:
  """Per-frame AED: squared L2 distance of the normalised embeddings.

  Args:
    reference: N faces.
    generated: N faces.

  Returns:
    float64 (N,) in [0, 4]; NaN where either face has no embedding.
  """
  return _pairwise(reference, generated, "embedding",
                   lambda a, b: float(np.sum((np.asarray(a) - np.asarray(b))**2)))


def embedding_similarities(reference: Sequence[Face], generated: Sequence[Face]) -> np.ndarray:
  """Per-frame identity similarity: cosine of the normalised embeddings.

  Args:
    reference: N faces.
    generated: N faces.

  Returns:
    float64 (N,) in [-1, 1]; NaN where either face has no embedding.
  """
  return _pairwise(reference, generated, "embedding",
                   lambda a, b: float(np.dot(np.asarray(a), np.asarray(b))))
