"""The benchmark scripts run and write the figures they promise (tiny workloads)."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _load(script):
  spec = importlib.util.spec_from_file_location(f"{script[:-3]}_benchmark",
                                                ROOT / "benchmarks" / script)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _run(script, *args):
  result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_ops_benchmark_reports_ratios(tmp_path):
  out = _run("ops.py", "--repeats", "1", "--json", str(tmp_path / "ops.json"))
  assert "jax/torch" in out
  figures = json.loads((tmp_path / "ops.json").read_text())["cases"]
  compared = {"warp forward", "warp forward+backward", "quantize forward",
              "quantize forward+backward", "conv2d forward", "conv2d forward+backward",
              "conv2d kernel gradient"}
  jax_only = {"conv2d (lax) forward", "conv2d (lax) forward+backward",
              "conv2d (lax) kernel gradient"}
  assert set(figures) == compared | jax_only
  for name in compared:
    case = figures[name]
    assert case["jax_ms"] > 0 and case["torch_ms"] > 0 and case["ratio"] > 0
    assert case["ratio_of_fastest"] > 0
  for name in jax_only:
    assert figures[name]["jax_ms"] > 0 and figures[name]["torch_ms"] is None
  quantizer = json.loads((tmp_path / "ops.json").read_text())["torch_quantizer"]
  assert quantizer["formulation"] == _load("ops.py").REFERENCE_QUANTIZER
  assert quantizer["difference_to_mcc_jax"]["index_mismatches"] == 0


def test_every_torch_quantizer_formulation_computes_what_mcc_jax_computes():
  pytest.importorskip("torch")
  ops_benchmark = _load("ops.py")
  rng = np.random.default_rng(1)
  vectors = rng.normal(size=(2, 24, 8)).astype(np.float32)
  codebook = rng.normal(size=(32, 8)).astype(np.float32)
  quantizers = ops_benchmark.torch_quantizers()
  assert ops_benchmark.REFERENCE_QUANTIZER in quantizers
  assert ops_benchmark.ONE_HOT_QUANTIZER in quantizers
  assert len(quantizers) == (len(ops_benchmark.DISTANCES) * len(ops_benchmark.LOOKUPS)
                             * len(ops_benchmark.LOSSES))
  for name, quantize in quantizers.items():
    # Indices, straight-through output, loss and both gradients, against ops.quantize.
    diff = ops_benchmark.check_quantizer(quantize, vectors, codebook)
    assert diff["index_mismatches"] == 0, name


def test_quantizer_formulation_comparison_times_every_candidate():
  pytest.importorskip("torch")
  ops_benchmark = _load("ops.py")
  rng = np.random.default_rng(2)
  times = ops_benchmark.compare_formulations(rng.normal(size=(1, 8, 4)).astype(np.float32),
                                             rng.normal(size=(16, 4)).astype(np.float32),
                                             repeats=1)
  assert set(times) == set(ops_benchmark.torch_quantizers()) | {"mcc-jax"}
  for entry in times.values():
    assert set(entry) == {"quantize forward", "quantize forward+backward",
                          "quantize forward fastest", "quantize forward+backward fastest"}
    assert all(ms > 0 for ms in entry.values())


def test_dead_list_removal_drops_exactly_the_dead_statements(tmp_path):
  # A stand-in for the official forward (the official checkout is not part of CI): the
  # benchmark asserts the real patch's outputs against the shipped forward at run time.
  source = tmp_path / "stand_in.py"
  source.write_text(
      "CALLS = []\n"
      "def warp(x):\n"
      "  CALLS.append(x)\n"
      "  return 2 * x\n"
      "class Net:\n"
      "  def forward(self, x):\n"
      "    y = warp(x)\n"
      "    deform_feat_list = [warp(x + 1)]\n"
      "    for i in range(3):\n"
      "      y = y + warp(i)\n"
      "      if i:\n"
      "        deform_feat_list.append(warp(x + i))\n"
      "    return {'out': y, 'deform_feat_list': deform_feat_list}\n")
  spec = importlib.util.spec_from_file_location("stand_in", source)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  lean, removed = _load("inference.py").without_dead_warps(module.Net.forward)
  assert removed == 2
  shipped = module.Net().forward(10)
  shipped_calls = len(module.CALLS)
  module.CALLS.clear()
  patched = lean(module.Net(), 10)
  assert patched["out"] == shipped["out"] and patched["deform_feat_list"] == []
  assert len(module.CALLS) == shipped_calls - 3  # the three dead warps are gone


@pytest.mark.parametrize("processes", ["one", "per-batch-size"])
def test_inference_benchmark_writes_figures_keyed_by_batch_size(tmp_path, processes):
  out = _run("inference.py", "--config", "configs/tiny.py", "--batch-sizes", "1", "2",
             "--repeats", "1", "--processes", processes,
             "--json", str(tmp_path / "inference.json"))
  assert out.count("s/frame") == 1  # one header, also with a process per batch size
  figures = json.loads((tmp_path / "inference.json").read_text())
  assert set(figures) == {"1", "2"}
  for entry in figures.values():
    assert entry["sec_per_frame"] > 0
    assert abs(entry["frames_per_sec"] * entry["sec_per_frame"] - 1) < 1e-9
    assert entry["gflop_per_frame"] > 0 and entry["image_size"] == 64
    assert entry["weights"] == "random" and len(entry["samples_sec_per_frame"]["mcc-jax"]) == 1


def test_input_pipeline_benchmark_reports_warm_and_cold_cache(tmp_path):
  out = _run("input_pipeline.py", "--image-size", "32", "--identities", "2",
             "--videos-per-identity", "1", "--frames", "4", "--batch-size", "2",
             "--seconds", "0.2", "--warmup-batches", "1", "--cold-method", "fadvise",
             "--evict-interval", "0.05", "--json", str(tmp_path / "pipeline.json"))
  assert "warm pairs/s" in out and "cold pairs/s" in out
  figures = json.loads((tmp_path / "pipeline.json").read_text())
  assert figures["settings"]["data"].startswith("synthetic")
  for fmt in ("png", "mp4", "tfds"):
    assert set(figures[fmt]) == {"warm", "cold"}
    for cache, entry in figures[fmt].items():
      assert entry["pairs"] > 0 and entry["pairs_per_sec"] > 0, (fmt, cache)
      resident = entry["resident_at_start"]
      assert resident is None or 0 <= resident <= 1
    assert figures[fmt]["cold"]["drop_method"] == "fadvise"


def test_input_pipeline_benchmark_long_clips_case(tmp_path):
  out = _run("input_pipeline.py", "--case", "long-clips", "--long-clips", "1",
             "--long-clip-frames", "30", "--long-clip-size", "32", "--batch-size", "2",
             "--seconds", "0.2", "--json", str(tmp_path / "scale.json"))
  assert "first batch (s)" in out and "peak RSS (MiB)" in out
  figures = json.loads((tmp_path / "scale.json").read_text())
  assert figures["case"] == "long-clips" and list(figures["rows"]) == ["1 clips"]
  row = figures["rows"]["1 clips"]
  assert row["first_batch_sec"] > 0 and row["pairs"] > 0
  assert row["peak_rss_mib"] >= row["rss_after_imports_mib"] > 0


def test_input_pipeline_benchmark_many_videos_tree(tmp_path):
  # In this process (the case itself runs each measurement in a fresh interpreter).
  benchmark = _load("input_pipeline.py")
  root = benchmark.write_many_videos(str(tmp_path / "tree"), 1003, 2, 8)
  folders = sorted((tmp_path / "tree" / "train").iterdir())
  assert len(folders) == 1003 and folders[0].name == "id00000#0"
  assert sorted(p.name for p in folders[-1].iterdir()) == ["0000000.png", "0000001.png"]
  assert (folders[-1] / "0000001.png").stat().st_nlink == 2 * 3 + 1  # 3 videos, 1 file.
  row = benchmark._child_measurement({"root": root, "image_size": 8, "batch_size": 2,
                                      "seconds": 0.1})
  assert row["first_batch_sec"] > 0 and row["pairs"] > 0 and row["peak_rss_mib"] > 0


def test_train_step_benchmark_reports_time_and_memory(tmp_path):
  out = _run("train_step.py", "--config", "configs/tiny.py", "--steps", "1", "--remat",
             "--json", str(tmp_path / "train.json"))
  assert "s/step" in out and "with remat" in out
  assert json.loads((tmp_path / "train.json").read_text())["remat"] is True
  figures = json.loads((tmp_path / "train.json").read_text())["mcc_jax"]
  assert figures["step_seconds"] > 0 and figures["peak_rss_bytes"] > 2**20
  assert figures["gflop_per_step"] > 0


def test_learn_sample_benchmark_scores_the_baselines(tmp_path):
  out = _run("learn_sample.py", "--minutes", "0", "--config.optimizer.learning_rate=3e-4",
             "--json", str(tmp_path / "learn.json"))
  assert "copy source" in out
  figures = json.loads((tmp_path / "learn.json").read_text())
  assert figures["config_args"] == ["--config.optimizer.learning_rate=3e-4"]
  assert figures["held_out_frames"] == 23   # frames 97-119; the source, frame 96, is not scored
  results = figures["results"]
  assert set(results) == {"copy source", "keypoint flow only", "mcc-jax (EMA)",
                          "mcc-jax (raw weights)", "self (frame drives itself)",
                          "nearest train frame"}
  for scores in results.values():
    assert 5 < scores["psnr"] < 60 and 0 <= scores["lpips"] < 1.5
    assert len(scores["psnr_per_frame"]) == 23
    assert abs(np.mean(scores["psnr_per_frame"]) - scores["psnr"]) < 1e-2
  # The train-frame diagnostics score the 96 train frames, not the held-out ones.
  train = figures["train_frames"]
  assert train["self (frame drives itself)"]["frames"] == 96
  assert train["from frame 0"]["frames"] == train["copy frame 0"]["frames"] == 95
  assert figures["train_gain_over_copy"] == pytest.approx(
      train["from frame 0"]["psnr"] - train["copy frame 0"]["psnr"])
  assert figures["target_met"] == (figures["train_gain_over_copy"] >= 8.0)
  assert "(target +8 dB: " in out
  for scores in train.values():
    assert 5 < scores["psnr"] < 60 and 0 <= scores["lpips"] < 1.5
  # Copy-source per frame, from an independent numpy PSNR on 8-bit frames.
  from mcc_jax.configs import sample  # pylint: disable=import-outside-toplevel
  sources, targets = _load("learn_sample.py")._test_frames(sample.get_config())
  train_source, train_frames = _load("learn_sample.py")._train_frames(sample.get_config())
  to_8bit = lambda x: np.round((np.clip(x.astype(np.float64), -1, 1) + 1) * 127.5)
  mse = ((to_8bit(train_source[1:]) - to_8bit(train_frames[1:])) ** 2).mean(axis=(1, 2, 3))
  assert train["copy frame 0"]["psnr"] == pytest.approx(
      np.mean(10 * np.log10(255.0**2 / mse)), abs=2e-3)
  mse = ((to_8bit(sources) - to_8bit(targets)) ** 2).reshape(len(targets), -1).mean(axis=1)
  np.testing.assert_allclose(results["copy source"]["psnr_per_frame"],
                             10 * np.log10(255.0**2 / mse), atol=2e-3)
  # The oracle: per held-out frame, the best PSNR any train frame gives (numpy, 8-bit).
  errors = ((to_8bit(targets)[:, None] - to_8bit(train_frames)[None]) ** 2).mean(axis=(2, 3, 4))
  np.testing.assert_allclose(results["nearest train frame"]["psnr_per_frame"],
                             10 * np.log10(255.0**2 / errors.min(axis=1)), atol=2e-3)


def test_learn_sample_benchmark_does_not_score_the_source_frame():
  # A frame equal to its source would give copy-source a 148 dB frame in the mean.
  from mcc_jax.configs import sample  # pylint: disable=import-outside-toplevel
  sources, targets = _load("learn_sample.py")._test_frames(sample.get_config())
  assert sources.shape == targets.shape == (23, 64, 64, 3)
  difference = np.abs(sources - targets).reshape(len(targets), -1).max(axis=1)
  assert np.all(difference > 0.05)


def test_learn_sample_plot_draws_the_curve_and_every_baseline(tmp_path):
  plot = _load("learn_sample.py")._plot
  curve = [{"minutes": m, "psnr": p, "raw": {"psnr": p - 1}} for m, p in ((0, 9.0), (3, 20.0))]
  results = {"copy source": {"psnr": 25.3}, "keypoint flow only": {"psnr": 21.0},
             "self (frame drives itself)": {"psnr": 26.0}}
  args = ["--config.losses.l1_weight=10"] * 12   # a title longer than the figure is wide
  train = {"from frame 0": {"psnr": 30.3}}
  figure = plot(str(tmp_path / "curve.png"), curve, results, args, train)
  assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  # Each baseline is a horizontal line at its PSNR; the title wraps instead of running off.
  axes = figure.axes[0]
  levels = sorted(line.get_ydata()[0] for line in axes.lines[2:])
  assert levels == [21.0, 25.3, 26.0, 30.3]
  assert axes.get_title().count("\n") >= 2
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  plt.close(figure)


def test_learn_sample_benchmark_refuses_an_unknown_config_field():
  result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "learn_sample.py"),
                           "--minutes", "0", "--config.optimizer.learning_rat=1e-3"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
  assert result.returncode != 0
  assert "learning_rat" in result.stderr


def test_animate_benchmark_reports_every_stage(tmp_path, capsys):
  # In this process: the tiny model's programs are those the animate tests compiled.
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
  # The ONNX export in onnxruntime, beside JAX; batch-1 latency of both (3 frames after
  # the untimed first).
  assert entry["latency_frames"] == 3
  for figure in ("jax_latency_ms", "jax_latency_p90_ms", "export_seconds", "export_mib",
                 "onnxruntime_end_to_end_fps", "onnxruntime_inference_fps",
                 "onnxruntime_latency_ms", "onnxruntime_latency_p90_ms"):
    assert entry[figure] > 0, figure
  assert entry["onnxruntime_end_to_end_fps"] <= entry["onnxruntime_inference_fps"]


def test_animate_memory_benchmark_writes_one_row_per_length(tmp_path):
  out = _run("animate_memory.py", "--seconds", "0.4", "0.8", "--json",
             str(tmp_path / "memory.json"))
  assert "peak ratio longest/shortest" in out
  figures = json.loads((tmp_path / "memory.json").read_text())
  rows = figures["rows"]
  assert [row["driving_frames"] for row in rows] == [10, 20]
  # One output frame per driving frame, read back from the written videos.
  assert [row["output_frames"] for row in rows] == [10, 20]
  assert all(row["peak_mib"] > 100 and row["frames_per_second"] > 0 for row in rows)
  assert figures["peak_ratio"] == pytest.approx(rows[1]["peak_mib"] / rows[0]["peak_mib"])
  assert figures["target_met"] == (figures["peak_ratio"] <= figures["target_ratio"])
