"""The closing lines of ``mcc-jax train``: what the run produced and what a usable model takes."""

from mcc_jax import config_cli
from mcc_jax.commands import train as train_command
from mcc_jax.train.trainer import TrainSummary


def _message(name, step, start=0, minutes=6.0, metrics=None):
  config = config_cli.parse_config([f"--config={name}"])
  summary = TrainSummary(step, False, step, metrics or {}, start)
  return train_command.closing_message(config, summary, "runs/x", minutes)


def test_the_sample_run_says_it_is_not_a_model_yet_and_how_long_one_takes():
  text = _message("sample", 60, metrics={"psnr": 12.84449, "l1": 0.2}).splitlines()
  assert text[0].startswith("mcc-jax train: 60 steps in 6.0 minutes (step 60 of 60)")
  assert "--workdir runs/x" in text[0] and "tensorboard --logdir runs/x" in text[0]
  assert text[1] == "  Held-out evaluation at step 60 (test split): l1 0.2, psnr 12.84"
  # 1,040 more steps of the measured 1,100 in 30 minutes; not this run's pace, which
  # counts its compilation.
  assert "1040 more steps, about 28 minutes on such a machine" in text[2]
  assert "(30 minutes there)" in text[2]
  assert "--config.total_steps=1100 (it resumes from step 60)" in text[2]
  assert "animates no one else" in text[2]
  assert "--config=heads" in text[3]


def test_a_resumed_run_counts_its_own_steps_and_a_long_run_is_not_told_to_go_on():
  text = _message("heads", 1400, start=1200, minutes=10.0)
  assert text.startswith("mcc-jax train: 200 steps in 10.0 minutes (step 1400 of 1400)")
  assert "more steps" not in text and "never saw" in text and "render-heads" in text
  assert "Held-out evaluation" not in text


def test_other_configurations_point_to_the_schedule():
  config = config_cli.parse_config(["--config=vox256"])
  text = train_command.closing_message(config, TrainSummary(5, False, 5, {}, 0), "w", 1.0)
  assert "docs/training.md gives the paper's schedule" in text
