"""mcc-jax animate: frame counts and rates kept, best frame, named errors, nothing partial."""

import fractions

import av
import jax
import numpy as np
import pytest
from PIL import Image
from scipy.spatial import ConvexHull

from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax import cli
from mcc_jax import inference
from mcc_jax import media
from mcc_jax.inference.animation import to_model_range
from mcc_jax.models.motion_estimator import MotionEstimator
from tests import small_faces

CLIP_RATE = fractions.Fraction(30000, 1001)


@pytest.fixture(scope="module", name="inputs")
def _inputs(tmp_path_factory):
  """A non-square driving clip larger than the model (176x144), a square one, a JPEG."""
  root = tmp_path_factory.mktemp("animate_inputs")
  frames = sample_clip.decode_clip()
  paths = {"wide": root / "wide.mp4", "square": root / "square.webm",
           "jpeg": root / "source.jpg"}
  media.write_video(paths["wide"], frames[:24:2], CLIP_RATE)
  square = np.stack([media.crop_and_resize(f, (24, 0, 136, 112), 80) for f in frames[40:47]])
  # VP9 in WebM: a second container and codec.
  with av.open(str(paths["square"]), "w") as container:
    stream = container.add_stream("libvpx-vp9", rate=25)
    stream.width, stream.height, stream.pix_fmt = 80, 80, "yuv420p"
    for frame in square:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  Image.fromarray(frames[90]).save(paths["jpeg"], quality=92)
  return paths


def _animate(checkpoint, source, driving, output, *extra):
  return cli.main(["animate", "--checkpoint", str(checkpoint), "--source", str(source),
                   "--driving", str(driving), "--output", str(output), *extra])


def _video(path):
  clip = media.read_video(path)
  return clip.frames, clip.fps


def test_wide_driving_video_keeps_its_frame_count_and_rate(tiny_checkpoint, inputs, tmp_path):
  checkpoint, _ = tiny_checkpoint
  output = tmp_path / "result.mp4"
  assert _animate(checkpoint, inputs["jpeg"], inputs["wide"], output, "--batch-size", "5") == 0
  frames, fps = _video(output)
  assert frames.shape == (12, 64, 64, 3) and fps == CLIP_RATE
  assert [p.name for p in tmp_path.iterdir()] == ["result.mp4"]


def test_square_webm_side_by_side_with_flow(tiny_checkpoint, inputs, tmp_path, capsys):
  checkpoint, _ = tiny_checkpoint
  output = tmp_path / "panels.mp4"
  assert _animate(checkpoint, inputs["jpeg"], inputs["square"], output, "--side-by-side",
                  "--show-flow", "--absolute") == 0
  frames, fps = _video(output)
  # source | driving | result | flow | occlusion overlay
  assert frames.shape == (7, 64, 5 * 64, 3) and fps == 25
  out = capsys.readouterr().out
  # WebM states no frame count: the stream is decoded without knowing it in advance.
  assert "frames (count not stated in the file) at 25.000 fps, 80x80 -> 64x64" in out
  assert f"wrote {output}: 7 frames at 25.000 fps" in out
  # The source column is the same picture in every frame; the driving column is not.
  source_column = frames[:, :, :64].astype(int)
  driving_column = frames[:, :, 64:128].astype(int)
  assert np.abs(source_column[0] - source_column[-1]).mean() < 2
  assert np.abs(driving_column[0] - driving_column[-1]).mean() > 5


def test_face_crop_follows_the_detected_face(tiny_checkpoint, inputs, tmp_path, capsys):
  checkpoint, _ = tiny_checkpoint
  output = tmp_path / "face.mp4"
  assert _animate(checkpoint, inputs["jpeg"], inputs["wide"], output, "--crop", "face",
                  "--side-by-side") == 0
  frames, _ = _video(output)
  assert frames.shape == (12, 64, 3 * 64, 3)
  assert "(face crop)" in capsys.readouterr().out
  # The driving column is the face box of the clip, not its centred square: compare
  # with both crops of the first decoded frame.
  first = media.read_video(inputs["wide"], max_frames=1).frames[0]
  from mcc_jax.faces import crop
  box = crop.face_crop_box(media.read_video(inputs["wide"]).frames, iou_threshold=0.0)
  face = media.crop_and_resize(first, box, 64).astype(int)
  centre = media.crop_and_resize(first, None, 64).astype(int)
  column = frames[0, :, 64:128].astype(int)
  assert np.abs(column - face).mean() < 0.5 * np.abs(column - centre).mean()


def test_face_crop_without_a_face_is_an_error(tiny_checkpoint, inputs, tmp_path):
  checkpoint, _ = tiny_checkpoint
  grey = tmp_path / "grey.png"
  Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(grey)
  with pytest.raises(SystemExit, match="grey.png: no face found for the face crop"):
    _animate(checkpoint, grey, inputs["wide"], tmp_path / "out.mp4", "--crop", "face")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.png"]


def _normalise(points):
  points = points - points.mean(axis=0, keepdims=True)
  return points / np.sqrt(ConvexHull(points).volume)


def test_find_best_frame_picks_what_an_independent_computation_picks(tiny_checkpoint, inputs,
                                                                     tmp_path, capsys):
  checkpoint, _ = tiny_checkpoint
  model = inference.load_model(checkpoint=checkpoint)
  driving = media.read_video(inputs["wide"],
                             lambda f: media.crop_and_resize(f, None, 64)).frames
  # A frame of the video itself, mirrored: its keypoints match no frame exactly.
  decoded = media.read_video(inputs["wide"]).frames
  source_path = tmp_path / "mirrored.png"
  Image.fromarray(np.ascontiguousarray(decoded[8, :, ::-1])).save(source_path)
  source = media.crop_and_resize(media.read_image(source_path), None, 64)

  detect = jax.jit(lambda v, x: model.estimator.apply(
      v, x, train=False, method=MotionEstimator.detect_keypoints).value)
  variables = model.variables["motion_estimator"]
  source_points = np.asarray(detect(variables, to_model_range(source[None])))[0]
  distances = [np.sum((_normalise(np.asarray(detect(variables, to_model_range(f[None])))[0])
                       - _normalise(source_points))**2) for f in driving]
  expected = int(np.argmin(distances))

  output = tmp_path / "best.mp4"
  assert _animate(checkpoint, source_path, inputs["wide"], output, "--find-best-frame") == 0
  assert f"best frame: {expected}\n" in capsys.readouterr().out
  # The unmirrored frame itself is found exactly.
  Image.fromarray(decoded[8]).save(source_path)
  assert _animate(checkpoint, source_path, inputs["wide"], output, "--find-best-frame") == 0
  assert "best frame: 8\n" in capsys.readouterr().out


def _bad_inputs(root, inputs, checkpoint):
  (root / "not_an_image.jpg").write_text("hello")
  (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
  empty = av.open(str(root / "empty.avi"), "w")  # AVI keeps a stream without frames
  stream = empty.add_stream("mpeg4", rate=25)
  stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
  empty.start_encoding()
  empty.close()
  jpeg, video = str(inputs["jpeg"]), str(inputs["wide"])
  out = str(root / "out" / "result.mp4")
  ckpt = ["--checkpoint", str(checkpoint)]
  return {
      "missing source": (ckpt + ["--source", str(root / "nope.png"), "--driving", video,
                                 "--output", out], "nope.png: no such file"),
      "unreadable source": (ckpt + ["--source", str(root / "not_an_image.jpg"), "--driving",
                                    video, "--output", out], "not_an_image.jpg: is not an image"),
      "missing driving": (ckpt + ["--source", jpeg, "--driving", str(root / "nope.mp4"),
                                  "--output", out], "nope.mp4: no such file"),
      "corrupt driving": (ckpt + ["--source", jpeg, "--driving", str(root / "corrupt.mp4"),
                                  "--output", out], "corrupt.mp4"),
      "empty driving": (ckpt + ["--source", jpeg, "--driving", str(root / "empty.avi"),
                                "--output", out], "empty.avi: contains no frames"),
      "output directory missing": (ckpt + ["--source", jpeg, "--driving", video, "--output",
                                           str(root / "absent" / "r.mp4")],
                                   "absent does not exist"),
      "output not mp4": (ckpt + ["--source", jpeg, "--driving", video, "--output",
                                 str(root / "out" / "result.avi")], "expected a path ending in .mp4"),
      "checkpoint missing": (["--checkpoint", str(root / "no_checkpoint"), "--source", jpeg,
                              "--driving", video, "--output", out],
                             "no_checkpoint: no such checkpoint"),
      "checkpoint does not match the config": (
          ckpt + ["--source", jpeg, "--driving", video, "--output", out,
                  "--config=configs/tiny.py", "--config.model.variant=mmc"],
          "does not match the configuration"),
      "best frame out of range": (ckpt + ["--source", jpeg, "--driving", video, "--output", out,
                                          "--best-frame", "12"], "has 12 frames"),
  }


CASES = ["missing source", "unreadable source", "missing driving", "corrupt driving",
         "empty driving", "output directory missing", "output not mp4", "checkpoint missing",
         "checkpoint does not match the config", "best frame out of range"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_named_and_leaves_no_output(case, tiny_checkpoint, inputs, tmp_path):
  checkpoint, _ = tiny_checkpoint
  (tmp_path / "out").mkdir()
  argv, expected = _bad_inputs(tmp_path, inputs, checkpoint)[case]
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["animate", *argv])
  assert exit_info.value.code != 0
  assert expected in str(exit_info.value.code)
  assert list((tmp_path / "out").iterdir()) == []


def test_a_failure_while_writing_leaves_nothing(tiny_checkpoint, inputs, tmp_path, monkeypatch):
  checkpoint, _ = tiny_checkpoint
  from mcc_jax.visualization import panels

  calls = []

  def failing(*columns):
    calls.append(1)
    if len(calls) == 2:
      raise RuntimeError("disk full")
    return np.concatenate(columns, axis=2)

  monkeypatch.setattr(panels, "side_by_side", failing)
  output = tmp_path / "result.mp4"
  with pytest.raises(RuntimeError, match="disk full"):
    _animate(checkpoint, inputs["jpeg"], inputs["wide"], output, "--batch-size", "4")
  assert list(tmp_path.iterdir()) == []


def test_a_small_face_in_a_large_portrait_video_is_cropped(tiny_checkpoint, inputs, tmp_path,
                                                            capsys):
  # A 720x1080 portrait video whose face is about 53 px: below what HOG finds on the
  # 640-px copy, found at full resolution; the frames are streamed, never held.
  checkpoint, _ = tiny_checkpoint
  frames = small_faces.small_face_frames(sample_clip.decode_clip(), 4)
  video = tmp_path / "portrait.mp4"
  media.write_video(video, frames, fps=25)
  output = tmp_path / "result.mp4"
  assert _animate(checkpoint, inputs["jpeg"], video, output, "--crop", "face",
                  "--side-by-side") == 0
  out = capsys.readouterr().out
  assert "driving faces found in 4 of 4 frames (hog 0, hog-full-resolution 4)" in out
  result, _ = _video(output)
  assert result.shape == (4, 64, 3 * 64, 3)
  # The driving column is the face box an independent computation finds (HOG stages,
  # longest tube), not the centred square, which is mostly grey canvas.
  from mcc_jax import faces
  from mcc_jax.faces import crop
  decoded = media.read_video(video).frames
  box = crop.longest_crop(crop.plan_crops([faces.find_faces(f, cnn=False).boxes
                                           for f in decoded], (1080, 720),
                                          iou_threshold=0.0)).box
  face = media.crop_and_resize(decoded[0], box, 64).astype(int)
  centre = media.crop_and_resize(decoded[0], None, 64).astype(int)
  column = result[0, :, 64:128].astype(int)
  assert np.abs(column - face).mean() < 6  # two H.264 encodings apart
  assert np.abs(column - centre).mean() > 20
