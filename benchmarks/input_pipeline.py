"""Training-pair throughput of the input pipeline from PNG folders, mp4 files and TFDS.

Renders a synthetic talking-head dataset (``data_pipelines.sources.synthetic``), stores
it three ways in a temporary directory (frame folders of PNGs, one H.264 mp4 per video,
and the TFDS records built from the PNG tree) and times the training pipeline on each
with the default augmentations (id sampling, horizontal and time flips), twice:

* warm: every data file is read once before the pass, so all reads come from the
  page cache (the files are small next to the machine's memory);
* cold: the data files' pages are dropped from the page cache before the pass and
  again every ``--evict-interval`` seconds during it (by a helper process calling
  ``posix_fadvise(POSIX_FADV_DONTNEED)`` on every file), so that reads keep going to
  the disk, as they do for a dataset larger than memory. The first drop writes
  ``3`` to ``/proc/sys/vm/drop_caches`` when that is permitted (root) and uses
  ``posix_fadvise`` otherwise (``--cold-method``); the fraction of the files' pages
  still resident right after it (``mincore``) is reported.

  python benchmarks/input_pipeline.py [--image-size 256] [--cache both|warm|cold]
      [--json results.json]

With ``--json PATH`` it writes ``{"png": {"warm": {"pairs_per_sec": ...},
"cold": {...}}, "mp4": {...}, "tfds": {...}}`` plus the settings (the data, the
method that dropped the cache).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import platform
import subprocess
import sys
import tempfile
import time

import av
from PIL import Image

import data_pipelines
from data_pipelines.sources.synthetic import synthetic_videos
from data_pipelines.sources.tfds.builder import build_tfds_dataset

FORMATS = ("png", "mp4", "tfds")
# The dataset kind (datasets.name) that reads each storage format.
DATASET_KIND = {"png": "folder", "mp4": "folder", "tfds": "tfds"}
CACHE_STATES = ("warm", "cold")
DATA_LABEL = "synthetic talking-head videos (data_pipelines.sources.synthetic)"

# Run by a helper process during a cold pass: drops the listed files' pages again and
# again until it is terminated. A process of its own, so that it never holds the GIL of
# the Python readers it is measured against.
_EVICT_LOOP = """
import os, sys, time
paths = open(sys.argv[1], encoding="utf-8").read().splitlines()
interval = float(sys.argv[2])
while True:
  for path in paths:
    try:
      fd = os.open(path, os.O_RDONLY)
    except OSError:
      continue
    try:
      os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
      os.close(fd)
  time.sleep(interval)
"""


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
  parser.add_argument("--cache", choices=("both",) + CACHE_STATES, default="both",
                      help="Page-cache state(s) to measure each format in.")
  parser.add_argument("--cold-method", choices=("auto", "drop_caches", "fadvise"),
                      default="auto",
                      help="How the cache is dropped before a cold pass: auto uses "
                           "/proc/sys/vm/drop_caches where permitted, else posix_fadvise.")
  parser.add_argument("--evict-interval", type=float, default=0.1,
                      help="Seconds between drops of the data files' pages during a cold "
                           "pass; 0 drops them only before the pass.")
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


def data_files(root: str) -> list[str]:
  """Every file under ``root``, sorted."""
  return sorted(os.path.join(folder, name) for folder, _, names in os.walk(root)
                for name in names)


def resident_fraction(paths: list[str]) -> float | None:
  """Fraction of the pages of ``paths`` in the page cache (``mincore``); None if unknown."""
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
  except (AttributeError, OSError):
    return None
  page = os.sysconf("SC_PAGE_SIZE")
  resident = total = 0
  for path in paths:
    size = os.path.getsize(path)
    if size == 0:
      continue
    pages = (size + page - 1) // page
    fd = os.open(path, os.O_RDONLY)
    try:
      address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
      if address is None or address == ctypes.c_void_p(-1).value:
        return None
      vector = (ctypes.c_ubyte * pages)()
      status = libc.mincore(address, size, vector)
      libc.munmap(address, size)
      if status != 0:
        return None
      resident += sum(byte & 1 for byte in vector)
      total += pages
    finally:
      os.close(fd)
  return resident / total if total else None


def read_files(paths: list[str]) -> None:
  """Reads every file once, which puts it in the page cache."""
  for path in paths:
    with open(path, "rb") as stream:
      while stream.read(1 << 20):
        pass


def fadvise_dontneed(paths: list[str]) -> None:
  """Drops the (clean) page-cache pages of every file; no privileges needed."""
  for path in paths:
    fd = os.open(path, os.O_RDONLY)
    try:
      os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
      os.close(fd)


def drop_page_cache(paths: list[str], method: str) -> str:
  """Drops the files' pages from the page cache (dirty pages are written first).

  Args:
    paths: the data files.
    method: ``'drop_caches'`` (the whole page cache, needs root), ``'fadvise'`` (these
      files only) or ``'auto'`` (the first where permitted, else the second).

  Returns:
    The method used.
  """
  os.sync()
  used = "fadvise"
  if method in ("auto", "drop_caches"):
    try:
      with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as stream:
        stream.write("3\n")
      used = "drop_caches"
    except OSError:
      if method == "drop_caches":
        raise
  # Also per file: cheap, and the only way where drop_caches is not permitted.
  fadvise_dontneed(paths)
  return used


def measure(name: str, root: str, args: argparse.Namespace,
            cache: str = "warm") -> dict[str, float]:
  """Times the training pipeline on one storage format.

  Args:
    name: ``'folder'`` or ``'tfds'`` (the dataset name).
    root: the dataset root.
    args: the benchmark settings.
    cache: ``'warm'`` (files read into the page cache first) or ``'cold'`` (their pages
      dropped before and during the pass).

  Returns:
    ``{'pairs_per_sec', 'seconds', 'pairs', 'first_batch_sec', 'resident_at_start'}``,
    and for a cold pass ``'drop_method'`` and ``'evict_interval_sec'``.
  """
  config = data_pipelines.datasets_config(name=name, root=root,
                                          image_size=args.image_size)
  paths = data_files(root)
  extra = {}
  evictor = None
  if cache == "warm":
    read_files(paths)
  else:
    extra["drop_method"] = drop_page_cache(paths, args.cold_method)
    extra["evict_interval_sec"] = args.evict_interval
  extra["resident_at_start"] = resident_fraction(paths)
  if cache == "cold" and args.evict_interval > 0:
    listing = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8")
    with listing:
      listing.write("\n".join(paths))
    evictor = subprocess.Popen([sys.executable, "-c", _EVICT_LOOP, listing.name,
                                str(args.evict_interval)])
  try:
    result = _time_pipeline(config, args)
  finally:
    if evictor is not None:
      evictor.terminate()
      evictor.wait()
      os.unlink(listing.name)
  result.update(extra)
  return result


def _time_pipeline(config, args: argparse.Namespace) -> dict[str, float]:
  start = time.perf_counter()
  dataset = data_pipelines.build_train_pipeline(config, args.batch_size, seed=0,
                                                process_index=0, process_count=1)
  batches = dataset.as_numpy_iterator()
  next(batches)
  first_batch = time.perf_counter() - start
  for _ in range(args.warmup_batches):
    next(batches)
  # At least one batch is timed, however short the window: a process that is
  # descheduled for the whole window still measures a rate.
  pairs, start = 0, time.perf_counter()
  while True:
    pairs += next(batches)["source"].shape[0]
    if time.perf_counter() - start >= args.seconds:
      break
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
    caches = CACHE_STATES if args.cache == "both" else (args.cache,)
    data_bytes = {fmt: sum(os.path.getsize(path) for path in data_files(roots[fmt]))
                  for fmt in formats}
    results = {}
    for fmt in formats:
      results[fmt] = {}
      for cache in caches:
        results[fmt][cache] = measure(DATASET_KIND[fmt], roots[fmt],
                                      args, cache)
        print(f"  {fmt} ({cache} cache): {results[fmt][cache]['pairs_per_sec']:.1f} pairs/s",
              flush=True)
  print()
  print(f"training pairs per second from {args.identities * args.videos_per_identity} "
        f"{DATA_LABEL}, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
        f"{os.cpu_count()} CPU cores")
  print("data: " + ", ".join(f"{fmt} {size / 2**20:.0f} MiB" for fmt, size in data_bytes.items()))
  for fmt, by_cache in results.items():
    cold = by_cache.get("cold")
    if cold:
      print(f"cold cache for {fmt}: {cold['drop_method']} before the pass "
            f"(resident afterwards: {_percent(cold['resident_at_start'])}), posix_fadvise "
            f"every {args.evict_interval} s during it")
  header = f"{'source':<8}"
  for cache in caches:
    header += f" {cache + ' pairs/s':>14} {'first batch (s)':>16}"
  print(header)
  for fmt, by_cache in results.items():
    line = f"{fmt:<8}"
    for cache in caches:
      line += (f" {by_cache[cache]['pairs_per_sec']:>14.1f} "
               f"{by_cache[cache]['first_batch_sec']:>16.2f}")
    print(line)
  if args.json:
    payload = dict(results)
    payload["settings"] = {
        "data": DATA_LABEL,
        "image_size": args.image_size, "batch_size": args.batch_size,
        "videos": args.identities * args.videos_per_identity, "frames": args.frames,
        "seconds": args.seconds, "caches": list(caches),
        "data_bytes": data_bytes,
        "cold_method": args.cold_method, "evict_interval_sec": args.evict_interval,
        "cpu_count": os.cpu_count(), "machine": platform.machine()}
    with open(args.json, "w", encoding="utf-8") as stream:
      json.dump(payload, stream, indent=2)
    print(f"wrote {args.json}")
  return 0


def _percent(fraction) -> str:
  return "unknown" if fraction is None else f"{100 * fraction:.1f}%"


if __name__ == "__main__":
  sys.exit(main())
