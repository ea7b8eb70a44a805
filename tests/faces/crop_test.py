"""Square face boxes, crop plans and ffmpeg commands."""

import fractions
import shlex
import subprocess

import numpy as np
import pytest

from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax import faces
from mcc_jax import media
from mcc_jax.faces import crop
from mcc_jax.faces import tracking

FPS = fractions.Fraction(30000, 1001)


@pytest.fixture(scope="module")
def clip():
  return sample_clip.decode_clip()


def _recipe_box(box, increase=0.1):
  """The video-preprocessing recipe's enlarged box, before it is clamped to the frame."""
  left, top, right, bottom = box
  width, height = right - left, bottom - top
  width_increase = max(increase, ((1 + 2 * increase) * height - width) / (2 * width))
  height_increase = max(increase, ((1 + 2 * increase) * width - height) / (2 * height))
  return (left - width_increase * width, top - height_increase * height,
          right + width_increase * width, bottom + height_increase * height)


def _contains(outer, inner):
  return (outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and
          outer[3] >= inner[3])


def test_square_box_by_hand():
  # 60x70 face in a 640x480 frame: side round(1.2 * 70) = 84, centred on (130, 115).
  assert crop.square_face_box((100, 80, 160, 150), (480, 640)) == (88, 73, 172, 157)
  assert crop.square_face_box((100, 80, 160, 150), (480, 640, 3), increase=0.0) == (
      95, 80, 165, 150)


def test_square_box_equals_the_recipes_box_away_from_the_edges():
  rng = np.random.default_rng(0)
  for _ in range(50):
    left, top = rng.uniform(150, 250, 2)
    width, height = rng.uniform(40, 120, 2)
    box = (left, top, left + width, top + height)
    increase = rng.uniform(0.0, 0.3)
    ours = crop.square_face_box(box, (720, 1280), increase)
    np.testing.assert_allclose(ours, _recipe_box(box, increase), atol=1.01)


def test_square_box_near_an_edge_is_shifted_inside():
  # Centred, the 60-pixel square would start at x = -3; the 65-pixel square of a
  # 46x54 face in the corner would end at (176.5, 149.5).
  assert crop.square_face_box((2, 10, 52, 60), (144, 176)) == (0, 5, 60, 65)
  assert crop.square_face_box((130, 90, 176, 144), (144, 176)) == (111, 79, 176, 144)


def test_square_box_larger_than_the_frame_covers_it():
  # Side round(1.2 * 130) = 156 > 144: the square spans the whole height, as centred on
  # the face as that allows, and is shifted inside horizontally where it fits.
  assert crop.square_face_box((10, 5, 130, 135), (144, 176)) == (0, -8, 156, 148)
  assert crop.square_face_box((10, 0, 130, 130), (144, 176)) == (0, -12, 156, 144)


def test_square_box_properties_on_random_boxes():
  rng = np.random.default_rng(1)
  for _ in range(300):
    height, width = rng.integers(40, 400, 2)
    left, top = rng.uniform(-20, width - 10), rng.uniform(-20, height - 10)
    box = (left, top, left + rng.uniform(25, width), top + rng.uniform(25, height))
    increase = rng.uniform(0, 0.5)
    result = crop.square_face_box(box, (height, width), increase)
    side = result[2] - result[0]
    assert side == result[3] - result[1]
    clipped = (max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height))
    assert _contains(result, clipped), (box, result)
    expected = (1 + 2 * increase) * max(clipped[2] - clipped[0], clipped[3] - clipped[1])
    assert expected - 0.5 <= side <= expected + 2
    for start, extent in ((result[0], width), (result[1], height)):
      if side <= extent:
        assert 0 <= start <= extent - side  # inside the frame
      else:
        assert extent - side <= start <= 0  # covers the frame


def test_square_box_rejects_bad_arguments():
  with pytest.raises(ValueError, match="increase"):
    crop.square_face_box((0, 0, 10, 10), (100, 100), increase=-0.1)
  with pytest.raises(ValueError, match="no area inside"):
    crop.square_face_box((200, 0, 210, 10), (100, 100))


def test_plan_crops_keeps_long_tubes_in_order():
  face = np.array([[20.0, 20.0, 60.0, 60.0]])
  other = np.array([[100.0, 20.0, 140.0, 60.0]])
  detections = ([np.concatenate([face, other])] * 3 + [face] * 5 + [np.zeros((0, 4))] * 7 +
                [other] * 4)
  crops = crop.plan_crops(detections, (144, 176), min_frames=4)
  assert [(c.start, c.stop) for c in crops] == [(0, 8), (15, 19)]
  assert crops[0].box == crop.square_face_box(face[0], (144, 176))
  assert crops[0].tube_box == (20.0, 20.0, 60.0, 60.0)
  assert crop.longest_crop(crops) is crops[0]
  assert crop.longest_crop([]) is None
  # max_gap=12 bridges the 12 frames (3-14) without `other`: frames 0-18 in one tube.
  crops = crop.plan_crops(detections, (144, 176), min_frames=4, max_gap=12)
  assert [(c.start, c.stop) for c in crops] == [(0, 8), (0, 19)]
  crops = crop.plan_crops(detections, (144, 176), min_frames=4, max_gap=11)
  assert [(c.start, c.stop) for c in crops] == [(0, 8), (15, 19)]


def test_time_span_selects_exactly_the_tubes_frames():
  face_crop = crop.FaceCrop(30, 60, (0.0, 0.0, 1.0, 1.0), (0, 0, 1, 1))
  start_s, duration_s = face_crop.time_span(FPS)
  times = np.arange(100) * 1001 / 30000
  selected = np.flatnonzero((times >= start_s) & (times < start_s + duration_s))
  np.testing.assert_array_equal(selected, np.arange(30, 60))
  # Half a frame of slack on both sides.
  assert start_s == pytest.approx(29.5 / float(FPS))
  assert start_s + duration_s == pytest.approx(59.5 / float(FPS))
  assert crop.FaceCrop(0, 10, (0.0,) * 4, (0, 0, 1, 1)).time_span(25) == (0.0, 0.38)


def test_ffmpeg_command_like_the_recipe():
  command = crop.ffmpeg_command("in.mp4", 1.0345, 2.5, (42, 26, 119, 103), 256, "crop.mp4")
  assert command == ("ffmpeg -ss 1.0345 -t 2.5 -i in.mp4 -filter:v "
                     "crop=77:77:42:26,scale=256:256 crop.mp4")
  quoted = crop.ffmpeg_command("my clip.mp4", 0, 1, (0, 0, 10, 10), 64, "out dir/a.mp4")
  assert shlex.split(quoted)[6] == "my clip.mp4" and shlex.split(quoted)[-1] == "out dir/a.mp4"


def test_ffmpeg_command_pads_boxes_past_the_edges():
  command = crop.ffmpeg_command("in.mp4", 0, 1, (-10, -6, 110, 114), 64, "out.mp4",
                                frame_shape=(144, 176))
  video_filter = shlex.split(command)[8]
  assert video_filter == ("format=gbrp,pad=186:150:10:6,fillborders=left=10:right=0:top=6:"
                          "bottom=0:mode=smear,crop=120:120:0:0,scale=64:64,format=yuv420p")
  with pytest.raises(ValueError, match="frame_shape"):
    crop.ffmpeg_command("in.mp4", 0, 1, (-10, -6, 110, 114), 64, "out.mp4")


def test_ffmpeg_command_cuts_what_crop_and_resize_crops(clip, tmp_path):
  imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
  box = (-9, -5, 111, 115)  # Past the left and top edges: padded.
  face_crop = crop.FaceCrop(10, 40, (0.0, 0.0, 100.0, 100.0), box)
  output = tmp_path / "cut.mp4"
  command = crop.ffmpeg_command(sample_clip.clip_path(), *face_crop.time_span(FPS), box, 64,
                                output, frame_shape=clip.shape[1:3])
  arguments = shlex.split(command)
  arguments[0] = imageio_ffmpeg.get_ffmpeg_exe()
  # Near-lossless, so that only the resampling filters differ.
  subprocess.run(arguments[:1] + ["-loglevel", "error"] + arguments[1:-1] +
                 ["-crf", "4", arguments[-1]], check=True, timeout=60)
  cut = media.read_video(output)
  assert cut.frames.shape == (30, 64, 64, 3)
  candidates = np.stack([media.crop_and_resize(f, box, 64) for f in clip[:60]]).astype(float)
  errors = np.abs(cut.frames[:, None].astype(float) - candidates).mean(axis=(2, 3, 4))
  assert errors[np.arange(30), np.arange(10, 40)].max() < 4, errors  # the same pixels
  matches = np.argmin(errors, axis=1) == np.arange(10, 40)  # of the same frames
  assert matches.mean() >= 0.9, np.argmin(errors, axis=1)


def test_face_crop_box_on_the_sample_clip(clip):
  frames = clip[:40:2]
  box = crop.face_crop_box(frames)
  left, top, right, bottom = box
  assert right - left == bottom - top
  assert 50 < right - left < 144
  top_known, left_known, side_known = sample_clip.FACE_BOX
  centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
  assert left_known <= centre_x <= left_known + side_known
  assert top_known <= centre_y <= top_known + side_known
  # The detections (in the frame) lie inside.
  for frame in frames[::5]:
    detected = faces.detect_faces(frame)[0]
    assert _contains(box, np.clip(detected, 0, [176, 144, 176, 144]))
  single = crop.face_crop_box(clip[0])  # one image
  assert single[2] - single[0] == single[3] - single[1]
  assert _contains(single, np.clip(faces.detect_faces(clip[0])[0], 0, [176, 144, 176, 144]))
  assert crop.face_crop_box(np.full((3, 64, 64, 3), 90, np.uint8)) is None
  with pytest.raises(ValueError, match=r"uint8 \(T, H, W, 3\)"):
    crop.face_crop_box(np.zeros((2, 64, 64), np.uint8))


def test_tubes_from_tracking_give_the_same_crops():
  detections = [np.array([[20.0 + t, 20.0, 60.0 + t, 60.0]]) for t in range(6)]
  tubes = tracking.track_faces(detections)
  assert crop.crops_of_tubes(tubes, (144, 176)) == crop.plan_crops(detections, (144, 176))
