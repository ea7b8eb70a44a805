"""The page's ``/animate`` endpoint through gradio_client: what ``mcc-jax animate`` makes.

Each result is compared frame for frame with :func:`mcc_jax.inference.animate_video`
run directly with the options the call names, and each option is checked to change the
result, so that an option ignored, inverted or fed from the wrong input fails here.
"""

import pathlib

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from mcc_jax import media
from mcc_jax.inference import AnimationOptions
from mcc_jax.inference import animate_video

SIZE = 64  # configs/tiny.py
# Host names that stay on this machine.
LOCAL_NAMES = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}
BATCH_SIZE = 4  # the server's (conftest.py)


@pytest.fixture(scope="module", name="direct")
def _direct(animator, demo_inputs, tmp_path_factory):
  """animate_video run directly on the test inputs: options -> decoded frames (cached)."""
  root = tmp_path_factory.mktemp("direct_results")
  results = {}

  def frames_for(**options):
    key = tuple(sorted(options.items()))
    if key not in results:
      output = root / f"result{len(results)}.mp4"
      animate_video(animator, demo_inputs.photo, demo_inputs.driving, output,
                    AnimationOptions(batch_size=BATCH_SIZE, **options), log=lambda _: None)
      results[key] = media.read_video(output)
    return results[key].frames

  return frames_for


def _frames(result):
  clip = media.read_video(pathlib.Path(result))
  return clip.frames, clip.fps


def test_animate_call_returns_one_frame_per_driving_frame_at_the_models_size(
    client, demo_inputs, direct):
  # The call of docs/demo.md, with the video wrapped as Gradio 4 and 5 send it.
  result = client.predict(handle_file(str(demo_inputs.photo)),
                          {"video": handle_file(str(demo_inputs.driving))},
                          api_name="/animate")
  frames, fps = _frames(result)
  assert frames.shape == (demo_inputs.driving_frames, SIZE, SIZE, 3)
  assert fps == media.probe_video(demo_inputs.driving).fps
  assert pathlib.Path(result).name == "head_by_talking.mp4"
  # The photo is the source and the video drives it (not the other way round), with
  # the default options: relative motion, adapted scale, centred crop.
  np.testing.assert_array_equal(frames, direct())


def test_options_change_the_result_as_animate_does(client, demo_inputs, direct):
  photo, video = handle_file(str(demo_inputs.photo)), handle_file(str(demo_inputs.driving))
  frames = demo_inputs.driving_frames
  # Gradio 6's form of a video: the file itself. Photo | video | result | flow | occlusion.
  panels, _ = _frames(client.predict(photo, video, motion="absolute", side_by_side=True,
                                     show_flow=True, api_name="/animate"))
  assert panels.shape == (frames, SIZE, 5 * SIZE, 3)
  np.testing.assert_array_equal(panels,
                                direct(relative=False, side_by_side=True, show_flow=True))
  result_column = panels[:, :, 2 * SIZE:3 * SIZE].astype(int)
  assert np.abs(result_column - direct()).mean() > 2  # Absolute is not relative.
  # The options of relative motion; each changes the result on these inputs.
  anchored, _ = _frames(client.predict(photo, video, adapt_scale=False, find_best_frame=True,
                                       api_name="/animate"))
  assert anchored.shape == (frames, SIZE, SIZE, 3)
  np.testing.assert_array_equal(anchored, direct(adapt_scale=False, find_best_frame=True))
  assert not np.array_equal(anchored, direct(find_best_frame=True))
  assert not np.array_equal(anchored, direct(adapt_scale=False))


def test_api_parameters_are_the_pages_inputs_with_their_defaults(client):
  parameters = client.view_api(print_info=False, return_format="dict")[
      "named_endpoints"]["/animate"]["parameters"]
  described = [(p["parameter_name"], p["label"], p["parameter_has_default"],
                p["parameter_default"]) for p in parameters]
  assert described == [
      ("source_photo", "Source photo", False, None),
      ("driving_video", "Driving video", False, None),
      ("motion", "Motion", True, "relative"),
      ("adapt_scale", "Adapt scale", True, True),
      ("crop_face", "Crop face", True, False),
      ("find_best_frame", "Find best frame", True, False),
      ("side_by_side", "Side by side", True, False),
      ("show_flow", "Show flow", True, False),
  ]


@pytest.mark.parametrize("photo, video, expected", [
    ("not_an_image", "driving",
     'Source photo "notes.txt": is not an image Pillow can read'),
    ("photo", "corrupt_video", 'Driving video "broken.mp4": is not a video FFmpeg can open'),
    # The two uploads swapped.
    ("driving", "photo", 'Source photo "talking.mp4": is not an image Pillow can read'),
])
def test_bad_upload_is_reported_by_name(client, demo_inputs, photo, video, expected):
  with pytest.raises(AppError) as raised:
    client.predict(handle_file(str(getattr(demo_inputs, photo))),
                   handle_file(str(getattr(demo_inputs, video))), api_name="/animate")
  message = str(raised.value)
  assert expected in message
  assert "/gradio/" not in message and "Traceback" not in message  # No server paths.


def test_face_crop_without_a_face_is_reported(client, demo_inputs):
  with pytest.raises(AppError, match='Source photo "grey.png": no face found for the face '
                                     'crop; use the center crop'):
    client.predict(handle_file(str(demo_inputs.grey_photo)),
                   handle_file(str(demo_inputs.driving)), crop_face=True,
                   api_name="/animate")


def test_missing_video_is_reported(client, demo_inputs):
  with pytest.raises(AppError, match="No driving video: upload one"):
    client.predict(handle_file(str(demo_inputs.photo)), None, api_name="/animate")


def test_examples_are_written_and_offered(demo_server):
  labels = [example.label for example in demo_server.examples]
  assert labels[0] == "Procedural head, moved by another procedural head"
  for example in demo_server.examples:
    assert media.read_image(example.photo).shape[2] == 3
    assert media.probe_video(example.video).source_size[0] > 0
  config = demo_server.app.get_config_file()
  dataset = [c for c in config["components"] if c["type"] == "dataset"]
  assert len(dataset) == 1 and dataset[0]["props"]["sample_labels"] == labels


def test_server_looks_up_no_outside_host(client, name_lookups):  # pylint: disable=unused-argument
  # Every connection starts with a name lookup: analytics or a version check would
  # look up api.gradio.app, a web font fonts.googleapis.com.
  assert set(name_lookups) <= LOCAL_NAMES, set(name_lookups) - LOCAL_NAMES
