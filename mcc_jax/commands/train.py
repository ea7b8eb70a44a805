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
import time


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
  started = time.time()
  try:
    summary = trainer.train_and_evaluate(config, args.workdir)
  except (trainer.StartupError, trainer.DataStoppedError) as error:
    # Bad input (found before training, or too many bad videos during it): one line, no
    # traceback (a bug keeps its own).
    print(f"mcc-jax train: error: {' '.join(str(error).split())}", file=sys.stderr)
    return 2
  import jax  # pylint: disable=import-outside-toplevel  (initialised by the trainer)
  if jax.process_index() == 0 and not summary.stopped_by_signal:
    print(closing_message(config, summary, args.workdir, (time.time() - started) / 60),
          flush=True)
  return 0


# What a longer run of a shipped small configuration gives, as measured on a 2-core CPU
# (docs/results.md): dataset name -> (steps, their minutes there, what the model does
# then, what to do next).
_MEASURED = {
    "sample": (
        1100, 30,
        "reconstructs the clip's training frames from its first frame about 10 dB above "
        "copying that frame; it has seen one person and animates no one else",
        "for a model of people it has not seen, train --config=heads (procedural heads, "
        "CPU) or configs/vox256.py on VoxCeleb (accelerators)"),
    "synthetic": (
        1400, 30,
        "animates procedural heads it never saw with another head's motion, blurred, "
        "1-2 dB above copying the source",
        "mcc-jax render-heads writes held-out heads to animate; photos of real people "
        "need configs/vox256.py trained on VoxCeleb"),
}


def closing_message(config, summary, workdir, minutes: float) -> str:
  """What the run produced and how much longer a usable model of its kind takes.

  Args:
    config: the run's configuration.
    summary: the trainer's :class:`~mcc_jax.train.trainer.TrainSummary`.
    workdir: the run's directory.
    minutes: wall-clock minutes of this invocation, compilation included.

  Returns:
    A few lines for the terminal.
  """
  ran = summary.step - summary.start_step
  lines = [f"mcc-jax train: {ran} steps in {minutes:.1f} minutes (step {summary.step} of "
           f"{config.total_steps}). The model: --workdir {workdir} for mcc-jax animate and "
           f"evaluate; curves and pictures: tensorboard --logdir {workdir}"]
  if summary.eval_metrics:
    scores = ", ".join(f"{name} {value:.4g}" for name, value in sorted(
        summary.eval_metrics.items()))
    lines.append(f"  Held-out evaluation at step {summary.step} "
                 f"({config.datasets.eval_split} split): {scores}")
  measured = _MEASURED.get(config.datasets.name)
  if measured is None or int(config.model.image_size) != 64:
    lines.append("  How long a usable model takes depends on the data and the hardware; "
                 "docs/training.md gives the paper's schedule.")
    return "\n".join(lines)
  steps, measured_minutes, result, further = measured
  if summary.step < steps:
    # The run's own pace would count its compilation, minutes of a short run.
    remaining = measured_minutes * (steps - summary.step) / steps
    lines.append(f"  At step {summary.step} this shows that the pipeline runs; it is not yet "
                 f"a usable model. Measured on a 2-core CPU, this configuration trained for "
                 f"about {steps} steps ({measured_minutes} minutes there) {result}. That is "
                 f"{steps - summary.step} more steps, about {remaining:.0f} minutes on such a "
                 f"machine: run the same command with --config.total_steps={steps} (it "
                 f"resumes from step {summary.step}).")
  else:
    lines.append(f"  Measured on a 2-core CPU, this configuration trained for about {steps} "
                 f"steps ({measured_minutes} minutes there) {result}.")
  lines.append(f"  Next: {further}; docs/results.md.")
  return "\n".join(lines)
