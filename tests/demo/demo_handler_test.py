"""The page's options and uploads as the handler reads them (no server, no model)."""

import pathlib

import pytest

from mcc_jax.demo import animate_handler
from mcc_jax.demo.animate_handler import Upload
from mcc_jax.demo.animate_handler import UploadError
from mcc_jax.demo.animate_handler import animation_options
from mcc_jax.inference import AnimationOptions


def test_defaults_are_those_of_mcc_jax_animate():
  assert animation_options() == AnimationOptions()


@pytest.mark.parametrize("page, expected", [
    ({"motion": "relative"}, {"relative": True}),
    ({"motion": "absolute"}, {"relative": False}),
    ({"adapt_scale": False}, {"adapt_scale": False}),
    ({"crop_face": True}, {"crop": "face"}),
    ({"find_best_frame": True}, {"find_best_frame": True}),
    ({"side_by_side": True}, {"side_by_side": True}),
    ({"show_flow": True}, {"show_flow": True}),
])
def test_each_page_option_sets_its_animation_option(page, expected):
  assert animation_options(**page) == AnimationOptions(**expected)


def test_server_bounds_are_kept():
  options = animation_options(batch_size=3, max_frames=20)
  assert (options.batch_size, options.max_frames) == (3, 20)


def test_unknown_motion_is_refused():
  with pytest.raises(UploadError, match="motion must be one of relative, absolute"):
    animation_options(motion="sideways")


def test_uploads_of_either_video_form_keep_their_names(tmp_path):
  file_data = {"path": str(tmp_path / "abc" / "clip.mp4"), "orig_name": "My clip.mp4",
               "meta": {"_type": "gradio.FileData"}}
  for payload in (file_data, {"video": file_data, "subtitles": None}):
    upload = Upload(payload, "driving video")
    assert upload.path == tmp_path / "abc" / "clip.mp4"
    assert upload.described == 'driving video "My clip.mp4"'


def test_upload_names_are_shown_as_text_not_markup():
  upload = Upload({"path": "/tmp/x/a.png", "orig_name": "<img src=x onerror=alert(1)>.png"},
                  "source photo")
  assert "<" not in upload.name and "&lt;img" in upload.name


def test_missing_upload_is_named():
  with pytest.raises(UploadError, match="no source photo: upload one"):
    Upload(None, "source photo")


def test_result_names_are_file_name_safe():
  safe_stem = animate_handler._safe_stem  # pylint: disable=protected-access
  assert safe_stem("my photo (1).JPG") == "my_photo_1"
  assert safe_stem("...") == "upload"


def test_building_the_page_writes_nothing_into_the_package():
  # Gradio writes a .pyi stub next to the source of any Component subclass it sees.
  from mcc_jax import demo  # pylint: disable=import-outside-toplevel

  demo.build_app(demo.AnimateHandler(None, "unused"))
  assert not list(pathlib.Path(demo.__file__).parent.glob("*.pyi"))
