"""``mcc-jax build-tfds``: converts a video-preprocessing folder tree into TFRecords.

The result is read with ``datasets.name = 'tfds'`` and ``datasets.root`` set to the
output directory (and the same ``image_size``).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Declares the command's options.

  Args:
    parser: the subcommand's parser.
  """
  parser.add_argument("--root", required=True,
                      help="Folder tree holding train/ and test/ (the manual download "
                           "directory).")
  parser.add_argument("--output", required=True,
                      help="TFDS data directory to write; use it as datasets.root.")
  parser.add_argument("--image-size", type=int, default=256,
                      help="Side of the stored frames.")
  parser.add_argument("--frame-format", choices=("png", "jpeg"), default="png",
                      help="Frame encoding: png is lossless, jpeg about 4x smaller.")
  parser.add_argument("--skip-bad-files", action="store_true",
                      help="Leave unreadable videos out instead of stopping.")


def run(args: argparse.Namespace) -> int:
  """Builds the dataset.

  Args:
    args: parsed options.

  Returns:
    0 on success.
  """
  if args.image_size <= 0:
    raise SystemExit(f"--image-size must be positive, got {args.image_size}.")
  from mcc_jax.data_pipelines.sources.tfds.builder import build_tfds_dataset

  directory = build_tfds_dataset(args.root, args.output, args.image_size,
                                 frame_format=args.frame_format,
                                 skip_bad_files=args.skip_bad_files)
  print(f"wrote {directory}")
  print(f"use: datasets_config(name='tfds', root={args.output!r}, "
        f"image_size={args.image_size})")
  return 0
