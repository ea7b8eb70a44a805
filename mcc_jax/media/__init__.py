"""Reading and writing the images and videos a user hands to the model.

* :mod:`~mcc_jax.media.images`: any still image Pillow reads (JPEG, PNG, WebP, ...) as
  8-bit RGB.
* :mod:`~mcc_jax.media.videos`: any video FFmpeg decodes (mp4, mov, webm, avi, gif, ...)
  with its frame rate; H.264 mp4 writing that never leaves a partial file behind.
* :mod:`~mcc_jax.media.framing`: square crops and resizing to the model's size.

Errors a user can cause raise :class:`MediaError`, whose message names the file.
No JAX or TensorFlow is imported here.
"""

from mcc_jax import extras as _extras

_extras.require("video", "mcc_jax.media")

# pylint: disable=wrong-import-position
from mcc_jax.media.errors import MediaError
from mcc_jax.media.framing import center_square_box
from mcc_jax.media.framing import crop_and_resize
from mcc_jax.media.images import read_image
from mcc_jax.media.videos import VideoClip
from mcc_jax.media.videos import VideoInfo
from mcc_jax.media.videos import VideoWriter
from mcc_jax.media.videos import iterate_frames
from mcc_jax.media.videos import probe_video
from mcc_jax.media.videos import read_video
from mcc_jax.media.videos import write_video

__all__ = [
    "MediaError",
    "VideoClip",
    "VideoInfo",
    "VideoWriter",
    "center_square_box",
    "crop_and_resize",
    "iterate_frames",
    "probe_video",
    "read_image",
    "read_video",
    "write_video",
]
