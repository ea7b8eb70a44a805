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
  # The extra (setup.py) whose packages the command needs beyond the core.
  extra: str | None = None


# The one list of subcommands and their descriptions (here, so that --help imports
# nothing else).
COMMANDS = {
    "train": Command("mcc_jax.commands.train",
                     "Train a model (or resume a run) in a workdir.",
                     extra="train"),
    "animate": Command("mcc_jax.commands.animate",
                       "Animate a source image with the motion of a driving video.",
                       extra="video"),
    "evaluate": Command("mcc_jax.commands.evaluate",
                        "Evaluate a model on a dataset's test videos (PSNR, L1, LPIPS, AKD, "
                        "AED, FID).",
                        extra="eval"),
    "crop-video": Command("mcc_jax.commands.crop_video",
                          "Find the face in a video and crop it to a stable square (or print "
                          "ffmpeg commands).",
                          extra="faces"),
    "demo": Command("mcc_jax.commands.demo",
                    "Serve a local web page (Gradio) that animates an uploaded photo with an "
                    "uploaded video.",
                    extra="demo"),
    "export": Command("mcc_jax.commands.export",
                      "Export the motion estimator and the generator as ONNX or StableHLO "
                      "graphs (weights inside) with a manifest.",
                      extra="export"),
    "ops-demo": Command("mcc_jax.commands.ops_demo",
                        "Run a short demonstration of the warping and quantisation ops.",
                        extra="video"),
    "convert-official": Command("mcc_jax.commands.convert_official",
                                "Import the official PyTorch checkpoints into an orbax "
                                "checkpoint.",
                                extra="convert"),
    "convert-vgg19": Command("mcc_jax.commands.convert_vgg19",
                             "Convert torchvision's ImageNet VGG19 state dict for the "
                             "perceptual loss.",
                             extra="convert"),
    "render-heads": Command("mcc_jax.commands.render_heads",
                            "Write a video of the procedural heads dataset (e.g. a person "
                            "no model was trained on) as an mp4.",
                            extra="video"),
    "check-data": Command("mcc_jax.commands.check_data",
                          "Check that every video of a dataset folder tree can be read.",
                          extra="data"),
    "build-tfds": Command("mcc_jax.commands.build_tfds",
                          "Convert a dataset folder tree into TFDS TFRecords (one record per "
                          "frame).",
                          extra="data"),
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
  try:
    return _run_command(name, argv[1:])
  except ImportError as error:
    # An optional dependency that is not installed: one line naming the extra.
    from mcc_jax import extras  # pylint: disable=import-outside-toplevel

    message = extras.explain(error)
    if message is None:
      raise
    if not isinstance(error, extras.MissingExtraError):
      message = f"mcc-jax {name}: {message}"
    print(message, file=sys.stderr)
    return 2


def _run_command(name: str, argv: Sequence[str]) -> int:
  """Parses ``argv`` for the subcommand ``name`` and runs it."""
  command = COMMANDS[name]
  if command.extra is not None:
    from mcc_jax import extras  # pylint: disable=import-outside-toplevel

    extras.require(command.extra, f"mcc-jax {name}")
  module = importlib.import_module(command.module)
  sub = argparse.ArgumentParser(prog=f"mcc-jax {name}", description=COMMANDS[name].help)
  module.add_arguments(sub)
  # --config and --config.<field>=<value> are parsed by ml_collections (config_cli),
  # the rest by the command's own parser.
  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel

  try:
    config_args, rest = config_cli.split_config_args(argv)
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
