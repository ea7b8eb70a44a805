"""The driving-video input: Gradio's video upload, also accepting Gradio 5's payload form.

Gradio 6 sends and expects a video as one file (``handle_file(video)`` from
``gradio_client``); Gradio 4 and 5 wrapped it as ``{"video": file, "subtitles": ...}``,
the form scripts written for them (and this project's documentation) use:

    client.predict(handle_file(photo), {"video": handle_file(video)}, api_name="/animate")

:func:`driving_video_input` is a ``gr.Video`` (the same component in the page) whose
payload model accepts either form, so that both calls work.
"""

from __future__ import annotations

from typing import Any, Union

import gradio as gr
import pydantic
from gradio.data_classes import FileData
from gradio.data_classes import GradioRootModel


class WrappedVideoFile(pydantic.BaseModel):
  """Gradio 4 and 5's video payload: the file, and optional subtitles."""

  video: FileData
  subtitles: FileData | None = None


class DrivingVideoData(GradioRootModel):
  """A video upload: a file (Gradio 6), or a file wrapped as ``{"video": file}``."""

  root: Union[FileData, WrappedVideoFile]


def video_file(payload: Any) -> Any:
  """The video file of a payload of either form (a model or its ``model_dump()``)."""
  if isinstance(payload, DrivingVideoData):
    payload = payload.root
  if isinstance(payload, WrappedVideoFile):
    return payload.video
  if isinstance(payload, dict) and "video" in payload:
    return payload["video"]
  return payload


def driving_video_input(**video_options) -> gr.Video:
  """A ``gr.Video`` upload whose payload may take either form.

  The page's event reads it unprocessed (``preprocess=False``): only the payload model,
  which validates what arrives and describes it in the API's schema, changes. (An
  instance attribute, not a subclass: Gradio writes a ``.pyi`` stub next to the source
  of every Component subclass it sees.)

  Args:
    **video_options: as ``gr.Video``.
  """
  video = gr.Video(**video_options)
  video.data_model = DrivingVideoData
  return video
