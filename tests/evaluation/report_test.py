"""metrics.json / metrics.md / per_video.json from an evaluation result."""

import json

from mcc_jax.evaluation import protocol
from mcc_jax.evaluation import report


def _result():
  metrics = {
      "psnr": protocol.MetricResult("psnr", 31.234, "PSNR of |a - b|", frames=10),
      "akd": protocol.MetricResult("akd", float("nan"), "AKD", frames=0, missed_fraction=1.0),
  }
  settings = {"metrics": ["psnr", "akd"], "motion": "absolute",
              "dataset": {"name": "sample", "root": "", "split": "test", "image_size": 64,
                          "videos_in_split": 1}}
  return protocol.EvaluationResult(
      mode="reconstruction", metrics=metrics, per_video=[{"video": "v#1", "psnr": 31.234}],
      frames=10, skipped_videos=[("/data/test/bad.mp4", "cannot decode")], settings=settings)


def test_files_hold_values_definitions_and_counts(tmp_path):
  paths = report.write(_result(), tmp_path / "out", model_description="ckpt", notes=["a note"],
                       per_video=True)
  assert [p.name for p in paths] == ["metrics.json", "metrics.md", "per_video.json"]
  summary = json.loads(paths[0].read_text())
  assert summary["checkpoint"] == "ckpt" and summary["mode"] == "reconstruction"
  assert summary["metrics"]["psnr"] == {"value": 31.234, "definition": "PSNR of |a - b|",
                                        "frames": 10, "higher_is_better": True}
  # No face found anywhere: no value (JSON null), and the miss rate says why.
  assert summary["metrics"]["akd"]["value"] is None
  assert summary["metrics"]["akd"]["missed_fraction"] == 1.0
  assert summary["videos"]["skipped_unreadable"] == 1
  assert summary["notes"] == ["a note"]
  table = paths[1].read_text()
  assert "| PSNR (dB) ↑ | AKD (px) ↓ |" in table and "| 31.23 | n/a |" in table
  assert "PSNR of \\|a - b\\|" in table  # A bare | would split the cell.
  assert json.loads(paths[2].read_text()) == [{"video": "v#1", "psnr": 31.234}]
