"""Still images as 8-bit RGB arrays."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from mcc_jax.media.errors import MediaError


def _to_rgb8(image: Image.Image) -> np.ndarray:
  if image.mode in ("I", "I;16", "I;16B", "I;16L"):
    # 16-bit grayscale: 0..65535 -> 0..255 (65535 / 257 = 255).
    gray = np.clip(np.asarray(image, np.float64), 0, 65535) / 257.0
    return np.repeat(np.round(gray).astype(np.uint8)[..., None], 3, axis=-1)
  if image.mode == "F":
    gray = np.round(np.clip(np.asarray(image, np.float64), 0.0, 1.0) * 255.0)
    return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=-1)
  if image.mode not in ("RGB", "RGBA"):
    # Through RGBA, so that palette transparency does not become artefacts.
    image = image.convert("RGBA")
  return np.ascontiguousarray(np.asarray(image)[..., :3])


def read_image(path: str | os.PathLike) -> np.ndarray:
  """Reads a still image (any format Pillow decodes: JPEG, PNG, WebP, BMP, TIFF, ...).

  The first frame of an animated image is used; EXIF orientation is applied, as a
  phone's photo viewer does; alpha is dropped.

  Args:
    path: the image file.

  Returns:
    ``uint8`` array of shape ``(H, W, 3)``.

  Raises:
    MediaError: the file is missing, is not an image, or cannot be decoded completely.
  """
  from PIL import ImageOps  # pylint: disable=import-outside-toplevel

  if not os.path.exists(path):
    raise MediaError(path, "no such file (expected an image: JPEG, PNG, WebP, ...)")
  if os.path.isdir(path):
    raise MediaError(path, "is a directory (expected an image file: JPEG, PNG, WebP, ...)")
  try:
    with Image.open(path) as image:
      image.load()
      image = ImageOps.exif_transpose(image)
      return _to_rgb8(image)
  except UnidentifiedImageError as error:
    raise MediaError(path, "is not an image Pillow can read (expected JPEG, PNG, WebP, "
                           "BMP, TIFF, ...)") from error
  except (OSError, ValueError, SyntaxError) as error:
    raise MediaError(path, f"cannot decode the image ({error})") from error
