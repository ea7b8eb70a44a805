"""``mcc-jax train``: train (or resume) a model in a workdir.

    mcc-jax train --config=configs/sample.py --workdir=runs/sample [--config.x=y ...]

A thin shell around :func:`mcc_jax.train.trainer.train_and_evaluate`, as in the Flax
examples: the configuration comes from ml_collections' ``config_flags``; everything
else happens in the trainer. Running it again with the same workdir resumes from the
newest checkpoint. Bad input found before training starts (the configuration, the
workdir, the dataset, weights, batch sizes against the mesh, another model's checkpoint)
is printed as one line naming it, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", required=True,
                      help="Directory for checkpoints, TensorBoard summaries and the config; "
                      "an existing run there is resumed.")
  parser.epilog = ("--config PATH (required) names a get_config() file, e.g. configs/sample.py "
                   "(tiny model, embedded clip), configs/vox256.py (the paper's recipe); "
                   "--config.<field>=<value> overrides a field, e.g. --config.total_steps=1000.")


def run(args: argparse.Namespace) -> int:
  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel

  config = config_cli.parse_config(args.config_args, prog="mcc-jax train")
  from mcc_jax.train import trainer  # pylint: disable=import-outside-toplevel
  from absl import logging  # pylint: disable=import-outside-toplevel
  logging.set_verbosity(logging.INFO)
  try:
    trainer.train_and_evaluate(config, args.workdir)
  except (trainer.StartupError, trainer.DataStoppedError) as error:
    # Bad input (found before training, or too many bad videos during it): one line, no
    # traceback (a bug keeps its own).
    print(f"mcc-jax train: error: {' '.join(str(error).split())}", file=sys.stderr)
    return 2
  return 0
