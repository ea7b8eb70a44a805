"""Peak memory and frames/s of ``mcc-jax animate`` against the driving video's length.

    python benchmarks/animate_memory.py [--seconds 12 120] [--json PATH]

``animate`` streams the driving video (decode, infer, encode batch by batch), so its
peak memory should not grow with the video's length. This writes driving videos of
the given lengths (640x360 at 25 fps, made of the sample clip's frames), animates each
with a random-weight model of ``configs/tiny.py`` (64x64) in a fresh process, and
reports each process's peak resident memory (``ru_maxrss``) and its frames per second
(the whole command: start-up, compilation, decoding, face detection with ``--crop
face``, inference and encoding). The check: the longest video's peak is at most ``MAX_PEAK_RATIO`` times the shortest's.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

# pylint: disable=wrong-import-position
from mcc_jax import media
from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax.testing.random_model import write_tiny_checkpoint

FPS = 25
FRAME_SIZE = (360, 640)  # height, width
MAX_PEAK_RATIO = 1.25

# Runs a command as its only child and prints the child's peak resident memory (KiB).
_PEAK_OF_CHILD = ("import json, resource, subprocess, sys\n"
                  "code = subprocess.run(sys.argv[1:]).returncode\n"
                  "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
                  "print(json.dumps({'returncode': code, 'peak_kib': peak}))\n")


def write_driving_video(path: pathlib.Path, seconds: float) -> int:
  """A 640x360 25-fps video of the sample clip's frames, looped (forwards and back)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  frames = np.stack([np.asarray(Image.fromarray(f).resize(FRAME_SIZE[::-1], Image.BILINEAR))
                     for f in sample_clip.decode_clip()])
  loop = np.concatenate([frames, frames[::-1]])
  count = int(round(seconds * FPS))
  with media.VideoWriter(path, FPS, crf=23) as writer:
    for start in range(0, count, len(loop)):
      writer.write(loop[:min(len(loop), count - start)])
  return count


def animate_in_a_fresh_process(checkpoint, source, driving, output, batch_size: int,
                               crop: str) -> dict:
  command = [sys.executable, "-m", "mcc_jax.cli", "animate", "--checkpoint", str(checkpoint),
             "--source", str(source), "--driving", str(driving), "--output", str(output),
             "--batch-size", str(batch_size), "--side-by-side", "--crop", crop]
  start = time.perf_counter()
  result = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILD, *command], cwd=ROOT,
                          capture_output=True, text=True, check=False)
  seconds = time.perf_counter() - start
  last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "{}"
  measured = json.loads(last)
  if measured.get("returncode") != 0:
    raise RuntimeError(f"animate failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
  return {"seconds": seconds, "peak_mib": measured["peak_kib"] / 1024}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seconds", type=float, nargs="+", default=[12.0, 120.0],
                      help="Driving video lengths in seconds (default: 12 and 120).")
  parser.add_argument("--batch-size", type=int, default=8)
  parser.add_argument("--crop", choices=("center", "face"), default="center",
                      help="animate's --crop: face adds the detection pass over the video.")
  parser.add_argument("--json", type=pathlib.Path, default=None)
  args = parser.parse_args(argv)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    checkpoint = tmp / "checkpoint"
    write_tiny_checkpoint(checkpoint, seed=0)
    source = tmp / "source.png"
    from PIL import Image  # pylint: disable=import-outside-toplevel
    Image.fromarray(sample_clip.decode_clip()[-1]).save(source)
    for seconds in args.seconds:
      driving = tmp / f"driving_{seconds:g}s.mp4"
      frames = write_driving_video(driving, seconds)
      output = tmp / f"result_{seconds:g}s.mp4"
      measured = animate_in_a_fresh_process(checkpoint, source, driving, output,
                                            args.batch_size, args.crop)
      written = len(media.read_video(output).frames)
      rows.append({"video_seconds": seconds, "driving_frames": frames,
                   "output_frames": written, "peak_mib": measured["peak_mib"],
                   "command_seconds": measured["seconds"],
                   "frames_per_second": frames / measured["seconds"]})
  ratio = rows[-1]["peak_mib"] / rows[0]["peak_mib"]
  print(f"{'video':>8} {'frames':>7} {'written':>8} {'peak MiB':>9} {'frames/s':>9}")
  for row in rows:
    print(f"{row['video_seconds']:>7g}s {row['driving_frames']:>7d} {row['output_frames']:>8d} "
          f"{row['peak_mib']:>9.0f} {row['frames_per_second']:>9.1f}")
  met = ratio <= MAX_PEAK_RATIO and all(r["output_frames"] == r["driving_frames"] for r in rows)
  print(f"peak ratio longest/shortest: {ratio:.3f} (target <= {MAX_PEAK_RATIO}); "
        f"one output frame per driving frame: "
        f"{all(r['output_frames'] == r['driving_frames'] for r in rows)}")
  if args.json:
    args.json.write_text(json.dumps({
        "rows": rows, "peak_ratio": ratio, "target_ratio": MAX_PEAK_RATIO, "target_met": met,
        "model": "configs/tiny.py, random weights, 64x64", "driving_size": list(FRAME_SIZE),
        "crop": args.crop, "batch_size": args.batch_size,
        "fps": FPS}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
