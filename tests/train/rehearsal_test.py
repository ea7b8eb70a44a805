"""Rehearsals of real runs, through the command line, at tiny shapes.

Everything the vox256 recipe turns on is on: the real input pipeline, logging, image
summaries, in-training evaluation, checkpoints, the discriminator's start, the EMA and
the learning-rate boundaries, each firing at least twice in 6 steps; the mesh splits the
batch over data and fsdp (some parameters really sharded). One run goes straight; one
stops and resumes, and must equal it bit for bit; one runs as two processes that find
each other through SLURM's variables alone, is preempted (SIGTERM to one of them) and
resumes onto another mesh.
"""

import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from mcc_jax import checkpoints
from mcc_jax.testing import parity
from tests.train.conftest import subprocess_environment

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Whole runs in subprocesses: minutes each (docs/testing.md).
pytestmark = pytest.mark.slow
STEPS = 6
# Every interval fires at least twice in STEPS steps.
INTERVALS = {"log_every_steps": 2, "image_every_steps": 2, "eval_every_steps": 3,
             "checkpoint.every_steps": 2}


def _command(workdir, *overrides, total_steps=STEPS):
  return [sys.executable, "-m", "mcc_jax.cli", "train", "--config=configs/tiny.py",
          f"--workdir={workdir}", "--config.batch_size=4", "--config.eval_batch_size=4",
          "--config.eval_max_batches=2", "--config.model.batch_norm_group_size=2",
          f"--config.total_steps={total_steps}", "--config.checkpoint.max_to_keep=10",
          "--config.losses.discriminator_start_step=2",
          "--config.optimizer.decay_steps=(3,5)", "--config.mesh.min_sharded_size=256",
          *(f"--config.{name}={value}" for name, value in INTERVALS.items()), *overrides]


def _environment(base, devices, **extra):
  env = dict(base, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
  for name in list(env):
    if name.startswith(("SLURM_", "OMPI_")) or name == "TPU_WORKER_HOSTNAMES":
      del env[name]
  env.update(extra)
  return env


def _run(command, env, timeout=900):
  result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result.stdout + result.stderr


def _events(workdir):
  """{tag: {step: value or 'image'}} from the run's TensorBoard files."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tags = {}
  for path in pathlib.Path(workdir).glob("events.out.tfevents.*"):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.HasField("image"):
          content = "image"
        elif value.HasField("tensor"):
          array = tf.make_ndarray(value.tensor)
          # Images are written as tensors of encoded PNGs; scalars as 0-d tensors.
          content = float(array) if array.ndim == 0 else "image"
        else:
          content = value.simple_value
        tags.setdefault(value.tag, {})[event.step] = content
  return tags


def _flat_rel(a, b):
  flat = lambda tree: np.concatenate([np.ravel(np.asarray(x, np.float64))
                                      for x in jax.tree.leaves(tree)])
  return parity.relative_l2(flat(a), flat(b))


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("rehearsal") / "straight"
  env = _environment(subprocess_environment(), devices=4)
  output = _run(_command(workdir, "--config.mesh.data=2", "--config.mesh.fsdp=2"), env)
  return workdir, output


def test_every_interval_of_a_real_run_fires(straight_run):
  workdir, output = straight_run
  assert f"finished at step {STEPS}" in output
  tags = _events(workdir)
  assert sorted(tags["eval/psnr"]) == [3, 6] and sorted(tags["eval/frames"]) == [3, 6]
  assert all(np.isfinite(v) and v > 5 for v in tags["eval/psnr"].values())
  assert sorted(tags["preview"]) == [2, 4, 6]
  assert sorted(tags["total"]) == [2, 4, 6]
  assert sorted(checkpoints.training_runs.open_manager(workdir).all_steps()) == [2, 4, 6]
  # The discriminator joins at iteration 3: its loss is logged as zero before.
  assert tags["discriminator_loss"][2] == 0 and tags["discriminator_loss"][4] > 0
  # Learning-rate boundaries at iterations 3 and 5 (official milestones): each log
  # averages two steps' rates.
  rates = [tags["learning_rate"][s] for s in (2, 4, 6)]
  assert rates[0] > rates[1] > rates[2] > 0, rates
  assert tags["skipped_non_finite"][6] == 0 and tags["data/bad_files"][6] == 0
  # The batch was split over both axes and some parameters over fsdp (the EMA differs
  # from the raw weights after 6 steps).
  params = checkpoints.restore_params(workdir)
  assert _flat_rel(params["generator"]["params"], params["generator_ema"]["params"]) > 0


def test_a_resumed_run_is_the_uninterrupted_run_bit_for_bit(straight_run, tmp_path,
                                                           subprocess_env):
  # The straight run as if killed after its checkpoint of step 2 (a copy of its workdir
  # without the later checkpoints and logs), resumed by a new process with the same
  # command: the data stream goes on where it stopped (batch k is a function of the seed
  # and k), so the weights at step 6 are the straight run's exactly.
  workdir, _ = straight_run
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  for path in run.glob("events.out.tfevents.*"):
    path.unlink()
  for step in (4, 6):
    shutil.rmtree(checkpoints.training_runs.checkpoint_directory(run) / str(step))
  assert checkpoints.latest_step(run) == 2
  env = _environment(subprocess_env, devices=4)
  output = _run(_command(run, "--config.mesh.data=2", "--config.mesh.fsdp=2"), env)
  assert "resumed from the checkpoint of step 2" in output
  straight = checkpoints.restore_params(workdir, step=STEPS)
  resumed = checkpoints.restore_params(run, step=STEPS)
  jax.tree.map(np.testing.assert_array_equal, resumed, straight)


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _slurm_processes(command, env, count, port, log_dir):
  """``count`` processes of one SLURM job step on this machine (no explicit addresses)."""
  processes, logs = [], []
  for index in range(count):
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "localhost",
             "SLURM_NTASKS": str(count), "SLURM_PROCID": str(index),
             "SLURM_LOCALID": str(index), "JAX_COORDINATOR_PORT": str(port)}
    log = log_dir / f"process-{index}.txt"
    with open(log, "w") as out:
      processes.append(subprocess.Popen(command, env=dict(env, **slurm), cwd=ROOT,
                                        stdout=out, stderr=subprocess.STDOUT))
    logs.append(log)
  return processes, logs


@pytest.fixture
def started():
  """Processes a test starts; any still running when it ends (a failed assertion, a
  time limit) are killed, so that they hold no memory while later tests run."""
  processes = []
  yield processes
  for process in processes:
    if process.poll() is None:
      process.kill()
      process.wait()


def test_two_processes_preempted_resume_onto_another_mesh(tmp_path, subprocess_env,
                                                          started):
  env = _environment(subprocess_env, devices=2)
  run = tmp_path / "run"
  # Two processes x 2 devices as data 2 x fsdp 2, for many steps; SIGTERM to one.
  command = _command(run, "--config.mesh.data=2", "--config.mesh.fsdp=2", total_steps=1000)
  processes, logs = _slurm_processes(command, env, 2, _free_port(), tmp_path)
  started.extend(processes)
  deadline = time.time() + 900
  while checkpoints.latest_step(run) is None:
    for process, log in zip(processes, logs):
      assert process.poll() is None, log.read_text()[-3000:]
    assert time.time() < deadline, "the two processes did not save their first checkpoint"
    time.sleep(1)
  processes[1].send_signal(signal.SIGTERM)
  for process, log in zip(processes, logs):
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
  texts = [log.read_text() for log in logs]
  assert all("joining the other processes of this slurm job" in t for t in texts)
  stopped = checkpoints.latest_step(run)
  for text in texts:
    assert f"stopped at step {stopped} on SIGTERM" in text, text[-3000:]
  # Restart as two processes again, the batch now over data 4 x fsdp 1.
  command = _command(run, "--config.mesh.data=4", "--config.mesh.fsdp=1",
                     total_steps=stopped + 2)
  (tmp_path / "restart").mkdir()
  processes, logs = _slurm_processes(command, env, 2, _free_port(), tmp_path / "restart")
  started.extend(processes)
  for process, log in zip(processes, logs):
    assert process.wait(timeout=900) == 0, log.read_text()[-3000:]
  text = logs[0].read_text()
  assert f"resumed from the checkpoint of step {stopped}" in text
  assert f"finished at step {stopped + 2}" in text
  assert checkpoints.latest_step(run) == stopped + 2
