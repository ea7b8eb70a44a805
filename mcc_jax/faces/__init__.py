"""Faces: offline detection, landmarks and identity with dlib, and face-centred crops.

* :mod:`~mcc_jax.faces.dlib_models`: :func:`detect_faces` (HOG, then dlib's CNN detector
  where HOG finds nothing), :func:`find_faces` (the same, saying which detector found
  the faces), :func:`face_landmarks` (68 iBUG points) and :func:`identity_embedding`
  (128-D), with models loaded once, on first use, from the ``face_recognition_models``
  package (no download).
* :mod:`~mcc_jax.faces.tracking`: per-frame detections joined into tubes (pure numpy).
* :mod:`~mcc_jax.faces.crop`: the stable square crop box of a tube, for
  ``mcc-jax crop-video`` and ``mcc-jax animate --crop face``.

dlib is imported only when a model is first needed; neither JAX nor TensorFlow is
imported here.
"""

from mcc_jax.faces.dlib_models import DETECTORS
from mcc_jax.faces.dlib_models import FaceDetections
from mcc_jax.faces.dlib_models import FaceModelsError
from mcc_jax.faces.dlib_models import detect_faces
from mcc_jax.faces.dlib_models import face_landmarks
from mcc_jax.faces.dlib_models import find_faces
from mcc_jax.faces.dlib_models import identity_embedding

__all__ = [
    "DETECTORS",
    "FaceDetections",
    "FaceModelsError",
    "detect_faces",
    "face_landmarks",
    "find_faces",
    "identity_embedding",
]
