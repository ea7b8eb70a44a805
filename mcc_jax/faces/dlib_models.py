"""Face detection, 68 landmarks and identity embeddings with dlib's offline models.

* Detection: dlib's HOG frontal-face detector (built into dlib, no model file). Its
  sliding window finds faces of about 80 pixels and more; small images are therefore
  upsampled and large ones detected on a downscaled copy, then, where that finds
  nothing, at full resolution; where HOG finds nothing at all, dlib's CNN (MMOD) face
  detector (``mmod_human_face_detector.dat``) looks again (see :func:`find_faces`).
* Landmarks: dlib's 68-point shape predictor, trained on iBUG 300-W, i.e. the same
  68-point scheme as face-alignment's FAN (jaw 0-16, eyebrows 17-26, nose 27-35, eyes
  36-47, mouth 48-67), used for the average keypoint distance (AKD).
* Identity: dlib's ResNet face descriptor (128-D; two photos of one person are
  typically closer than 0.6), used for the average Euclidean distance (AED).

The model files come from the ``face_recognition_models`` package; they are located
without importing it (its ``__init__`` needs ``pkg_resources``) and loaded once, on
first use, by whichever thread gets there first.

Boxes are ``(left, top, right, bottom)`` in pixels with right and bottom exclusive, as
in :func:`mcc_jax.media.crop_and_resize`; points are ``(x, y)`` pixel coordinates
(column and row of the pixel, so a horizontal flip maps ``x`` to ``W - 1 - x``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import dataclasses
import threading
from typing import Callable, Sequence

import numpy as np

_MODELS_PACKAGE = "face_recognition_models"
_LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
_RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
_CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"
_INSTALL_HINT = 'pip install "mcc-jax[faces]"'

# With upsample=None, detection runs on a copy whose longer side lies in
# [_MIN_DETECTION_SIDE, _MAX_DETECTION_SIDE]: larger frames are downscaled to 640 px (the
# video-preprocessing recipe's size, which keeps HD video fast and still finds faces of
# 1/8 of the frame), smaller ones are upsampled by powers of two (a 176x144 frame's
# 50-pixel face is below the detector's 80-pixel window until upsampled once).
_MAX_DETECTION_SIDE = 640
_MIN_DETECTION_SIDE = 320
# Where the downscaled pass finds nothing, large frames are detected again at full
# resolution, upsampled once (faces down to about 40 px) only up to this longer side:
# a 1080x720 frame takes about 0.32 s so on a 2-core CPU, a 4K frame would take 4 s.
_MAX_FULL_RESOLUTION_UPSAMPLE_SIDE = 1600
# The CNN fallback runs on a copy of at most this longer side, upsampled once: at
# upsample 0 it misses faces below about 55 px of the copy (about 95 px of a 1080-px
# frame, larger than what the full-resolution HOG pass already finds when frontal);
# upsampled once it finds faces of about 30 px of the copy (about 50 px of a 1080-px
# frame), at about 7.3 s per 640x427 copy on a 2-core CPU (2 s at upsample 0).
_MAX_CNN_SIDE = 640
_CNN_UPSAMPLE = 1

# The stages of find_faces, in the order they run.
DETECTORS = ("hog", "hog-full-resolution", "cnn", "none")

NUM_LANDMARKS = 68
EMBEDDING_SIZE = 128


class FaceModelsError(RuntimeError):
  """dlib or one of its model files cannot be loaded."""


_lock = threading.Lock()
_models: dict[str, object] = {}


def _import_dlib():
  try:
    import dlib  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise FaceModelsError(f"face detection needs dlib, which cannot be imported ({error}); "
                          f"install it with `{_INSTALL_HINT}`") from error
  return dlib


def model_path(filename: str) -> str:
  """The path of one of the model files shipped in ``face_recognition_models``.

  Args:
    filename: e.g. ``'shape_predictor_68_face_landmarks.dat'``.

  Returns:
    Absolute path of the file.

  Raises:
    FaceModelsError: the package is not installed or lacks the file.
  """
  spec = importlib.util.find_spec(_MODELS_PACKAGE)
  if spec is None or spec.origin is None:
    raise FaceModelsError(f"the face models package {_MODELS_PACKAGE!r} is not installed; "
                          f"install it with `{_INSTALL_HINT}`")
  path = os.path.join(os.path.dirname(spec.origin), "models", filename)
  if not os.path.isfile(path):
    raise FaceModelsError(f"{path}: model file missing from {_MODELS_PACKAGE}; reinstall it "
                          f"with `{_INSTALL_HINT}`")
  return path


def _cached(name: str, load: Callable[[], object]) -> object:
  model = _models.get(name)
  if model is None:
    with _lock:
      model = _models.get(name)
      if model is None:
        model = _models[name] = load()
  return model


def _load_file(factory_name: str, filename: str) -> Callable[[], object]:
  def load():
    dlib = _import_dlib()
    path = model_path(filename)
    try:
      return getattr(dlib, factory_name)(path)
    except RuntimeError as error:
      raise FaceModelsError(f"{path}: dlib cannot load the model ({error}); reinstall it "
                            f"with `{_INSTALL_HINT}`") from error
  return load


def _detector():
  return _cached("detector", lambda: _import_dlib().get_frontal_face_detector())


def _cnn_detector():
  return _cached("cnn_detector", _load_file("cnn_face_detection_model_v1", _CNN_DETECTOR_FILE))


def _shape_predictor():
  return _cached("landmarks", _load_file("shape_predictor", _LANDMARKS_FILE))


def _recognizer():
  return _cached("recognition", _load_file("face_recognition_model_v1", _RECOGNITION_FILE))


def _check_image(image, caller: str) -> np.ndarray:
  array = np.asarray(image)
  if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
    raise ValueError(f"{caller}: expected a uint8 (H, W, 3) RGB image, got "
                     f"{array.dtype} {array.shape}")
  if array.shape[0] < 1 or array.shape[1] < 1:
    raise ValueError(f"{caller}: expected a non-empty uint8 (H, W, 3) image, got "
                     f"{array.shape}")
  return np.ascontiguousarray(array)


def _automatic_scale(height: int, width: int) -> tuple[float, int]:
  """(resize factor, dlib upsample count) for a frame of this size."""
  longer = max(height, width)
  if longer > _MAX_DETECTION_SIDE:
    return _MAX_DETECTION_SIDE / longer, 0
  if longer < _MIN_DETECTION_SIDE:
    return 1.0, math.ceil(math.log2(_MIN_DETECTION_SIDE / longer))
  return 1.0, 0


def _resized(image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
  """(the image resized by ``scale``, the factors that map its boxes back)."""
  if scale == 1.0:
    return image, np.ones(4)
  from PIL import Image  # pylint: disable=import-outside-toplevel

  height, width = image.shape[:2]
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  working = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
  # The exact factors of the rounded size map the boxes back.
  return working, np.array([width / size[0], height / size[1]] * 2)


def _boxes(rectangles, factors: np.ndarray) -> np.ndarray:
  """dlib rectangles as float64 (N, 4) boxes in the original image's pixels."""
  boxes = np.array([(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rectangles],
                   np.float64).reshape(-1, 4) * factors
  areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  return boxes[np.argsort(-areas, kind="stable")]


def _hog(image: np.ndarray, scale: float, upsample: int) -> np.ndarray:
  working, factors = _resized(image, scale)
  return _boxes(_detector()(working, int(upsample)), factors)


def _cnn(image: np.ndarray) -> np.ndarray:
  working, factors = _resized(image, min(1.0, _MAX_CNN_SIDE / max(image.shape[:2])))
  detections = _cnn_detector()(working, _CNN_UPSAMPLE)
  return _boxes([detection.rect for detection in detections], factors)


@dataclasses.dataclass(frozen=True)
class FaceDetections:
  """The faces :func:`find_faces` found and the stage that found them.

  Attributes:
    boxes: ``float64`` ``(N, 4)`` boxes ``(left, top, right, bottom)``, largest first,
      as :func:`detect_faces` returns them.
    detector: the stage that found them, one of :data:`DETECTORS`: ``'hog'`` (the HOG
      detector on the automatically scaled copy, or at the ``upsample`` asked for),
      ``'hog-full-resolution'`` (HOG on the full-size image of a frame larger than 640
      px), ``'cnn'`` (the CNN fallback) or ``'none'`` (no face; ``boxes`` is empty).
  """

  boxes: np.ndarray
  detector: str


def find_faces(image: np.ndarray, upsample: int | None = None, *,
               cnn: bool = True) -> FaceDetections:
  """Finds the faces in an image and says which detector found them.

  With ``upsample=None`` (automatic) the stages below run in turn until one finds a
  face; the times are per frame on a 2-core CPU:

  1. ``'hog'``: dlib's HOG frontal-face detector on a copy with a longer side of
     320-640 px: frames above 640 px are downscaled to 640 px, frames below 320 px
     doubled until they reach it. It finds faces of about 80 px of the copy, i.e. of
     1/8 of a large frame's longer side (0.03 s for a 1080x720 frame).
  2. ``'hog-full-resolution'``, frames above 640 px only: HOG on the full-size frame
     (faces of about 80 px; 0.07 s at 1080x720), and, where that finds nothing and the
     longer side is at most 1600 px, upsampled once (faces of about 40 px; 0.32 s).
  3. ``'cnn'``: dlib's CNN (MMOD) face detector, which also finds turned, tilted and
     poorly lit faces, on a copy downscaled to at most 640 px and upsampled once: it
     finds faces of about 30 px of that copy (about 50 px of a 1080-px frame). It is
     slow, 7.3 s on the 640x427 copy of a 1080x720 frame (0.6 s on a 176x144 frame),
     and runs only where HOG found nothing, e.g. on every frame without a face; ``cnn=False``
     leaves it out (for long videos where frames without a face are expected).

  Args:
    image: ``uint8`` ``(H, W, 3)`` RGB.
    upsample: how many times dlib's HOG detector doubles the full-size image before
      detecting (each doubling halves the smallest face found, about 80 px at 0, and
      quadruples the time); only this one HOG pass runs. None: the stages above.
    cnn: whether the CNN stage runs where HOG found nothing.

  Returns:
    A :class:`FaceDetections`: the boxes in pixels of ``image`` (right and bottom
    exclusive; a box may reach slightly past the image's edges), largest first, and the
    stage that found them (``'none'`` with no boxes when no face is found).

  Raises:
    ValueError: ``image`` is not ``uint8`` ``(H, W, 3)``, or ``upsample`` is negative.
    FaceModelsError: dlib or the CNN model file cannot be loaded.
  """
  return _find_faces(image, upsample, "find_faces", fallback=True, cnn=cnn)


def _find_faces(image, upsample: int | None, caller: str, *, fallback: bool,
                cnn: bool) -> FaceDetections:
  image = _check_image(image, caller)
  if upsample is not None:
    if upsample < 0:
      raise ValueError(f"{caller}: upsample must be >= 0 or None, got {upsample}")
    boxes = _hog(image, 1.0, upsample)
    return FaceDetections(boxes, "hog" if len(boxes) else "none")
  height, width = image.shape[:2]
  scale, automatic_upsample = _automatic_scale(height, width)
  boxes = _hog(image, scale, automatic_upsample)
  if len(boxes) or not fallback:
    return FaceDetections(boxes, "hog" if len(boxes) else "none")
  if scale != 1.0:
    boxes = _hog(image, 1.0, 0)
    if not len(boxes) and max(height, width) <= _MAX_FULL_RESOLUTION_UPSAMPLE_SIDE:
      boxes = _hog(image, 1.0, 1)
    if len(boxes):
      return FaceDetections(boxes, "hog-full-resolution")
  if not cnn:
    return FaceDetections(boxes, "none")
  boxes = _cnn(image)
  return FaceDetections(boxes, "cnn" if len(boxes) else "none")


def detect_faces(image: np.ndarray, upsample: int | None = None) -> np.ndarray:
  """Finds the (roughly frontal) faces in an image with dlib's HOG detector alone.

  The first stage of :func:`find_faces`, with no fallback: the detector of the
  evaluation metrics and of the dataset recipe, whose results must not depend on a
  slower second detector.

  Args:
    image: ``uint8`` ``(H, W, 3)`` RGB.
    upsample: how many times dlib doubles the image before detecting (each doubling
      halves the smallest face found, about 80 px at 0, and quadruples the time). None
      picks automatically: images with a longer side above 640 px are detected on a
      copy downscaled to 640 px (faces of at least 1/8 of the longer side are found);
      images below 320 px are doubled until they reach it.

  Returns:
    ``float64`` ``(N, 4)`` boxes ``(left, top, right, bottom)`` in pixels of ``image``
    (right and bottom exclusive; a box may reach slightly past the image's edges),
    largest first. ``N`` is 0 when no face is found.

  Raises:
    ValueError: ``image`` is not ``uint8`` ``(H, W, 3)``, or ``upsample`` is negative.
    FaceModelsError: dlib cannot be loaded.
  """
  return _find_faces(image, upsample, "detect_faces", fallback=False, cnn=False).boxes


def _rectangle(box: Sequence[float], caller: str):
  values = np.asarray(box, np.float64)
  if values.shape != (4,) or not np.all(np.isfinite(values)):
    raise ValueError(f"{caller}: expected a box (left, top, right, bottom), got {box!r}")
  left, top, right, bottom = (int(round(v)) for v in values)
  if right <= left or bottom <= top:
    raise ValueError(f"{caller}: empty box {tuple(values)}")
  return _import_dlib().rectangle(left, top, right - 1, bottom - 1)


def _face_shape(image: np.ndarray, box, caller: str):
  """dlib's 68-point shape of the face in ``box`` (or the largest detected), or None."""
  if box is None:
    boxes = detect_faces(image)
    if not len(boxes):
      return None
    box = boxes[0]
  rectangle = _rectangle(box, caller)
  return _shape_predictor()(image, rectangle)


def face_landmarks(image: np.ndarray, box: Sequence[float] | None = None) -> np.ndarray | None:
  """The 68 iBUG landmarks of a face.

  Args:
    image: ``uint8`` ``(H, W, 3)`` RGB.
    box: ``(left, top, right, bottom)`` of the face, e.g. from :func:`detect_faces`;
      None: the largest face :func:`detect_faces` finds.

  Returns:
    ``float64`` ``(68, 2)`` ``(x, y)`` pixel coordinates in the iBUG 300-W order (the
    order of face-alignment's FAN), or None when ``box`` is None and no face is found.

  Raises:
    ValueError: ``image`` is not ``uint8`` ``(H, W, 3)`` or ``box`` is not a box.
    FaceModelsError: dlib or the landmark model cannot be loaded.
  """
  image = _check_image(image, "face_landmarks")
  shape = _face_shape(image, box, "face_landmarks")
  if shape is None:
    return None
  return np.array([(point.x, point.y) for point in shape.parts()], np.float64)


def identity_embedding(image: np.ndarray,
                       box: Sequence[float] | None = None) -> np.ndarray | None:
  """dlib's ResNet identity descriptor of a face.

  The face is aligned by its 68 landmarks into a 150x150 chip, as dlib does; Euclidean
  distances below about 0.6 mean the same person.

  Args:
    image: ``uint8`` ``(H, W, 3)`` RGB.
    box: ``(left, top, right, bottom)`` of the face; None: the largest face
      :func:`detect_faces` finds.

  Returns:
    ``float64`` ``(128,)``, as dlib computes it (not re-normalised), or None when ``box``
    is None and no face is found.

  Raises:
    ValueError: ``image`` is not ``uint8`` ``(H, W, 3)`` or ``box`` is not a box.
    FaceModelsError: dlib or one of the models cannot be loaded.
  """
  image = _check_image(image, "identity_embedding")
  shape = _face_shape(image, box, "identity_embedding")
  if shape is None:
    return None
  return np.asarray(_recognizer().compute_face_descriptor(image, shape), np.float64)
