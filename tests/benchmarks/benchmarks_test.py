"""The benchmark scripts run and write the figures they promise (tiny workloads)."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(script, *args):
  result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_ops_benchmark_reports_ratios(tmp_path):
  out = _run("ops.py", "--repeats", "1", "--json", str(tmp_path / "ops.json"))
  assert "jax/torch" in out
  figures = json.loads((tmp_path / "ops.json").read_text())["cases"]
  assert set(figures) == {"warp forward", "warp forward+backward", "quantize forward",
                          "quantize forward+backward"}
  for case in figures.values():
    assert case["jax_ms"] > 0 and case["torch_ms"] > 0 and case["ratio"] > 0


def test_inference_benchmark_writes_figures_keyed_by_batch_size(tmp_path):
  out = _run("inference.py", "--config", "configs/tiny.py", "--batch-sizes", "1", "2",
             "--repeats", "1", "--json", str(tmp_path / "inference.json"))
  assert "s/frame" in out
  figures = json.loads((tmp_path / "inference.json").read_text())
  assert set(figures) == {"1", "2"}
  for entry in figures.values():
    assert entry["sec_per_frame"] > 0
    assert abs(entry["frames_per_sec"] * entry["sec_per_frame"] - 1) < 1e-9
    assert entry["gflop_per_frame"] > 0 and entry["image_size"] == 64


def test_train_step_benchmark_reports_time_and_memory(tmp_path):
  out = _run("train_step.py", "--config", "configs/tiny.py", "--steps", "1",
             "--json", str(tmp_path / "train.json"))
  assert "s/step" in out
  figures = json.loads((tmp_path / "train.json").read_text())["mcc_jax"]
  assert figures["step_seconds"] > 0 and figures["peak_rss_bytes"] > 2**20
  assert figures["gflop_per_step"] > 0


def test_learn_sample_benchmark_scores_the_baselines(tmp_path):
  out = _run("learn_sample.py", "--minutes", "0", "--json", str(tmp_path / "learn.json"))
  assert "copy source" in out
  results = json.loads((tmp_path / "learn.json").read_text())["results"]
  assert set(results) == {"copy source", "keypoint flow only", "mcc-jax (EMA)",
                          "mcc-jax (raw weights)"}
  for scores in results.values():
    assert 5 < scores["psnr"] < 60 and 0 <= scores["lpips"] < 1.5


def test_animate_benchmark_reports_every_stage(tmp_path, capsys):
  # In this process: the tiny model's programs are those the animate tests compiled.
  import importlib.util

  spec = importlib.util.spec_from_file_location("animate_benchmark",
                                                ROOT / "benchmarks" / "animate.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.main(["--configs", "configs/tiny.py", "--frames", "4", "--batch-size", "2",
                      "--json", str(tmp_path / "animate.json")]) == 0
  assert "end to end" in capsys.readouterr().out
  entry = json.loads((tmp_path / "animate.json").read_text())["tiny"]
  assert entry["frames"] == 4 and entry["image_size"] == 64 and entry["weights"] == "random"
  for stage in ("end_to_end_fps", "decode_fps", "inference_fps", "encode_fps"):
    assert entry[stage] > 0, stage
  # Every stage is part of the whole, so none is slower than the whole.
  assert entry["end_to_end_fps"] <= min(entry["decode_fps"], entry["inference_fps"],
                                        entry["encode_fps"])
