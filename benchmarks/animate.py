"""Frames per second of ``mcc-jax animate``: end to end, and each stage alone; JAX
against the ONNX export in onnxruntime; batch-1 latency of both.

    python benchmarks/animate.py [--configs configs/tiny.py configs/vox256.py]
        [--frames 48] [--batch-size 8] [--latency-frames 16] [--no-onnxruntime]
        [--json PATH]

For each configuration a checkpoint with random weights (speed does not depend on
them) is written to a temporary directory, and the sample clip (176x144, H.264) serves
as the driving video. The timed quantities, in one process after one untimed run that
compiles the programs:

* end to end: the ``mcc-jax animate`` command (decode, crop and resize, keypoints,
  generation, H.264 encoding, writing), frames written per second;
* decode: reading and resizing the driving video alone;
* inference: keypoints and generation alone, on frames already in memory;
* encode: writing the generated frames as H.264 alone.

With onnxruntime (the ``export`` extra; ``--no-onnxruntime`` leaves it out) the model
is also exported as ONNX (``mcc-jax export``, timed) and, in the same process:

* onnxruntime end to end: ``mcc-jax animate --exported``;
* onnxruntime inference: :class:`~mcc_jax.export.onnx_animator.OnnxAnimator` on the
  frames in memory, as JAX's inference above;
* batch-1 latency, JAX and onnxruntime (a live camera): frames arrive one at a time and
  each is animated alone (its keypoints, relative motion, one generator call); the
  time from a frame to its generated frame, median and 90th percentile, after one
  untimed frame.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

import jax
import numpy as np

from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax import cli
from mcc_jax import config_cli
from mcc_jax import inference
from mcc_jax import media
from mcc_jax.checkpoints.model_files import save_model_checkpoint
from mcc_jax.testing.random_model import random_variables


ROOT = pathlib.Path(__file__).resolve().parents[1]

def _write_checkpoint(config, directory: pathlib.Path) -> None:
  variables = random_variables(config.model, seed=0)
  save_model_checkpoint(directory, jax.tree.map(np.asarray, variables), config)


def _seconds(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _latencies_ms(animator, source: np.ndarray, frames: np.ndarray) -> np.ndarray:
  """Milliseconds from each frame's arrival to its generated frame, at batch size 1."""
  arrived = []

  def camera():
    for frame in frames:
      arrived.append(time.perf_counter())
      yield frame

  latencies = []
  for batch in animator.animate(source, camera(), batch_size=1):
    latencies.append(time.perf_counter() - arrived[batch.start])
  return 1000.0 * np.asarray(latencies)


def _latency_figures(prefix: str, latencies_ms: np.ndarray) -> dict:
  return {f"{prefix}_latency_ms": float(np.median(latencies_ms)),
          f"{prefix}_latency_p90_ms": float(np.percentile(latencies_ms, 90))}


def measure_onnxruntime(name: str, model, argv: list[str], source: np.ndarray,
                        driving: np.ndarray, batch_size: int, latency_frames: int,
                        workdir: pathlib.Path) -> dict:
  """The onnxruntime figures (see the module docstring) of a loaded model.

  Args:
    name: the configuration's name.
    model: the loaded model.
    argv: the JAX run's ``mcc-jax animate --checkpoint PATH ...`` arguments.
    source: the source at the model's size.
    driving: the driving frames at the model's size.
    batch_size: frames per generator call.
    latency_frames: frames animated one at a time.
    workdir: where to write the export and the video.
  """
  from mcc_jax.export.exporter import export_model  # pylint: disable=import-outside-toplevel
  from mcc_jax.export.onnx_animator import OnnxAnimator  # pylint: disable=import-outside-toplevel

  exported = workdir / f"{name}_onnx"
  export_seconds = _seconds(lambda: export_model(model, exported, "onnx", log=lambda _: None))
  size_mib = sum(p.stat().st_size for p in exported.iterdir()) / 2**20
  onnx_argv = ["animate", "--exported", str(exported)] + argv[3:]
  onnx_argv[onnx_argv.index("--output") + 1] = str(workdir / "onnx_result.mp4")
  cli.main(onnx_argv)  # untimed: onnxruntime's first runs
  end_to_end = _seconds(lambda: cli.main(onnx_argv))
  animator = OnnxAnimator(exported)

  def infer():
    keypoints = animator.keypoints(driving, batch_size=batch_size)
    return [b.frames for b in animator.animate(source, driving, batch_size=batch_size,
                                               driving_keypoints=keypoints)]

  infer()
  inference_seconds = _seconds(infer)
  latencies = _latencies_ms(animator, source, driving[:latency_frames + 1])[1:]
  count = len(driving)
  return {"export_seconds": export_seconds, "export_mib": size_mib,
          "onnxruntime_end_to_end_fps": count / end_to_end,
          "onnxruntime_inference_fps": count / inference_seconds,
          **_latency_figures("onnxruntime", latencies)}


def measure(config_path: str, frames: int, batch_size: int, workdir: pathlib.Path,
            with_onnxruntime: bool = True, latency_frames: int = 16) -> dict:
  config = config_cli.load_config(config_path)
  size = config.model.image_size
  name = pathlib.Path(config_path).stem
  checkpoint = workdir / f"{name}_checkpoint"
  _write_checkpoint(config, checkpoint)
  clip = sample_clip.decode_clip()
  count = min(frames, len(clip))
  driving_path = workdir / "driving.mp4"
  media.write_video(driving_path, clip[:count], sample_clip_rate())
  source_path = workdir / "source.png"
  from PIL import Image  # pylint: disable=import-outside-toplevel
  Image.fromarray(clip[-1]).save(source_path)
  output = workdir / f"{name}_result.mp4"
  argv = ["animate", "--checkpoint", str(checkpoint), "--source", str(source_path),
          "--driving", str(driving_path), "--output", str(output), "--batch-size",
          str(batch_size)]
  cli.main(argv)  # compiles
  end_to_end = _seconds(lambda: cli.main(argv))

  resize = lambda f: media.crop_and_resize(f, None, size)
  decoded = {}
  decode = _seconds(lambda: decoded.setdefault("clip", media.read_video(driving_path, resize)))
  driving = decoded["clip"].frames
  model = inference.load_model(checkpoint=checkpoint)
  animator = inference.Animator(model)
  source = media.crop_and_resize(media.read_image(source_path), None, size)

  def infer():
    keypoints = animator.keypoints(driving, batch_size=batch_size)
    return [b.frames for b in animator.animate(source, driving, batch_size=batch_size,
                                               driving_keypoints=keypoints)]

  infer()
  generated = {}
  inference_seconds = _seconds(lambda: generated.setdefault("frames", infer()))
  frames_out = np.concatenate(generated["frames"])
  encode = _seconds(lambda: media.write_video(workdir / "encode.mp4", frames_out,
                                               sample_clip_rate()))
  latencies = _latencies_ms(animator, source, driving[:latency_frames + 1])[1:]
  device = jax.devices()[0]
  figures = {"config": name, "image_size": size, "frames": count, "batch_size": batch_size,
             "end_to_end_fps": count / end_to_end, "decode_fps": count / decode,
             "inference_fps": count / inference_seconds, "encode_fps": count / encode,
             **_latency_figures("jax", latencies), "latency_frames": len(latencies),
             "backend": jax.default_backend(), "device": device.device_kind,
             "cpu": _cpu_name(), "weights": "random"}
  if with_onnxruntime:
    figures.update(measure_onnxruntime(name, model, argv, source, driving, batch_size,
                                       latency_frames, workdir))
  return figures


def _cpu_name() -> str:
  """The processor's model name (Linux), for the record."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return "unknown"


def sample_clip_rate():
  return media.read_video(sample_clip.clip_path(), max_frames=1).fps


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--configs", nargs="+",
                      default=[str(ROOT / "configs" / "tiny.py"),
                               str(ROOT / "configs" / "vox256.py")])
  parser.add_argument("--frames", type=int, default=48,
                      help="Driving frames (the sample clip has 120).")
  parser.add_argument("--batch-size", type=int, default=8)
  parser.add_argument("--latency-frames", type=int, default=16,
                      help="Frames animated one at a time for the batch-1 latency.")
  parser.add_argument("--onnxruntime", action=argparse.BooleanOptionalAction, default=None,
                      help="Also export as ONNX and time onnxruntime (default: when the "
                      "`export` extra is installed).")
  parser.add_argument("--json", type=pathlib.Path, default=None)
  args = parser.parse_args(argv)
  if args.frames < 1 or args.batch_size < 1 or args.latency_frames < 1:
    parser.error("--frames, --batch-size and --latency-frames must be at least 1")
  with_onnxruntime = args.onnxruntime
  if with_onnxruntime is None:
    from mcc_jax import extras  # pylint: disable=import-outside-toplevel
    with_onnxruntime = not extras.missing_modules("export")
  results = []
  with tempfile.TemporaryDirectory() as directory:
    for config_path in args.configs:
      results.append(measure(config_path, args.frames, args.batch_size, pathlib.Path(directory),
                             with_onnxruntime, args.latency_frames))
  device = jax.devices()[0]
  print(f"\nbackend {jax.default_backend()} ({device.device_kind}, {_cpu_name()}); random "
        f"weights; the sample clip (176x144 H.264) as driving video; frames per second")
  print(f"{'config':>8s} {'size':>5s} {'frames':>6s} {'end to end':>11s} {'decode':>8s} "
        f"{'inference':>10s} {'encode':>8s}")
  for r in results:
    print(f"{r['config']:>8s} {r['image_size']:5d} {r['frames']:6d} {r['end_to_end_fps']:11.2f} "
          f"{r['decode_fps']:8.1f} {r['inference_fps']:10.2f} {r['encode_fps']:8.1f}")
  print(f"\nJAX against onnxruntime (batch {args.batch_size} for frames per second; latency: "
        f"batch 1, median and 90th percentile ms per frame)")
  print(f"{'config':>8s} {'jax e2e':>8s} {'ort e2e':>8s} {'jax inf':>8s} {'ort inf':>8s} "
        f"{'jax lat':>8s} {'p90':>6s} {'ort lat':>8s} {'p90':>6s} {'export s':>9s}")
  for r in results:
    ort = lambda key, fmt, r=r: format(r[key], fmt) if key in r else "-"
    print(f"{r['config']:>8s} {r['end_to_end_fps']:8.2f} "
          f"{ort('onnxruntime_end_to_end_fps', '8.2f'):>8s} {r['inference_fps']:8.2f} "
          f"{ort('onnxruntime_inference_fps', '8.2f'):>8s} {r['jax_latency_ms']:8.1f} "
          f"{r['jax_latency_p90_ms']:6.1f} {ort('onnxruntime_latency_ms', '8.1f'):>8s} "
          f"{ort('onnxruntime_latency_p90_ms', '6.1f'):>6s} {ort('export_seconds', '9.1f'):>9s}")
  if args.json is not None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({r["config"]: r for r in results}, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
