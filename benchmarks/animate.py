"""Frames per second of ``mcc-jax animate``: end to end, and each stage alone.

    python benchmarks/animate.py [--configs configs/tiny.py configs/vox256.py]
        [--frames 48] [--batch-size 8] [--json PATH]

For each configuration a checkpoint with random weights (speed does not depend on
them) is written to a temporary directory, and the sample clip (176x144, H.264) serves
as the driving video. The timed quantities, in one process after one untimed run that
compiles the programs:

* end to end: the ``mcc-jax animate`` command (decode, crop and resize, keypoints,
  generation, H.264 encoding, writing), frames written per second;
* decode: reading and resizing the driving video alone;
* inference: keypoints and generation alone, on frames already in memory;
* encode: writing the generated frames as H.264 alone.
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


def measure(config_path: str, frames: int, batch_size: int, workdir: pathlib.Path) -> dict:
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
  device = jax.devices()[0]
  return {"config": name, "image_size": size, "frames": count, "batch_size": batch_size,
          "end_to_end_fps": count / end_to_end, "decode_fps": count / decode,
          "inference_fps": count / inference_seconds, "encode_fps": count / encode,
          "backend": jax.default_backend(), "device": device.device_kind,
          "weights": "random"}


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
  parser.add_argument("--json", type=pathlib.Path, default=None)
  args = parser.parse_args(argv)
  if args.frames < 1 or args.batch_size < 1:
    parser.error("--frames and --batch-size must be at least 1")
  results = []
  with tempfile.TemporaryDirectory() as directory:
    for config_path in args.configs:
      results.append(measure(config_path, args.frames, args.batch_size, pathlib.Path(directory)))
  device = jax.devices()[0]
  print(f"\nbackend {jax.default_backend()} ({device.device_kind}); random weights; the sample "
        f"clip (176x144 H.264) as driving video; frames per second")
  print(f"{'config':>8s} {'size':>5s} {'frames':>6s} {'end to end':>11s} {'decode':>8s} "
        f"{'inference':>10s} {'encode':>8s}")
  for r in results:
    print(f"{r['config']:>8s} {r['image_size']:5d} {r['frames']:6d} {r['end_to_end_fps']:11.2f} "
          f"{r['decode_fps']:8.1f} {r['inference_fps']:10.2f} {r['encode_fps']:8.1f}")
  if args.json is not None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({r["config"]: r for r in results}, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
