"""``mcc-jax evaluate`` end to end on a random tiny checkpoint, and its errors.

The tiny model's frames are noise-like, so faces are taken as the whole frame
(``--face-box frame``): dlib's detector would find none and AKD/AED would be empty.
FID runs with random Inception weights in pytorch-fid's file layout.
"""

import json
import math
import os
import pathlib
import sys

import numpy as np
import pytest

from mcc_jax import cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "evaluation"))
import random_fid_weights  # noqa: E402


@pytest.fixture(scope="module", name="fid_weights")
def _fid_weights(tmp_path_factory):
  pytest.importorskip("torch")
  path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
  random_fid_weights.save_pth(path, seed=0)
  return path


def _evaluate(*args):
  return cli.main(["evaluate", *[str(a) for a in args]])


def _finite_metrics(output, names):
  summary = json.loads((output / "metrics.json").read_text())
  for name in names:
    metric = summary["metrics"][name]
    assert metric["value"] is not None and math.isfinite(metric["value"]), name
    assert metric["frames"] > 0 and metric["definition"], name
  return summary


def test_reconstruction_writes_every_metric(tiny_checkpoint, fid_weights, tmp_path, capsys):
  checkpoint, _ = tiny_checkpoint
  output = tmp_path / "eval"
  code = _evaluate("--checkpoint", checkpoint, "--output", output, "--config.datasets.name=sample",
                   "--max-frames", 3, "--batch-size", 2, "--per-video", "--face-box", "frame",
                   "--metrics", "psnr,l1,lpips,akd,aed,csim,fid", "--fid-weights", fid_weights)
  assert code == 0
  summary = _finite_metrics(output, ["psnr", "l1", "l1_255", "lpips", "akd", "aed", "csim",
                                     "fid"])
  assert summary["mode"] == "reconstruction"
  assert summary["checkpoint"] == str(checkpoint)
  assert summary["dataset"]["name"] == "sample" and summary["frames"] == 3
  assert summary["videos"] == {"evaluated": 1, "skipped_unreadable": 0, "skipped": []}
  assert summary["metrics"]["akd"]["missed_fraction"] == 0.0
  assert "dlib" in summary["metrics"]["akd"]["definition"]
  assert summary["metrics"]["l1_255"]["value"] == pytest.approx(
      255 * summary["metrics"]["l1"]["value"])
  per_video = json.loads((output / "per_video.json").read_text())
  assert [v["video"] for v in per_video] == ["carphone#096"]
  assert per_video[0]["frames"] == 3 and per_video[0]["total_frames"] == 24
  table = (output / "metrics.md").read_text()
  assert "| PSNR (dB) ↑ | L1 ↓ | LPIPS ↓ | AKD (px) ↓ | AED ↓ | CSIM ↑ | FID ↓ |" in table
  assert table in capsys.readouterr().out


def test_cross_identity(tiny_checkpoint, tmp_path, capsys):
  checkpoint, _ = tiny_checkpoint
  output = tmp_path / "cross"
  # The tiny config's synthetic test split: persons 0000 and 0001, two videos each.
  code = _evaluate("--checkpoint", checkpoint, "--output", output, "--mode", "cross_identity",
                   "--config.datasets.max_videos=3", "--config.datasets.synthetic.num_frames=2",
                   "--batch-size", 2, "--per-video", "--face-box", "frame")
  assert code == 0
  summary = _finite_metrics(output, ["csim", "aed", "akd"])
  assert "fid" not in summary["metrics"]
  assert any("--fid-weights" in note for note in summary["notes"])
  assert "source image" in summary["metrics"]["aed"]["definition"]
  per_video = json.loads((output / "per_video.json").read_text())
  pairs = [(v["video"][-7:], v["source_video"][-7:]) for v in per_video]
  assert pairs == [("0000#00", "0001#00"), ("0000#01", "0001#00"), ("0001#00", "0000#01")]
  assert not (output / "missing").exists()
  assert "pass --fid-weights PATH" in capsys.readouterr().out
  # The synthetic dataset renders the ground truth: PSNR, L1 and LPIPS are scored against
  # the source's person in the driving motion, not against the driving frames.
  summary = _finite_metrics(output, ["psnr", "l1", "lpips"])
  assert "rendered ground truth" in summary["metrics"]["psnr"]["definition"]
  assert summary["metrics"]["psnr"]["frames"] == 6
  from mcc_jax import inference  # pylint: disable=import-outside-toplevel
  from mcc_jax.data_pipelines.sources import synthetic  # pylint: disable=import-outside-toplevel
  from mcc_jax.data_pipelines.sources.synthetic import heads  # pylint: disable=import-outside-toplevel
  model = inference.load_model(checkpoint=checkpoint)
  datasets = model.config.datasets
  datasets.synthetic.num_frames = 2
  animator = inference.Animator(model)
  psnr = lambda a, b: 10 * np.log10(255.0**2 / ((a.astype(np.float64) - b) ** 2).mean(
      axis=(1, 2, 3)))
  for record in per_video:
    a = synthetic.video_named(datasets, record["source_video"])
    b = synthetic.video_named(datasets, record["video"])
    generated = np.concatenate([batch.frames for batch in animator.animate(
        a.render(0), b.read_all(), relative=True, adapt_scale=True, batch_size=2)])
    # Frame 0: nothing moved, the target is A's first frame; frame 1: A's first pose
    # moved by B's change (numpy, parameter by parameter).
    p0, p1, s = b.motion.pose(0), b.motion.pose(1), a.motion.pose(0)
    moved = heads.HeadPose(
        translation=(s.translation[0] + p1.translation[0] - p0.translation[0],
                     s.translation[1] + p1.translation[1] - p0.translation[1]),
        roll=s.roll + p1.roll - p0.roll, scale=s.scale * p1.scale / p0.scale,
        yaw=float(np.clip(s.yaw + p1.yaw - p0.yaw, -1, 1)),
        eye_openness=float(np.clip(s.eye_openness + p1.eye_openness - p0.eye_openness, 0, 1)),
        mouth_opening=float(np.clip(s.mouth_opening + p1.mouth_opening - p0.mouth_opening,
                                    0, 1)))
    target = np.stack([a.render(0), heads.render_head(a.identity, moved, 64)])
    assert record["psnr"] == pytest.approx(psnr(generated, target).mean(), abs=1e-3)
    assert record["psnr"] != pytest.approx(psnr(generated, b.read_all()).mean(), abs=1e-3)


@pytest.mark.parametrize("arguments, message", [
    (["--metrics", "psnr,ssim"], "unknown metric 'ssim'"),
    (["--metrics", "lpips,fid"], "pass --fid-weights PATH"),
    (["--fid-weights", "absent.pth"], "--fid-weights absent.pth: no such file"),
    (["--mode", "cross_identity", "--metrics", "psnr", "--config.datasets.name=sample"],
     "does not apply to mode 'cross_identity' on this dataset"),
    (["--max-frames", "0"], "--max-frames must be at least 1"),
])
def test_argument_errors(tiny_checkpoint, tmp_path, arguments, message, monkeypatch):
  monkeypatch.chdir(tmp_path)
  checkpoint, _ = tiny_checkpoint
  with pytest.raises(SystemExit, match=message):
    _evaluate("--checkpoint", checkpoint, "--output", tmp_path / "out", *arguments)


def test_missing_checkpoint_and_empty_split(tiny_checkpoint, tmp_path):
  with pytest.raises(SystemExit, match="no such checkpoint directory"):
    _evaluate("--checkpoint", tmp_path / "absent", "--output", tmp_path / "out")
  with pytest.raises(SystemExit, match="no such workdir"):
    _evaluate("--workdir", tmp_path / "absent", "--output", tmp_path / "out")
  checkpoint, _ = tiny_checkpoint
  os.makedirs(tmp_path / "data" / "test")
  with pytest.raises(SystemExit, match="'test' split of the 'folder' dataset .* nothing to "
                     "evaluate"):
    _evaluate("--checkpoint", checkpoint, "--output", tmp_path / "out",
              "--config.datasets.name=folder", f"--config.datasets.root={tmp_path / 'data'}")
  assert not (tmp_path / "out").exists()


def test_only_dataset_fields_can_be_overridden_without_a_file(tiny_checkpoint, tmp_path, capsys):
  checkpoint, _ = tiny_checkpoint
  with pytest.raises(SystemExit):
    _evaluate("--checkpoint", checkpoint, "--output", tmp_path / "out",
              "--config.model.num_keypoints=3")
  assert "only --config.datasets.<field> can be overridden" in capsys.readouterr().err
