"""Training-pair throughput of the input pipeline from PNG folders, mp4 files and TFDS.

Renders a synthetic talking-head dataset, stores it three ways in a temporary
directory (frame folders of PNGs, one H.264 mp4 per video, and the TFDS records built
from the PNG tree) and times the training pipeline on each with the default
augmentations (id sampling, horizontal and time flips).

  python benchmarks/input_pipeline.py [--image-size 256] [--json results.json]

With ``--json PATH`` it writes ``{"png": {"pairs_per_sec": ...}, "mp4": {...},
"tfds": {...}}`` plus the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import av
from PIL import Image

# Runs from a checkout without installation.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import data_pipelines  # noqa: E402
from data_pipelines.synthetic_dataset import synthetic_videos  # noqa: E402
from data_pipelines.tfds_builder import build_tfds_dataset  # noqa: E402

FORMATS = ("png", "mp4", "tfds")


def parse_args(argv=None) -> argparse.Namespace:
  """Parses the command line.

  Args:
    argv: arguments without the program name; ``sys.argv[1:]`` if None.

  Returns:
    The settings.
  """
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--image-size", type=int, default=256)
  parser.add_argument("--identities", type=int, default=8,
                      help="Synthetic persons (each with --videos-per-identity videos).")
  parser.add_argument("--videos-per-identity", type=int, default=2)
  parser.add_argument("--frames", type=int, default=64, help="Frames per video.")
  parser.add_argument("--batch-size", type=int, default=16)
  parser.add_argument("--seconds", type=float, default=15.0,
                      help="Measuring time per format, after the warm-up.")
  parser.add_argument("--warmup-batches", type=int, default=5)
  parser.add_argument("--formats", default=",".join(FORMATS))
  parser.add_argument("--workdir", default=None,
                      help="Where to write the data (a temporary directory if unset).")
  parser.add_argument("--json", default=None, help="Write the figures to this file.")
  return parser.parse_args(argv)


def write_dataset(workdir: str, args: argparse.Namespace) -> dict[str, str]:
  """Renders the videos and writes the PNG tree, the mp4 tree and the TFDS records.

  Args:
    workdir: output directory.
    args: the benchmark settings.

  Returns:
    ``{'png': root, 'mp4': root, 'tfds': data_dir}``.
  """
  png_root = os.path.join(workdir, "png")
  mp4_root = os.path.join(workdir, "mp4")
  videos = synthetic_videos("train", args.image_size, seed=0,
                            num_identities=args.identities,
                            videos_per_identity=args.videos_per_identity,
                            num_frames=args.frames)
  for video in videos:
    frames = video.read_all()
    folder = os.path.join(png_root, "train", video.name)
    os.makedirs(folder, exist_ok=True)
    for index, frame in enumerate(frames):
      Image.fromarray(frame).save(os.path.join(folder, f"{index:07d}.png"))
    os.makedirs(os.path.join(mp4_root, "train"), exist_ok=True)
    with av.open(os.path.join(mp4_root, "train", video.name + ".mp4"), "w") as container:
      stream = container.add_stream("libx264", rate=25)
      stream.width = stream.height = args.image_size
      stream.pix_fmt = "yuv420p"
      stream.options = {"crf": "18"}
      for frame in frames:
        container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
      container.mux(stream.encode())
  tfds_root = os.path.join(workdir, "tfds")
  build_tfds_dataset(png_root, tfds_root, args.image_size)
  return {"png": png_root, "mp4": mp4_root, "tfds": tfds_root}


def measure(name: str, root: str, args: argparse.Namespace) -> dict[str, float]:
  """Times the training pipeline on one storage format.

  Args:
    name: ``'folder'`` or ``'tfds'`` (the dataset name).
    root: the dataset root.
    args: the benchmark settings.

  Returns:
    ``{'pairs_per_sec', 'seconds', 'pairs', 'first_batch_sec'}``.
  """
  config = data_pipelines.datasets_config(name=name, root=root,
                                          image_size=args.image_size)
  start = time.perf_counter()
  dataset = data_pipelines.build_train_pipeline(config, args.batch_size, seed=0,
                                                process_index=0, process_count=1)
  batches = dataset.as_numpy_iterator()
  next(batches)
  first_batch = time.perf_counter() - start
  for _ in range(args.warmup_batches):
    next(batches)
  pairs, start = 0, time.perf_counter()
  while time.perf_counter() - start < args.seconds:
    batch = next(batches)
    pairs += batch["source"].shape[0]
  elapsed = time.perf_counter() - start
  del batches
  return {"pairs_per_sec": pairs / elapsed, "seconds": elapsed, "pairs": pairs,
          "first_batch_sec": first_batch}


def main(argv=None) -> int:
  """Runs the benchmark and prints the table.

  Args:
    argv: arguments without the program name; ``sys.argv[1:]`` if None.

  Returns:
    The exit status.
  """
  args = parse_args(argv)
  formats = [f for f in args.formats.split(",") if f]
  unknown = sorted(set(formats) - set(FORMATS))
  if unknown:
    raise SystemExit(f"--formats: unknown {unknown}; choose from {FORMATS}")
  with tempfile.TemporaryDirectory() as scratch:
    workdir = args.workdir or scratch
    start = time.perf_counter()
    roots = write_dataset(workdir, args)
    print(f"wrote {args.identities * args.videos_per_identity} videos x {args.frames} "
          f"frames at {args.image_size}x{args.image_size} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    results = {}
    for fmt in formats:
      results[fmt] = measure("tfds" if fmt == "tfds" else "folder", roots[fmt], args)
      print(f"  {fmt}: {results[fmt]['pairs_per_sec']:.1f} pairs/s", flush=True)
  print()
  print(f"training pairs per second, {args.image_size}x{args.image_size}, batch "
        f"{args.batch_size}, {os.cpu_count()} CPU cores")
  print(f"{'source':<8} {'pairs/s':>9} {'first batch (s)':>16}")
  for fmt, result in results.items():
    print(f"{fmt:<8} {result['pairs_per_sec']:>9.1f} {result['first_batch_sec']:>16.2f}")
  if args.json:
    payload = dict(results)
    payload["settings"] = {
        "image_size": args.image_size, "batch_size": args.batch_size,
        "videos": args.identities * args.videos_per_identity, "frames": args.frames,
        "cpu_count": os.cpu_count(), "machine": platform.machine()}
    with open(args.json, "w", encoding="utf-8") as stream:
      json.dump(payload, stream, indent=2)
    print(f"wrote {args.json}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
