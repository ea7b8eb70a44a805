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
