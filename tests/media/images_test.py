"""Still images of every common format as 8-bit RGB."""

import numpy as np
import pytest
from PIL import Image

from mcc_jax import media


@pytest.fixture(name="picture")
def _picture():
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix,lossless", [(".png", True), (".webp", False), (".jpg", False),
                                             (".bmp", True)])
def test_formats(tmp_path, picture, suffix, lossless):
  path = tmp_path / f"picture{suffix}"
  Image.fromarray(picture).save(path, **({"lossless": True} if suffix == ".webp" else {}))
  image = media.read_image(path)
  assert image.shape == (24, 40, 3) and image.dtype == np.uint8
  if lossless or suffix == ".webp":
    np.testing.assert_array_equal(image, picture)
  else:
    with Image.open(path) as decoded:
      np.testing.assert_array_equal(image, np.asarray(decoded.convert("RGB")))


def test_alpha_grey_and_16_bit(tmp_path, picture):
  rgba = np.concatenate([picture, np.full((24, 40, 1), 7, np.uint8)], axis=-1)
  Image.fromarray(rgba).save(tmp_path / "rgba.png")
  np.testing.assert_array_equal(media.read_image(tmp_path / "rgba.png"), picture)
  grey = np.arange(24 * 40, dtype=np.uint16).reshape(24, 40) * 60
  Image.fromarray(grey).save(tmp_path / "grey16.png")
  image = media.read_image(tmp_path / "grey16.png")
  np.testing.assert_array_equal(image[..., 1], np.round(grey / 257.0).astype(np.uint8))


def test_exif_orientation_is_applied(tmp_path, picture):
  path = tmp_path / "rotated.jpg"
  exif = Image.Exif()
  exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
  Image.fromarray(picture).save(path, exif=exif, quality=100)
  assert media.read_image(path).shape == (40, 24, 3)


def test_errors_name_the_file(tmp_path):
  with pytest.raises(media.MediaError, match="nothing.png: no such file"):
    media.read_image(tmp_path / "nothing.png")
  text = tmp_path / "notes.jpg"
  text.write_text("not a picture")
  with pytest.raises(media.MediaError, match="notes.jpg: is not an image"):
    media.read_image(text)
  truncated = tmp_path / "truncated.png"
  Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 9).save(truncated)
  truncated.write_bytes(truncated.read_bytes()[:60])
  with pytest.raises(media.MediaError, match="truncated.png"):
    media.read_image(truncated)
