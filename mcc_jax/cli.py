"""The ``mcc-jax`` command line.

Each subcommand lives in its own module under ``mcc_jax.commands`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``; :data:`COMMANDS` names the modules
and holds the one-line descriptions. Modules are
imported only when their subcommand runs, so ``mcc-jax --help`` starts instantly and
does not import JAX or TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple, Sequence

class Command(NamedTuple):
  """A subcommand: the module implementing it and its one-line description."""

  module: str
  help: str


# The one list of subcommands and their descriptions (here, so that --help imports
# nothing else).
COMMANDS = {
    "train": Command("mcc_jax.commands.train",
                     "Train a model (or resume a run) in a workdir."),
    "animate": Command("mcc_jax.commands.animate",
                       "Animate a source image with the motion of a driving video."),
    "evaluate": Command("mcc_jax.commands.evaluate",
                        "Evaluate a model on a dataset's test videos (PSNR, L1, LPIPS, AKD, "
                        "AED, FID)."),
    "crop-video": Command("mcc_jax.commands.crop_video",
                          "Find the face in a video and crop it to a stable square (or print "
                          "ffmpeg commands)."),
    "demo": Command("mcc_jax.commands.demo",
                    "Run a short demonstration of the warping and quantisation ops."),
    "convert-official": Command("mcc_jax.commands.convert_official",
                                "Import the official PyTorch checkpoints into an orbax "
                                "checkpoint."),
    "convert-vgg19": Command("mcc_jax.commands.convert_vgg19",
                             "Convert torchvision's ImageNet VGG19 state dict for the "
                             "perceptual loss."),
    "check-data": Command("mcc_jax.commands.check_data",
                          "Check that every video of a dataset folder tree can be read."),
    "build-tfds": Command("mcc_jax.commands.build_tfds",
                          "Convert a dataset folder tree into TFDS TFRecords (one record per "
                          "frame)."),
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
  for name, command in COMMANDS.items():
    subparsers.add_parser(name, help=command.help, add_help=False)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the console script; returns the process exit code."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  if not argv or argv[0] not in COMMANDS:
    parser.parse_args(argv)  # Prints help / errors for unknown commands.
    parser.print_help()
    return 2
  name = argv[0]
  module = importlib.import_module(COMMANDS[name].module)
  sub = argparse.ArgumentParser(prog=f"mcc-jax {name}", description=COMMANDS[name].help)
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
