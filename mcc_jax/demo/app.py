"""The page: a photo and a video in, the animation out, the options of ``mcc-jax animate``.

:func:`build_app` lays the page out and wires its button to
:meth:`~mcc_jax.demo.animate_handler.AnimateHandler.animate`, which is also the API
endpoint ``/animate``: its parameters are (source photo, driving video) followed by the
options, each defaulting to the page's initial value, so that

    gradio_client.Client(url).predict(handle_file(photo), {"video": handle_file(video)},
                                      api_name="/animate")

returns the result video. Elements the browser test finds have ids: ``source-photo``,
``driving-video``, ``animate-button`` and ``result-video``.
"""

from __future__ import annotations

from typing import Sequence

import gradio as gr

from mcc_jax.demo.animate_handler import AnimateHandler
from mcc_jax.demo.driving_video import driving_video_input
from mcc_jax.demo.examples import Example

API_NAME = "animate"
# Gradio sweeps the uploads and results it holds this often (seconds), deleting those
# older than this; it deletes them all when the server stops.
_CACHE_LIFETIME_S = 3600

_INTRODUCTION = """\
# Animate a photo with a video

Upload a photo of a face (the **source**) and a video of a face talking or moving (the
**driving video**), or pick an example below, then press **Animate**: the photo moves
like the video, one frame per driving frame, at the video's frame rate. Everything runs
on this machine; nothing is sent anywhere else.
"""


def build_app(handler: AnimateHandler, examples: Sequence[Example] = (), *,
              model_summary: str = "") -> gr.Blocks:
  """The demo's page (not yet launched: see :func:`mcc_jax.demo.server.launch`).

  Args:
    handler: animates the uploads.
    examples: offered below the inputs; clicking one fills the inputs.
    model_summary: a line naming the model, shown under the title.
  """
  with gr.Blocks(title="mcc-jax demo", analytics_enabled=False,
                 delete_cache=(_CACHE_LIFETIME_S, _CACHE_LIFETIME_S)) as app:
    gr.Markdown(_INTRODUCTION + (f"\nModel: `{model_summary}`" if model_summary else ""))
    with gr.Row(equal_height=True):
      source_photo = gr.Image(label="Source photo", type="filepath",
                              sources=["upload", "clipboard"], elem_id="source-photo",
                              height=320)
      driving_video = driving_video_input(label="Driving video", sources=["upload"],
                                          elem_id="driving-video", height=320)
      result_video = gr.Video(label="Result", interactive=False, elem_id="result-video",
                              autoplay=True, loop=True, buttons=["download"], height=320)
    with gr.Row():
      motion = gr.Radio(
          [("relative: animate another person", "relative"),
           ("absolute: the same person", "absolute")], value="relative", label="Motion",
          info="Relative moves the photo's keypoints by how the video's move from an "
          "anchor frame; absolute puts them where the video's are.")
      adapt_scale = gr.Checkbox(True, label="Adapt scale",
                                info="With relative motion, scale it by the size ratio "
                                "of the two faces' keypoints.")
      crop_face = gr.Checkbox(False, label="Crop face",
                              info="Crop a square around the detected face (needs a real "
                              "face) instead of the centred square.")
    with gr.Row():
      find_best_frame = gr.Checkbox(False, label="Find best frame",
                                    info="Anchor relative motion at the video frame whose "
                                    "pose is most like the photo's (else the first).")
      side_by_side = gr.Checkbox(False, label="Side by side",
                                 info="Show photo | video | result.")
      show_flow = gr.Checkbox(False, label="Show flow",
                              info="Add the motion field (colour wheel) and the "
                              "occlusion map.")
    animate_button = gr.Button("Animate", variant="primary", elem_id="animate-button")
    if examples:
      gr.Examples([[example.photo, example.video] for example in examples],
                  inputs=[source_photo, driving_video],
                  example_labels=[example.label for example in examples],
                  cache_examples=False)
    # Unprocessed inputs: the handler reads the files itself, so that a bad upload is
    # reported with its name (Gradio's own image decoding would fail first, without it).
    animate_button.click(
        handler.animate,
        inputs=[source_photo, driving_video, motion, adapt_scale, crop_face,
                find_best_frame, side_by_side, show_flow],
        outputs=result_video, api_name=API_NAME,
        api_description=("Animates a source photo with a driving video; returns the mp4. "
                         "The options default to the page's."),
        preprocess=False, concurrency_limit=1, show_progress="full")
  return app
