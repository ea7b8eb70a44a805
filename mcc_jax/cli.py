"""The ``mcc-jax`` command line.

Each subcommand lives in its own module under ``mcc_jax.commands`` and exposes
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
imported only when their subcommand runs, so ``mcc-jax --help`` starts instantly and
does not import JAX or TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Subcommand name -> module implementing it.
_COMMANDS = {
    "train": "mcc_jax.commands.train",
    "animate": "mcc_jax.commands.animate",
    "evaluate": "mcc_jax.commands.evaluate",
    "crop-video": "mcc_jax.commands.crop_video",
    "demo": "mcc_jax.commands.demo",
    "convert-official": "mcc_jax.commands.convert_official",
    "convert-vgg19": "mcc_jax.commands.convert_vgg19",
    "check-data": "mcc_jax.commands.check_data",
    "build-tfds": "mcc_jax.commands.build_tfds",
}

# One-line descriptions, kept here so that --help needs no imports.
_HELP = {
    "train": "Train a model (or resume a run) in a workdir.",
    "animate": "Animate a source image with the motion of a driving video.",
    "evaluate": "Evaluate a model on a dataset's test videos (PSNR, L1, LPIPS, AKD, AED, FID).",
    "crop-video": "Find the face in a video and crop it to a stable square (or print ffmpeg commands).",
    "demo": "Run a short demonstration of the warping and quantisation ops.",
    "convert-official": "Import the official PyTorch checkpoints into an orbax checkpoint.",
    "convert-vgg19": "Convert torchvision's ImageNet VGG19 for the perceptual loss.",
    "check-data": "Check that every video of a dataset folder tree can be read.",
    "build-tfds": "Convert a dataset folder tree into TFDS TFRecords (one record per frame).",
}


def build_parser() -> argparse.ArgumentParser:
  """Returns the top-level parser with one (lazily filled) subparser per command."""
  parser = argparse.ArgumentParser(
      prog="mcc-jax",
      description=(
          "Multi-scale compensatory codebooks for talking-head video generation (JAX/Flax)."
      ),
  )
  subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
  for name in _COMMANDS:
    subparsers.add_parser(name, help=_HELP[name], add_help=False)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the console script; returns the process exit code."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  if not argv or argv[0] not in _COMMANDS:
    parser.parse_args(argv)  # Prints help / errors for unknown commands.
    parser.print_help()
    return 2
  name = argv[0]
  module = importlib.import_module(_COMMANDS[name])
  sub = argparse.ArgumentParser(prog=f"mcc-jax {name}", description=_HELP[name])
  module.add_arguments(sub)
  # --config and --config.<field>=<value> are parsed by ml_collections (config_cli),
  # the rest by the command's own parser.
  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel

  try:
    config_args, rest = config_cli.split_config_args(argv[1:])
  except config_cli.ConfigArgumentError as error:
    sub.error(str(error))
  args = sub.parse_args(rest)
  args.config_args = config_args
  try:
    return int(module.run(args) or 0)
  except config_cli.ConfigArgumentError as error:
    sub.error(str(error))


if __name__ == "__main__":
  sys.exit(main())
