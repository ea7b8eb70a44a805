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

Two cases measure what a VoxCeleb-sized run meets (``--case``):

* ``many-videos``: a tree of ``--many-videos`` (20,000) frame folders against one of
  ``--few-videos`` (100), each folder ``--frames-per-folder`` tiny frames (hard links
  to one PNG, so the tree is written in seconds);
* ``long-clips``: ``--long-clips`` H.264 mp4 files of ``--long-clip-frames`` (2,000)
  frames each, a keyframe every 250 frames (libx264's default interval, scene-cut
  keyframes off).

Each of their measurements runs the training pipeline in a fresh Python process and
reports the seconds from `build_train_pipeline` to the first batch (listing the
split included), pairs per second afterwards and the process's peak resident memory
(``ru_maxrss``, TensorFlow included); the RSS right after the imports is given beside
it.

  python benchmarks/input_pipeline.py --case many-videos [--json results.json]
  python benchmarks/input_pipeline.py --case long-clips [--json results.json]

``many-videos-train`` runs one whole training step instead: ``mcc-jax train`` with
``configs/tiny.py`` (64x64 frames, a test split of 4 videos, evaluation and a checkpoint
at the end) on the two trees, each in a fresh process, and reports the command's wall
time (start-up, the step, evaluation, saving; the compiled programs come from a cache
filled by a first, unmeasured run) and its peak resident memory:

  python benchmarks/input_pipeline.py --case many-videos-train [--json results.json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import av
import numpy as np
from PIL import Image

from mcc_jax import data_pipelines
from mcc_jax.data_pipelines.sources.synthetic import synthetic_videos
from mcc_jax.data_pipelines.sources.tfds.builder import build_tfds_dataset

FORMATS = ("png", "mp4", "tfds")
# The dataset kind (datasets.name) that reads each storage format.
DATASET_KIND = {"png": "folder", "mp4": "folder", "tfds": "tfds"}
CACHE_STATES = ("warm", "cold")
CASES = ("formats", "many-videos", "long-clips", "many-videos-train")
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
  parser.add_argument("--case", choices=CASES, default="formats",
                      help="formats: PNG, mp4 and TFDS from synthetic heads (above); "
                           "many-videos: a 20,000-folder tree against a 100-folder one; "
                           "long-clips: mp4 clips of 2,000 frames.")
  parser.add_argument("--many-videos", type=int, default=20000)
  parser.add_argument("--few-videos", type=int, default=100)
  parser.add_argument("--frames-per-folder", type=int, default=4)
  parser.add_argument("--folder-frame-size", type=int, default=16,
                      help="Side of the frames of the many-videos trees (and the "
                           "pipeline's image size there).")
  parser.add_argument("--long-clips", type=int, default=4)
  parser.add_argument("--long-clip-frames", type=int, default=2000)
  parser.add_argument("--long-clip-size", type=int, default=256)
  parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
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


# Videos whose frames are hard links to the same file.
_VIDEOS_PER_LINKED_FILE = 1000


def write_many_videos(root: str, count: int, frames: int, size: int) -> str:
  """Writes a tree of ``count`` frame folders sharing one PNG through hard links.

  Args:
    root: the dataset root to create (``root/train/<video>/<frame>.png``).
    count: number of videos; named ``id<5 digits>#<clip>`` with two clips a person.
    frames: frames per folder.
    size: side of the frame.

  Returns:
    The root.
  """
  os.makedirs(os.path.join(root, "train"), exist_ok=True)
  ramp = np.linspace(0, 255, size * size * 3).reshape(size, size, 3).astype(np.uint8)
  for video in range(count):
    if video % _VIDEOS_PER_LINKED_FILE == 0:
      # A file system limits the links to one file (ext4: 65,000).
      frame = os.path.join(root, f"frame{video}.png")
      Image.fromarray(ramp).save(frame)
    folder = os.path.join(root, "train", f"id{video // 2:05d}#{video % 2}")
    os.mkdir(folder)
    for index in range(frames):
      os.link(frame, os.path.join(folder, f"{index:07d}.png"))
  return root


def write_long_clips(root: str, count: int, frames: int, size: int) -> str:
  """Writes ``count`` H.264 clips of ``frames`` frames of a moving pattern.

  Args:
    root: the dataset root to create (``root/train/<clip>.mp4``).
    count: number of clips.
    frames: frames per clip.
    size: frame side.

  Returns:
    The root.
  """
  os.makedirs(os.path.join(root, "train"), exist_ok=True)
  y, x = np.mgrid[0:size, 0:size] / size
  for clip in range(count):
    path = os.path.join(root, "train", f"id{clip:05d}#0.mp4")
    with av.open(path, "w") as container:
      stream = container.add_stream("libx264", rate=25)
      stream.width = stream.height = size
      stream.pix_fmt = "yuv420p"
      # libx264's default keyframe interval (250 frames) without scene-cut keyframes,
      # which the moving pattern would otherwise trigger every 45 frames or so; a
      # talking head rarely triggers them.
      stream.options = {"crf": "23", "preset": "veryfast",
                        "x264-params": "keyint=250:scenecut=0"}
      for index in range(frames):
        phase = 0.05 * index + clip
        pattern = np.stack([np.sin(6 * x + phase), np.cos(5 * y - phase),
                            np.sin(4 * (x + y) + 2 * phase)], -1) * 100 + 128
        frame = av.VideoFrame.from_ndarray(pattern.astype(np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
      container.mux(stream.encode())
  return root


def _child_measurement(spec: dict) -> dict:
  """Runs in a fresh process: time to the first batch, pairs/s and peak RSS."""
  def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
      for line in status:
        if line.startswith("VmRSS:"):
          return int(line.split()[1]) / 1024
    return float("nan")

  import tensorflow  # pylint: disable=import-outside-toplevel,unused-import
  after_imports = rss_mib()
  config = data_pipelines.datasets_config(name="folder", root=spec["root"],
                                          image_size=spec["image_size"])
  start = time.perf_counter()
  dataset = data_pipelines.build_train_pipeline(config, spec["batch_size"], seed=0,
                                                process_index=0, process_count=1)
  batches = dataset.as_numpy_iterator()
  next(batches)
  first_batch = time.perf_counter() - start
  pairs, start = 0, time.perf_counter()
  while time.perf_counter() - start < spec["seconds"]:
    pairs += next(batches)["source"].shape[0]
  elapsed = time.perf_counter() - start
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return {"first_batch_sec": first_batch, "pairs_per_sec": pairs / elapsed,
          "pairs": pairs, "peak_rss_mib": peak, "rss_after_imports_mib": after_imports}


def measure_in_child(root: str, image_size: int, args: argparse.Namespace) -> dict:
  """Runs `_child_measurement` in a new interpreter, so peak memory is its own."""
  spec = {"root": root, "image_size": image_size, "batch_size": args.batch_size,
          "seconds": args.seconds}
  result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                           json.dumps(spec)], capture_output=True, text=True, check=False)
  if result.returncode != 0:
    raise RuntimeError(f"measurement of {root} failed:\n{result.stderr[-3000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


TRAIN_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                            "configs", "tiny.py")
TRAIN_FRAME_SIZE = 64  # configs/tiny.py's image size: frames need no resizing


def add_test_split(root: str, videos: int = 4) -> None:
  """Links the first ``videos`` train folders of ``root`` into ``root/test``."""
  for name in sorted(os.listdir(os.path.join(root, "train")))[:videos]:
    folder = os.path.join(root, "test", name)
    os.makedirs(folder)
    for frame in os.listdir(os.path.join(root, "train", name)):
      os.link(os.path.join(root, "train", name, frame), os.path.join(folder, frame))


def measure_training_step(root: str, workdir: str, cache: str) -> dict:
  """One ``mcc-jax train`` step of configs/tiny.py on the tree at ``root``.

  ``cache`` is a JAX compilation cache shared by the runs: a first, unmeasured run fills
  it, so that the measured runs differ only in their data (compiling the step takes
  minutes on a CPU and varies with the load far more than reading the data does).

  Returns:
    ``{"seconds": wall time of the command, "peak_rss_mib": its peak resident memory}``.
  """
  command = [sys.executable, "-m", "mcc_jax.cli", "train", f"--config={TRAIN_CONFIG}",
             f"--workdir={workdir}", "--config.datasets.name=folder",
             f"--config.datasets.root={root}", "--config.total_steps=1",
             "--config.eval_every_steps=1", "--config.checkpoint.every_steps=1"]
  os.makedirs(os.path.dirname(workdir), exist_ok=True)
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  start = time.perf_counter()
  with open(os.path.join(os.path.dirname(workdir), "train_log.txt"), "w") as log:
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
  seconds = time.perf_counter() - start
  if os.waitstatus_to_exitcode(status) != 0:
    with open(log.name, encoding="utf-8") as text:
      raise RuntimeError(f"training on {root} failed:\n{text.read()[-3000:]}")
  return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def run_training_case(args: argparse.Namespace) -> int:
  """Runs the many-videos-train case and prints its table."""
  rows = {}
  with tempfile.TemporaryDirectory() as scratch:
    workdir = args.workdir or scratch
    cache = os.path.join(workdir, "compilation_cache")
    roots = {}
    for count in (args.few_videos, args.many_videos):
      roots[count] = write_many_videos(os.path.join(workdir, f"videos{count}"), count,
                                       args.frames_per_folder, TRAIN_FRAME_SIZE)
      add_test_split(roots[count])
    warmup = measure_training_step(roots[args.few_videos],
                                   os.path.join(workdir, "warmup", "workdir"), cache)
    print(f"  compiling (unmeasured run): {warmup['seconds']:.0f} s", flush=True)
    for count, root in roots.items():
      rows[f"{count} videos"] = measure_training_step(
          root, os.path.join(workdir, f"run{count}", "workdir"), cache)
      print(f"  {count} videos: {rows[f'{count} videos']}", flush=True)
  few, many = rows[f"{args.few_videos} videos"], rows[f"{args.many_videos} videos"]
  print()
  print(f"one training step of configs/tiny.py (mcc-jax train, whole command), "
        f"{os.cpu_count()} CPU cores, load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
  print(f"{'data':<14} {'seconds':>9} {'peak RSS (MiB)':>15}")
  for label, row in rows.items():
    print(f"{label:<14} {row['seconds']:>9.1f} {row['peak_rss_mib']:>15.0f}")
  print(f"{args.many_videos} against {args.few_videos} videos: "
        f"{many['seconds'] - few['seconds']:+.1f} s, "
        f"{many['peak_rss_mib'] / few['peak_rss_mib']:.2f}x the peak memory")
  if args.json:
    payload = {"case": args.case, "rows": rows,
               "settings": {"config": "configs/tiny.py", "cpu_count": os.cpu_count(),
                            "machine": platform.machine(),
                            "load_average": os.getloadavg()}}
    with open(args.json, "w", encoding="utf-8") as stream:
      json.dump(payload, stream, indent=2)
    print(f"wrote {args.json}")
  return 0


def run_scale_case(args: argparse.Namespace) -> int:
  """Runs the many-videos or long-clips case and prints its table."""
  rows = {}
  with tempfile.TemporaryDirectory() as scratch:
    workdir = args.workdir or scratch
    start = time.perf_counter()
    if args.case == "many-videos":
      trees = {f"{count} videos": write_many_videos(
          os.path.join(workdir, f"videos{count}"), count, args.frames_per_folder,
          args.folder_frame_size) for count in (args.few_videos, args.many_videos)}
      image_size = args.folder_frame_size
      what = (f"frame folders of {args.frames_per_folder} {args.folder_frame_size}x"
              f"{args.folder_frame_size} PNG frames (hard links to one file)")
    else:
      trees = {f"{args.long_clips} clips": write_long_clips(
          os.path.join(workdir, "clips"), args.long_clips, args.long_clip_frames,
          args.long_clip_size)}
      image_size = args.long_clip_size
      what = (f"H.264 mp4 clips of {args.long_clip_frames} frames at "
              f"{args.long_clip_size}x{args.long_clip_size}")
    print(f"wrote the data in {time.perf_counter() - start:.0f} s", flush=True)
    for label, root in trees.items():
      rows[label] = measure_in_child(root, image_size, args)
      print(f"  {label}: {rows[label]}", flush=True)
  print()
  print(f"training pipeline on {what}, batch {args.batch_size}, {os.cpu_count()} CPU "
        f"cores, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
  print(f"{'data':<14} {'first batch (s)':>16} {'pairs/s':>9} {'peak RSS (MiB)':>15} "
        f"{'RSS after imports':>18}")
  for label, row in rows.items():
    print(f"{label:<14} {row['first_batch_sec']:>16.2f} {row['pairs_per_sec']:>9.1f} "
          f"{row['peak_rss_mib']:>15.0f} {row['rss_after_imports_mib']:>18.0f}")
  if args.json:
    payload = {"case": args.case, "rows": rows, "data": what,
               "settings": {"batch_size": args.batch_size, "seconds": args.seconds,
                            "cpu_count": os.cpu_count(), "machine": platform.machine(),
                            "load_average": os.getloadavg()}}
    with open(args.json, "w", encoding="utf-8") as stream:
      json.dump(payload, stream, indent=2)
    print(f"wrote {args.json}")
  return 0


def main(argv=None) -> int:
  """Runs the benchmark and prints the table.

  Args:
    argv: arguments without the program name; ``sys.argv[1:]`` if None.

  Returns:
    The exit status.
  """
  args = parse_args(argv)
  if args.child:
    print(json.dumps(_child_measurement(json.loads(args.child))))
    return 0
  if args.case == "many-videos-train":
    return run_training_case(args)
  if args.case != "formats":
    return run_scale_case(args)
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
