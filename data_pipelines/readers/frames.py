"""Still images to 8-bit RGB frames: decoding, colour-format conversion, resizing.

Every reader funnels its pixels through `as_rgb8` so that grayscale, palette, RGBA and
16-bit inputs all become ``uint8`` arrays of shape ``(H, W, 3)``; alpha is dropped, as
FOMM's ``FramesDataset`` does. Frames whose size differs from the configured one are
resized to a square with an anti-aliased bilinear filter (non-square frames are
stretched, as in FOMM, which resizes to ``frame_shape`` without cropping).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from mcc_jax.data_pipelines.bad_files import BadVideoError

# Extensions of single images: frames inside a frame folder, or whole strips.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# Pillow modes holding more than 8 bits per sample (16-bit PNGs load as these).
_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

# Errors Pillow raises for files that are not (complete) images.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError,
                  Image.DecompressionBombError)


def has_image_extension(path: str) -> bool:
  """Returns whether a file name has an image extension.

  Args:
    path: a file name or path.

  Returns:
    True if it ends in one of `IMAGE_EXTENSIONS` (case-insensitive).
  """
  return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def as_rgb8(pixels: np.ndarray) -> np.ndarray:
  """Converts an image array of any common layout to 8-bit RGB.

  Args:
    pixels: ``(H, W)`` grayscale, ``(H, W, 1)``, ``(H, W, 2)`` grayscale + alpha,
      ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA; dtype ``uint8``, ``uint16`` (full 16-bit
      range), ``bool`` or floating point in [0, 1].

  Returns:
    ``uint8`` array of shape ``(H, W, 3)``.

  Raises:
    ValueError: for any other shape or dtype.
  """
  pixels = np.asarray(pixels)
  if pixels.ndim == 2:
    pixels = pixels[..., None]
  if pixels.ndim != 3 or pixels.shape[-1] not in (1, 2, 3, 4):
    raise ValueError(f"expected an (H, W[, 1-4]) image, got shape {pixels.shape}")
  # One or two channels are gray (+ alpha); three or four are RGB (+ alpha).
  colour = pixels[..., :1] if pixels.shape[-1] <= 2 else pixels[..., :3]
  if colour.dtype == np.uint8:
    pass
  elif colour.dtype == np.uint16:
    # 65535 / 255 = 257 exactly, so this maps full white to full white.
    colour = np.round(colour.astype(np.float32) / 257.0).astype(np.uint8)
  elif colour.dtype == np.bool_:
    colour = colour.astype(np.uint8) * 255
  elif np.issubdtype(colour.dtype, np.floating):
    colour = np.round(np.clip(colour, 0.0, 1.0) * 255.0).astype(np.uint8)
  else:
    raise ValueError(f"unsupported pixel dtype {colour.dtype}")
  if colour.shape[-1] == 1:
    colour = np.repeat(colour, 3, axis=-1)
  return np.ascontiguousarray(colour)


def pil_to_rgb8(image: Image.Image) -> np.ndarray:
  """Converts a decoded Pillow image to 8-bit RGB.

  Args:
    image: any Pillow image; its pixels must already be loaded.

  Returns:
    ``uint8`` array of shape ``(H, W, 3)``.
  """
  if image.mode in _WIDE_GRAY_MODES:
    gray = np.asarray(image)
    # Mode "I" holds 32-bit integers; 16-bit grayscale PNGs use the 0..65535 range.
    return as_rgb8(np.clip(gray, 0, 65535).astype(np.uint16))
  if image.mode == "F":
    return as_rgb8(np.asarray(image, dtype=np.float32))
  if image.mode != "RGB":
    # Going through RGBA keeps palette transparency from turning into artefacts;
    # the alpha channel is then dropped.
    image = image.convert("RGBA")
  return as_rgb8(np.asarray(image))


def decode_image_file(path: str) -> np.ndarray:
  """Reads one image file as 8-bit RGB.

  Args:
    path: a PNG/JPEG/BMP/WebP file.

  Returns:
    ``uint8`` array of shape ``(H, W, 3)``.

  Raises:
    BadVideoError: if the file cannot be read or decoded completely.
  """
  try:
    with Image.open(path) as image:
      image.load()
      return pil_to_rgb8(image)
  except FileNotFoundError as error:
    raise BadVideoError(path, f"file not found ({error.strerror})") from error
  except _DECODE_ERRORS as error:
    raise BadVideoError(path, f"cannot decode image ({error})") from error


def image_file_size(path: str) -> tuple[int, int]:
  """Reads only the header of an image file.

  Args:
    path: a PNG/JPEG/BMP/WebP file.

  Returns:
    ``(height, width)`` in pixels.

  Raises:
    BadVideoError: if the header cannot be read.
  """
  try:
    with Image.open(path) as image:
      width, height = image.size
  except _DECODE_ERRORS as error:
    raise BadVideoError(path, f"cannot read image header ({error})") from error
  return height, width


def resize_frame(frame: np.ndarray, image_size: int) -> np.ndarray:
  """Resizes a frame to ``image_size x image_size`` unless it already is.

  Args:
    frame: ``uint8`` array of shape ``(H, W, 3)``.
    image_size: output side in pixels.

  Returns:
    ``uint8`` array of shape ``(image_size, image_size, 3)``.
  """
  if frame.shape[:2] == (image_size, image_size):
    return frame
  # Pillow's bilinear filter widens its support when shrinking, i.e. anti-aliases.
  resized = Image.fromarray(frame).resize((image_size, image_size), Image.BILINEAR)
  return np.asarray(resized)
