"""The flags that name a model's weights, shared by the commands that use a model."""

from __future__ import annotations

import argparse
import pathlib


def add_model_arguments(parser: argparse.ArgumentParser):
  """Adds ``--workdir | --checkpoint`` (one required), ``--step`` and ``--ema/--no-ema``,
  the arguments of :func:`mcc_jax.inference.load_model`.

  Returns:
    The required mutually exclusive group of ``--workdir | --checkpoint``, for a
    command that has another way to name a model (``animate --exported``).
  """
  where = parser.add_mutually_exclusive_group(required=True)
  where.add_argument("--workdir", type=pathlib.Path,
                     help="Directory of an `mcc-jax train` run (its newest checkpoint).")
  where.add_argument("--checkpoint", type=pathlib.Path,
                     help="A model checkpoint written by `mcc-jax convert-official`.")
  parser.add_argument("--step", type=int, default=None,
                      help="With --workdir: the checkpoint's step (default: the newest).")
  parser.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                      help="With --workdir: the generator's moving-average weights (default; "
                      "what the paper evaluates); --no-ema: the raw weights.")
  return where


def load_model(args: argparse.Namespace, command: str):
  """The model the flags of :func:`add_model_arguments` name, with ``--config``
  overrides (``args.config_args``) applied.

  Args:
    args: the parsed command line.
    command: the command's name, for messages ("animate").

  Returns:
    The :class:`~mcc_jax.inference.LoadedModel`.

  Raises:
    SystemExit: a missing checkpoint, or weights that do not fit the configuration
      (one line naming what was wrong).
  """
  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel
  from mcc_jax import inference  # pylint: disable=import-outside-toplevel

  prog = f"mcc-jax {command}"
  config_args = getattr(args, "config_args", None)
  config = config_cli.parse_config(config_args, prog=prog) if config_args else None
  try:
    return inference.load_model(workdir=args.workdir, checkpoint=args.checkpoint,
                                step=args.step, use_ema=args.ema, config=config)
  except (FileNotFoundError, inference.CheckpointMismatchError) as error:
    raise SystemExit(f"{prog}: error: {error}") from error
