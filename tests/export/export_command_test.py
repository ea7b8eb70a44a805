"""mcc-jax export and animate --exported: the exported graphs animate as the checkpoint
does; bad inputs are named in one line."""

import fractions
import shutil

import numpy as np
import pytest
from PIL import Image

from mcc_jax import cli
from mcc_jax import media
from mcc_jax.data_pipelines.sources import sample as sample_clip


@pytest.fixture(scope="module", name="inputs")
def _inputs(tmp_path_factory):
  """A 176x144 driving clip of 8 frames and a source photo from another part of it."""
  root = tmp_path_factory.mktemp("export_inputs")
  frames = sample_clip.decode_clip()
  driving, source = root / "driving.mp4", root / "source.png"
  media.write_video(driving, frames[:32:4], fractions.Fraction(25))
  Image.fromarray(frames[100]).save(source)
  return source, driving


def _animate(model_flags, inputs, output, *extra):
  source, driving = inputs
  return cli.main(["animate", *model_flags, "--source", str(source), "--driving",
                   str(driving), "--output", str(output), *extra])


def test_animate_exported_writes_the_checkpoints_video(tiny_jacobian_checkpoint, tiny_onnx,
                                                       inputs, tmp_path, capsys):
  checkpoint, _ = tiny_jacobian_checkpoint
  # Lossless H.264: the random model's frames are noise, which lossy encoding changes by
  # about 24 levels, and a one-level difference in a frame can change the encoder's
  # decisions for the frames after it.
  options = ("--show-flow", "--batch-size", "3", "--crf", "0")
  assert _animate(["--checkpoint", str(checkpoint)], inputs, tmp_path / "jax.mp4",
                  *options) == 0
  assert _animate(["--exported", str(tiny_onnx)], inputs, tmp_path / "onnx.mp4",
                  *options) == 0
  assert f"model: {tiny_onnx} (ONNX export of {checkpoint}), 64x64" in capsys.readouterr().out
  expected = media.read_video(tmp_path / "jax.mp4").frames.astype(int)
  found = media.read_video(tmp_path / "onnx.mp4").frames.astype(int)
  # result | flow | occlusion overlay, one frame per driving frame.
  assert found.shape == expected.shape == (8, 64, 3 * 64, 3)
  difference = np.abs(found - expected)
  assert difference.mean() <= 1.0
  print(f"animate --exported vs --checkpoint: mean {difference.mean():.4f}, max "
        f"{difference.max()} levels of 255")


def _error(capsys, argv):
  with pytest.raises(SystemExit) as raised:
    cli.main(argv)
  message = str(raised.value.code) if not isinstance(raised.value.code, int) else (
      capsys.readouterr().err)
  return message.strip()


def test_animate_exported_names_what_is_missing(tiny_onnx, tiny_stablehlo, inputs, tmp_path,
                                                capsys):
  output = tmp_path / "out.mp4"
  empty = tmp_path / "empty"
  empty.mkdir()
  message = _error(capsys, ["animate", "--exported", str(empty), "--source", str(inputs[0]),
                            "--driving", str(inputs[1]), "--output", str(output)])
  assert message == (f"mcc-jax animate: error: --exported {empty}: no manifest.json (expected "
                     "a directory written by `mcc-jax export`, which holds manifest.json and "
                     "the graphs' files)")
  partial = tmp_path / "partial"
  shutil.copytree(tiny_onnx, partial)
  (partial / "keypoints.onnx").unlink()
  message = _error(capsys, ["animate", "--exported", str(partial), "--source", str(inputs[0]),
                            "--driving", str(inputs[1]), "--output", str(output)])
  assert message == (f"mcc-jax animate: error: --exported {partial / 'keypoints.onnx'}: "
                     "missing (the keypoints graph's file named in manifest.json)")
  message = _error(capsys, ["animate", "--exported", str(tiny_stablehlo), "--source",
                            str(inputs[0]), "--driving", str(inputs[1]), "--output",
                            str(output)])
  assert "holds a stablehlo export; expected onnx (export with --format onnx)" in message
  message = _error(capsys, ["animate", "--exported", str(tiny_onnx), "--checkpoint",
                            str(tmp_path), "--source", str(inputs[0]), "--driving",
                            str(inputs[1]), "--output", str(output)])
  assert "argument --checkpoint: not allowed with argument --exported" in message
  assert not output.exists()


def test_export_names_a_bad_format_and_an_occupied_output(tiny_jacobian_checkpoint, tmp_path,
                                                          capsys):
  checkpoint, _ = tiny_jacobian_checkpoint
  message = _error(capsys, ["export", "--checkpoint", str(checkpoint), "--format", "tflite",
                            "--output", str(tmp_path / "out")])
  assert "argument --format: invalid choice: 'tflite' (choose from 'onnx', 'stablehlo')" in message
  occupied = tmp_path / "occupied"
  occupied.mkdir()
  (occupied / "notes.txt").write_text("keep")
  message = _error(capsys, ["export", "--checkpoint", str(checkpoint), "--format", "onnx",
                            "--output", str(occupied)])
  assert message == (f"mcc-jax export: error: --output {occupied}: already exists and is not "
                     "an empty directory (choose a new directory)")
  message = _error(capsys, ["export", "--checkpoint", str(tmp_path / "absent"), "--format",
                            "onnx", "--output", str(tmp_path / "out")])
  assert message.startswith(f"mcc-jax export: error: {tmp_path / 'absent'}: no such checkpoint")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]
