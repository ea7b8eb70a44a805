"""``mcc-jax check-data``: reads every video of a dataset and reports the bad ones.

Run it before a multi-day job: it walks ``ROOT/train`` and ``ROOT/test`` through the
same readers as the training pipeline, prints videos, persons and frames per split and
every file that cannot be used, with the reason. The exit status is 1 when it found
bad files or an unusable split (with ``--skip-bad-files`` bad files are only counted,
as the pipeline would skip them), and 2 when the root does not exist.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Declares the command's options.

  Args:
    parser: the subcommand's parser.
  """
  parser.add_argument("--root", required=True,
                      help="Dataset root holding train/ and test/ (video-preprocessing "
                           "layout).")
  parser.add_argument("--image-size", type=int, default=256,
                      help="Frame side to read at, as in datasets.image_size.")
  parser.add_argument("--splits", default="train,test",
                      help="Comma-separated split folders to check.")
  parser.add_argument("--skip-bad-files", action="store_true",
                      help="Only count bad files (as datasets.skip_bad_files=True "
                           "would); exit 0 unless a whole split is unusable.")
  parser.add_argument("--workers", type=int, default=2,
                      help="Videos decoded in parallel.")


def run(args: argparse.Namespace) -> int:
  """Checks the dataset and prints the report.

  Args:
    args: parsed options.

  Returns:
    0 if the dataset is usable as configured, 1 if not, 2 if the root is missing.
  """
  if args.image_size <= 0:
    raise SystemExit(f"--image-size must be positive, got {args.image_size}.")
  splits = [s for s in args.splits.split(",") if s]
  if not splits:
    raise SystemExit("--splits names no split.")
  from mcc_jax.data_pipelines.data_check import scan_dataset

  def progress(split: str, done: int, total: int) -> None:
    if done == total or done % 100 == 0:
      print(f"  {split}: {done}/{total} videos read", file=sys.stderr, flush=True)

  try:
    report = scan_dataset(args.root, args.image_size, splits,
                          workers=max(1, args.workers), progress=progress)
  except FileNotFoundError as error:
    print(f"check-data: {error}", file=sys.stderr)
    return 2
  print(report.format())
  if report.split_problems:
    print(f"check-data: {len(report.split_problems)} unusable split(s)", file=sys.stderr)
    return 1
  if report.bad_file_count:
    if args.skip_bad_files:
      print(f"check-data: {report.bad_file_count} bad file(s) will be skipped "
            "(datasets.skip_bad_files=True)")
      return 0
    print(f"check-data: {report.bad_file_count} bad file(s); fix or remove them, or "
          "train with datasets.skip_bad_files=True", file=sys.stderr)
    return 1
  print("check-data: all videos are readable")
  return 0
