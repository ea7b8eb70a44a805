"""The page's one action: animate the uploaded photo with the uploaded video.

:class:`AnimateHandler` wraps :func:`mcc_jax.inference.animate_video` (the whole
pipeline of ``mcc-jax animate``) for Gradio: it takes the uploads as Gradio hands them
over without preprocessing (the file's path in Gradio's upload cache and the name it
had on the user's machine), maps the page's options to
:class:`~mcc_jax.inference.AnimationOptions`, reports progress through the pipeline's
tqdm bars, and turns what a user can get wrong (not an image, a corrupt video, no face
with the face crop) into a :class:`gradio.Error` whose message names the upload, not
the server's temporary path.
"""

from __future__ import annotations

import html
import os
import pathlib
import re
import tempfile
from typing import Any, Mapping

import gradio as gr

from mcc_jax import extras
from mcc_jax import media
from mcc_jax.demo.driving_video import video_file
from mcc_jax.inference import video_animation

MOTIONS = ("relative", "absolute")


class UploadError(ValueError):
  """An upload is missing or is not what the page expects."""


def animation_options(motion: str = "relative", adapt_scale: bool = True,
                      crop_face: bool = False, find_best_frame: bool = False,
                      side_by_side: bool = False, show_flow: bool = False, *,
                      batch_size: int = 8,
                      max_frames: int | None = None) -> video_animation.AnimationOptions:
  """The page's options as :class:`~mcc_jax.inference.AnimationOptions`.

  Args:
    motion: "relative" (animate another person) or "absolute" (the same person).
    adapt_scale: with relative motion, scale it by the keypoint hulls' size ratio.
    crop_face: crop a stable square around the detected face (else the centred square).
    find_best_frame: anchor relative motion at the driving frame most like the photo.
    side_by_side: write photo | driving | result.
    show_flow: add the final flow and the occlusion overlay.
    batch_size: frames per compiled call (the server's, not the page's).
    max_frames: use only the first N driving frames (the server's bound), or None.

  Raises:
    UploadError: an unknown motion.
  """
  if motion not in MOTIONS:
    raise UploadError(f"motion must be one of {', '.join(MOTIONS)}, got {motion!r}")
  return video_animation.AnimationOptions(
      relative=motion == "relative", adapt_scale=bool(adapt_scale),
      find_best_frame=bool(find_best_frame), crop="face" if crop_face else "center",
      side_by_side=bool(side_by_side), show_flow=bool(show_flow), batch_size=batch_size,
      max_frames=max_frames)


class Upload:
  """A file the page received: where the server holds it and the name the user gave it."""

  def __init__(self, payload: Any, what: str):
    """Reads an upload as Gradio hands it over unprocessed.

    Args:
      payload: the upload's file data (a mapping with ``path`` and ``orig_name``),
        that of a video in either of the forms of
        :func:`~mcc_jax.demo.driving_video.driving_video_input`, or a plain path.
      what: what the upload is, for messages ("source photo").

    Raises:
      UploadError: nothing was uploaded.
    """
    payload = video_file(payload)
    if isinstance(payload, Mapping):
      path, name = payload.get("path"), payload.get("orig_name")
    else:
      path, name = payload, None
    if not path:
      raise UploadError(f"no {what}: upload one (or pick an example)")
    self.path = pathlib.Path(path)
    self.name = _shown_name(name or self.path.name)
    self.what = what

  @property
  def described(self) -> str:
    """``source photo "face.jpg"``."""
    return f'{self.what} "{self.name}"'


def _shown_name(name: str) -> str:
  """A file name as the page shows it (messages are HTML there): no markup, not too long."""
  name = os.path.basename(str(name))
  if len(name) > 80:
    name = name[:60] + "..." + name[-17:]
  return html.escape(name, quote=False)


def _safe_stem(name: str) -> str:
  """A file name stem for the result (letters, digits, ``-_.``)."""
  stem = re.sub(r"[^A-Za-z0-9._-]+", "_", pathlib.Path(name).stem).strip("._")
  return stem[:40] or "upload"


class AnimateHandler:
  """Animates uploads with one model; its compiled programs stay warm between requests.

  Requests run one at a time (the page's event has a concurrency limit of 1).
  """

  def __init__(self, animator, results_directory: os.PathLike, *, batch_size: int = 8,
               max_frames: int | None = None, log=print):
    """Keeps the animator and where results go.

    Args:
      animator: a :class:`~mcc_jax.inference.Animator` (or an object with its
        interface, see :func:`~mcc_jax.inference.animate_video`).
      results_directory: each result is written into its own folder here.
      batch_size: frames per compiled call.
      max_frames: use only the first N frames of each driving video (None: all).
      log: receives one line per pipeline step, on the server side.
    """
    self.animator = animator
    self.results_directory = pathlib.Path(results_directory)
    self.batch_size = batch_size
    self.max_frames = max_frames
    self.log = log

  def animate(self, source_photo, driving_video, motion: str = "relative",
              adapt_scale: bool = True, crop_face: bool = False,
              find_best_frame: bool = False, side_by_side: bool = False,
              show_flow: bool = False, progress=gr.Progress(track_tqdm=True)) -> str:
    """The ``/animate`` endpoint: the path of the result mp4.

    The parameters are the page's inputs (their names are the API's parameter names);
    ``progress`` is Gradio's, following the pipeline's tqdm bars.

    Raises:
      gradio.Error: a missing or bad upload, or no face with the face crop; the
        message names the upload.
    """
    try:
      options = animation_options(motion, adapt_scale, crop_face, find_best_frame,
                                  side_by_side, show_flow, batch_size=self.batch_size,
                                  max_frames=self.max_frames)
      source = Upload(source_photo, "source photo")
      driving = Upload(driving_video, "driving video")
    except UploadError as error:
      raise gr.Error(_capitalised(str(error)), print_exception=False) from error
    self.results_directory.mkdir(parents=True, exist_ok=True)
    output = (pathlib.Path(tempfile.mkdtemp(dir=self.results_directory))
              / f"{_safe_stem(source.name)}_by_{_safe_stem(driving.name)}.mp4")

    def describe(message: str) -> str:
      """A message with the server's paths replaced by what the user knows them as."""
      for path, shown in ((source.path, source.described), (driving.path, driving.described),
                          (output, f'result "{output.name}"')):
        message = message.replace(str(path), shown)
      return message

    def log(line: str) -> None:
      self.log(f"mcc-jax demo: {line}")
      gr.Info(describe(line), duration=8)

    progress(0, desc="starting")
    try:
      video_animation.animate_video(self.animator, source.path, driving.path, output,
                                    options, log=log)
    except (media.MediaError, video_animation.AnimationError,
            extras.MissingExtraError) as error:
      raise gr.Error(_capitalised(describe(str(error))), print_exception=False) from error
    return str(output)


def _capitalised(message: str) -> str:
  return message[:1].upper() + message[1:]
