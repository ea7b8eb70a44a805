"""``mcc-jax crop-video`` on the sample clip and on videos without a face."""

import fractions
import re

import numpy as np
import pytest

from mcc_jax.data_pipelines.sources import sample as sample_clip
from tests import small_faces
from mcc_jax import cli
from mcc_jax import faces
from mcc_jax import media
from mcc_jax.faces import crop

SIZE = 128
FPS = fractions.Fraction(30000, 1001)


@pytest.fixture(scope="module")
def clip():
  return sample_clip.decode_clip()


@pytest.fixture(scope="module")
def detections(clip):
  # What crop-video detects: every stage, the CNN where HOG finds nothing.
  return [faces.find_faces(frame).boxes for frame in clip]


@pytest.fixture(scope="module")
def plan(clip, detections):
  """The crops the command's defaults should find (30-frame tubes, gaps of 5 bridged)."""
  return crop.plan_crops(detections, clip.shape[1:3], min_frames=30)


def test_writes_the_longest_tube_cropped_to_the_model_size(clip, detections, plan, tmp_path,
                                                           capsys):
  output = tmp_path / "face.mp4"
  code = cli.main(["crop-video", "--input", sample_clip.clip_path(), "--output", str(output),
                   "--image-size", str(SIZE)])
  assert code == 0
  out = capsys.readouterr().out
  chosen = crop.longest_crop(plan)
  assert chosen.num_frames >= 60  # the face is found through most of the clip
  assert f"{len(plan)} face tube(s)" in out
  summary = re.search(r"faces found in (\d+) of 120 frames \(hog (\d+), "
                      r"hog-full-resolution 0, cnn (\d+)\)", out)
  assert summary and int(summary[1]) == int(summary[2]) + int(summary[3]), out
  assert int(summary[1]) == sum(bool(len(boxes)) for boxes in detections)
  if len(plan) > 1:
    assert f"writing the longest of the {len(plan)} tubes" in out
  assert f"wrote {output}: {chosen.num_frames} frames of {SIZE}x{SIZE}" in out

  written = media.read_video(output)
  assert written.frames.shape == (chosen.num_frames, SIZE, SIZE, 3)
  assert written.fps == FPS
  # The frames of the tube, cropped to the square around the union of its detections.
  union = np.concatenate(detections[chosen.start:chosen.stop])
  box = crop.square_face_box((*union[:, :2].min(0), *union[:, 2:].max(0)), clip.shape[1:3])
  assert box == chosen.box and box[2] - box[0] == box[3] - box[1]
  expected = np.stack([media.crop_and_resize(clip[i], box, SIZE)
                       for i in (chosen.start, chosen.stop - 1)])
  errors = np.abs(written.frames[[0, -1]].astype(float) - expected).mean(axis=(1, 2, 3))
  centred = np.stack([media.crop_and_resize(clip[i], None, SIZE)
                      for i in (chosen.start, chosen.stop - 1)])
  assert errors.max() < 4, errors
  assert errors.max() < np.abs(written.frames[[0, -1]].astype(float) - centred).mean() - 5
  # The face fills the middle of the crop.
  face = faces.detect_faces(written.frames[0])[0]
  assert abs((face[0] + face[2]) / 2 - SIZE / 2) < SIZE / 5
  assert face[2] - face[0] > SIZE / 3


def test_prints_one_ffmpeg_command_per_tube(clip, plan, capsys):
  path = sample_clip.clip_path()
  assert cli.main(["crop-video", "--input", path, "--print-commands"]) == 0
  commands = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith("ffmpeg ")]
  expected = [crop.ffmpeg_command(path, *face_crop.time_span(FPS), face_crop.box, 256,
                                  f"carphone_pristine_crop{number}.mp4",
                                  frame_shape=clip.shape[1:3])
              for number, face_crop in enumerate(plan)]
  assert commands == expected
  first = re.search(r"-ss (\S+) -t (\S+) .* crop=(\d+):(\d+):(\d+):(\d+),scale=256:256",
                    commands[0])
  start_s, duration_s = (float(v) for v in first.groups()[:2])
  width, height, left, top = (int(v) for v in first.groups()[2:])
  assert width == height and (left, top, left + width, top + height) == plan[0].box
  assert start_s == pytest.approx(max(0, plan[0].start - 0.5) / float(FPS), abs=1e-6)
  assert start_s + duration_s == pytest.approx((plan[0].stop - 0.5) / float(FPS), abs=1e-6)


def test_missing_input_is_an_error_naming_it(tmp_path):
  missing = tmp_path / "missing.mp4"
  output = tmp_path / "out.mp4"
  with pytest.raises(SystemExit) as error:
    cli.main(["crop-video", "--input", str(missing), "--output", str(output)])
  assert str(missing) in str(error.value.code) and "no such file" in str(error.value.code)
  assert not output.exists()


def test_unreadable_input_is_an_error_naming_it(tmp_path):
  broken = tmp_path / "broken.mp4"
  broken.write_bytes(b"not a video at all")
  with pytest.raises(SystemExit) as error:
    cli.main(["crop-video", "--input", str(broken), "--print-commands"])
  assert str(broken) in str(error.value.code)


def test_missing_output_directory_is_an_error(tmp_path):
  output = tmp_path / "no" / "such" / "dir" / "out.mp4"
  with pytest.raises(SystemExit) as error:
    cli.main(["crop-video", "--input", sample_clip.clip_path(), "--output", str(output)])
  assert "does not exist" in str(error.value.code) and str(output) in str(error.value.code)


def test_a_video_without_a_face_leaves_nothing_behind(tmp_path):
  grey = tmp_path / "grey.mp4"
  media.write_video(grey, np.full((8, 96, 96, 3), 128, np.uint8), fps=25)
  output = tmp_path / "out.mp4"
  with pytest.raises(SystemExit) as error:
    cli.main(["crop-video", "--input", str(grey), "--output", str(output)])
  message = str(error.value.code)
  assert str(grey) in message and "no face found in any of its 8 frames" in message
  assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.mp4"]


def test_tubes_shorter_than_min_frames_are_an_error(clip, tmp_path):
  short = tmp_path / "short.mp4"
  media.write_video(short, clip[:12], fps=FPS)
  output = tmp_path / "out.mp4"
  with pytest.raises(SystemExit) as error:
    cli.main(["crop-video", "--input", str(short), "--output", str(output)])
  assert "fewer than --min-frames 30" in str(error.value.code)
  assert not output.exists()
  # Allowed shorter tubes, the same video is cropped.
  assert cli.main(["crop-video", "--input", str(short), "--output", str(output),
                   "--min-frames", "10", "--image-size", "64"]) == 0
  assert media.read_video(output).frames.shape == (12, 64, 64, 3)


@pytest.mark.parametrize("flag,value", [("--image-size", "0"), ("--increase", "-1"),
                                        ("--min-frames", "0"), ("--iou", "1.5"),
                                        ("--max-gap", "-2")])
def test_invalid_numbers_are_rejected(flag, value, tmp_path):
  with pytest.raises(SystemExit) as error:
    cli.main(["crop-video", "--input", sample_clip.clip_path(), "--print-commands", flag,
              value])
  assert flag in str(error.value.code)


def test_output_and_print_commands_are_exclusive(capsys):
  with pytest.raises(SystemExit):
    cli.main(["crop-video", "--input", sample_clip.clip_path(), "--output", "a.mp4",
              "--print-commands"])
  assert "not allowed with" in capsys.readouterr().err


def test_finds_a_small_face_in_a_large_frame_and_names_the_detector(clip, tmp_path, capsys):
  # Six 1080x720 frames, each with the sample's head pasted so the face is about 53 px:
  # below HOG's 80 px on the 640-px copy, found at full resolution.
  top, left, side = sample_clip.FACE_BOX
  head_side, (y0, x0) = small_faces.HEAD_SIDE, small_faces.PASTE_AT
  frames = small_faces.small_face_frames(clip, 6)
  video = tmp_path / "portrait.mp4"
  media.write_video(video, frames, fps=25)
  output = tmp_path / "face.mp4"
  assert cli.main(["crop-video", "--input", str(video), "--output", str(output),
                   "--min-frames", "3", "--image-size", "64"]) == 0
  out = capsys.readouterr().out
  assert "faces found in 6 of 6 frames (hog 0, hog-full-resolution 6, cnn 0)" in out
  box = [int(v) for v in re.search(r"crop box \((\d+), (\d+), (\d+), (\d+)\)", out).groups()]
  # The square lies around the pasted face, in the full frame's pixels.
  x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
  face_x, face_y = x0 + (91 - left) * head_side / side, y0 + (68 - top) * head_side / side
  assert abs(x - face_x) < 12 and abs(y - face_y) < 12, (box, face_x, face_y)
  assert 45 <= box[2] - box[0] <= 120, box
  assert media.read_video(output).frames.shape == (6, 64, 64, 3)


def test_detector_summary_counts_every_detector():
  from mcc_jax.commands import crop_video  # pylint: disable=import-outside-toplevel

  assert (crop_video.detector_summary({"cnn": 94, "hog": 3}, 103) ==
          "faces found in 97 of 103 frames (hog 3, hog-full-resolution 0, cnn 94)")
