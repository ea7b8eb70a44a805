"""The training loop end to end: resume, meshes, processes, preemption, bad input."""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import tiny
from mcc_jax import checkpoints
from mcc_jax.testing import parity
from mcc_jax.checkpoints import training_runs
from mcc_jax.train import program as program_lib
from mcc_jax.train import sharding
from mcc_jax.train import trainer

sys.path.insert(0, os.path.dirname(__file__))
import training_data  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def small_config(total_steps=4):
  """The tiny model, batch 8 (one per test device), the discriminator from step 3.

  The perceptual term is switched off: these tests are about the loop (resume, meshes,
  processes, signals), the VGG network would triple their run time, and
  tests/train/step_test.py covers the whole objective.
  """
  config = tiny.get_config()
  config.losses.perceptual_layer_weights = (0.0,) * 5
  config.batch_size = 8
  config.model.batch_norm_group_size = 2
  config.total_steps = total_steps
  config.losses.discriminator_start_step = 2
  config.checkpoint.every_steps = 2
  config.checkpoint.max_to_keep = 5
  config.log_every_steps = 1
  config.image_every_steps = 0
  config.eval_every_steps = 0
  return config


def _max_rel(a, b):
  leaves = jax.tree.leaves(jax.tree.map(parity.relative_l2, a, b))
  return max(leaves)


def _flat_rel(a, b):
  flat = lambda tree: np.concatenate([np.ravel(np.asarray(x, np.float64))
                                      for x in jax.tree.leaves(tree)])
  return parity.relative_l2(flat(a), flat(b))


def _assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, programs):
  workdir = tmp_path_factory.mktemp("straight")
  config = small_config()
  summary = trainer.train_and_evaluate(config, workdir, batches=training_data.batches(config),
                                       programs=programs)
  assert summary.step == 4 and not summary.stopped_by_signal
  return workdir


def test_four_steps_equal_two_then_resume_two(straight_run, tmp_path, programs):
  config = small_config(total_steps=2)
  trainer.train_and_evaluate(config, tmp_path, batches=training_data.batches(config),
                             programs=programs)
  assert checkpoints.latest_step(tmp_path) == 2
  config = small_config(total_steps=4)
  summary = trainer.train_and_evaluate(config, tmp_path, batches=training_data.batches(config),
                                       programs=programs)
  assert summary.step == 4
  _assert_trees_equal(checkpoints.restore_params(tmp_path), checkpoints.restore_params(straight_run))
  # The discriminator trained (it joined at step 3) and the EMA differs from the weights.
  first = checkpoints.restore_params(straight_run, step=2)
  last = checkpoints.restore_params(straight_run, step=4)
  assert _max_rel(first["discriminator"]["params"], last["discriminator"]["params"]) > 0
  assert _max_rel(last["generator"]["params"], last["generator_ema"]["params"]) > 0


def test_checkpoint_saved_on_eight_devices_restores_on_one(straight_run):
  config = small_config()
  one = sharding.make_mesh({"data": 1, "fsdp": 1}, devices=jax.devices()[:1])
  from mcc_jax import losses  # pylint: disable=import-outside-toplevel
  program = program_lib.TrainingProgram(config, one, losses.load_perceptual_network(
      config.losses, np.float32))
  restorer = training_runs.Checkpointer(straight_run, max_to_keep=None, asynchronous=False)
  state = restorer.restore(program.restore_target())
  restorer.close()
  assert len(jax.tree.leaves(state)[0].sharding.device_set) == 1
  expected = checkpoints.restore_params(straight_run)
  _assert_trees_equal(jax.device_get(state.ema_params), expected["generator_ema"]["params"])
  # And it trains on: one more step on the single device.
  batch = program.global_batch(training_data.global_batch(4, 8, 64))
  state, metrics = program.step(state, batch, 4)
  assert np.isfinite(float(metrics["total"]))


def test_data_and_fsdp_mesh_step_equals_single_device_step():
  config = small_config()
  config.losses.discriminator_start_step = 0   # the full objective from the first step
  config.mesh.update(data=4, fsdp=2, min_sharded_size=256)
  from mcc_jax import losses  # pylint: disable=import-outside-toplevel
  perceptual = losses.load_perceptual_network(config.losses, np.float32)
  sharded = program_lib.TrainingProgram(config, sharding.make_mesh(config.mesh), perceptual)
  single = program_lib.TrainingProgram(
      config, sharding.make_mesh({"data": 1, "fsdp": 1}, devices=jax.devices()[:1]), perceptual)
  # Some parameters really are split over the fsdp axis.
  specs = jax.tree.leaves(jax.tree.map(lambda s: s.spec, sharded.state_sharding.params))
  assert any("fsdp" in tuple(spec) for spec in specs)
  # The initial state's key. A codebook whose nearest-code search meets a near-tie can
  # pick a different code on the mesh than on one device (rounding decides), and then
  # every later term differs by far more than rounding: over keys 0-11, key 3 does that
  # at scale 3 of the motion codebook (perplexity 34.12 against 34.20, generator gradient
  # norm 1.4e-3 apart). Key 0 has no near-tie; the codebook check below names the cause
  # should a change to the model's rounding make one appear.
  key = jax.random.PRNGKey(0)
  batch = training_data.global_batch(0, 8, 64)
  results = []
  for program in (sharded, single):
    state = program.init_state(key)
    state, metrics = program.step(state, program.global_batch(batch), 0)
    results.append(jax.device_get((state.params, state.ema_params, metrics)))
  sharded_metrics, single_metrics = results[0][2], results[1][2]
  for name, value in single_metrics.items():
    if "codebook/" in name:
      assert abs(sharded_metrics[name] - value) <= 1e-5 * abs(value), (
          f"{name}: {sharded_metrics[name]} on the mesh, {value} on one device. The codes "
          "chosen differ: a sharding error, or a near-tie in the nearest-code search that "
          "rounding decided differently (then choose another key).")
  # The objective: every term (BatchNorm groups, codebook statistics, the adaptive weight,
  # the discriminator's losses) to float32 rounding.
  # Gradient-derived quantities (gradient norms, and the adaptive weight, a ratio of two
  # gradient norms, with the GAN term it scales) agree to 1e-3: the gradient of this
  # randomly initialised network amplifies rounding (the official float32 step itself is
  # 6e-3 from its float64 run, docs/training.md). Measured over keys 0-11 without a
  # codebook near-tie: 1.5e-6 to 5.4e-4 apart, always in the motion estimator's gradient
  # norm; 1.5e-6 for key 0. A sharding error (a gradient summed instead of averaged over
  # the data axis, statistics pooled over the wrong examples) moves these by far more.
  from_gradients = ("grad_norm_generator", "grad_norm_motion_estimator",
                    "grad_norm_discriminator", "adaptive_weight", "gan", "total")
  for name, value in single_metrics.items():
    bound = 1e-3 if name in from_gradients else 1e-5
    assert abs(sharded_metrics[name] - value) <= bound * max(abs(value), 1e-3), name
  # Parameters after Adam's first update, per network. That update is lr * g / (|g| + eps):
  # +-lr wherever |g| >> eps, so a rounding-level gradient near zero can move a parameter
  # by up to 2 lr. The bound is the one the official float32 step meets against its own
  # float64 run (1.6e-4 for the generator, docs/training.md), with some margin.
  for name in ("generator", "motion_estimator", "discriminator"):
    assert _flat_rel(results[0][0][name], results[1][0][name]) <= 5e-4, name
  assert _flat_rel(results[0][1], results[1][1]) <= 5e-4


def test_non_finite_loss_stops_without_saving(tmp_path, programs):
  config = small_config(total_steps=4)
  config.checkpoint.every_steps = 1
  with pytest.raises(trainer.NonFiniteLossError, match=r"step 2: non-finite values in .*total"):
    trainer.train_and_evaluate(config, tmp_path,
                               batches=training_data.batches(config, nan_at_step=2),
                               programs=programs)
  assert checkpoints.latest_step(tmp_path) == 1


def test_bad_inputs_are_named_before_any_compute(tmp_path):
  config = small_config()
  config.batch_size = 6
  with pytest.raises(ValueError, match="config.batch_size=6 cannot be split"):
    trainer.train_and_evaluate(config, tmp_path / "a")
  config = small_config()
  config.datasets.name = "folder"
  config.datasets.root = str(tmp_path / "missing")
  with pytest.raises(FileNotFoundError, match="missing"):
    trainer.train_and_evaluate(config, tmp_path / "b")
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(PermissionError, match="cannot be written"):
    trainer.train_and_evaluate(small_config(), blocker / "run")
  assert not (tmp_path / "a" / "checkpoints").exists() or not any(
      (tmp_path / "a" / "checkpoints").iterdir())


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one(straight_run, tmp_path, subprocess_env):
  port = str(_free_port())
  driver = pathlib.Path(__file__).with_name("distributed_driver.py")
  procs = [subprocess.Popen([sys.executable, str(driver), str(i), port, str(tmp_path)],
                            env=subprocess_env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=1200)[0] for p in procs]
  for proc, output in zip(procs, outputs):
    assert proc.returncode == 0, output[-3000:]
  # Four steps (the discriminator joins at the third) on 2 processes x 4 devices equal
  # the four steps of one process with 8 devices. The collectives sum in another order
  # (gloo between processes); Adam's first updates are +-lr wherever |g| >> eps, so a
  # rounding-level gradient near zero moves a parameter by up to 2 lr: the weights agree
  # to 1e-3 (measured: 2.5e-4 to 4.6e-4), their moving average to 1e-5 (measured 2.7e-6).
  ours = checkpoints.restore_params(tmp_path, step=4)
  single = checkpoints.restore_params(straight_run, step=4)
  assert _flat_rel(ours["generator_ema"]["params"], single["generator_ema"]["params"]) <= 1e-5
  for name in ("generator", "motion_estimator", "discriminator"):
    assert _flat_rel(ours[name]["params"], single[name]["params"]) <= 1e-3, name


def _train_command(workdir, *overrides):
  return [sys.executable, "-m", "mcc_jax.cli", "train", "--config=configs/tiny.py",
          f"--workdir={workdir}", "--config.batch_size=2", "--config.model.batch_norm_group_size=0",
          "--config.log_every_steps=1", "--config.image_every_steps=0",
          "--config.eval_every_steps=0", *overrides]


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path, subprocess_env):
  env = dict(subprocess_env, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  log = tmp_path / "log.txt"
  with open(log, "w") as out:
    proc = subprocess.Popen(_train_command(tmp_path / "run", "--config.total_steps=100000",
                                           "--config.checkpoint.every_steps=100000"),
                            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while "Step" not in log.read_text() and "[2]" not in log.read_text():
      assert proc.poll() is None, log.read_text()[-3000:]
      assert time.time() < deadline, "the run did not reach step 2 in time"
      time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
  text = log.read_text()
  assert "stopped at step" in text and "on SIGTERM" in text
  stopped = checkpoints.latest_step(tmp_path / "run")
  assert stopped is not None and f"stopped at step {stopped} " in text
  result = subprocess.run(_train_command(tmp_path / "run", f"--config.total_steps={stopped + 1}"),
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert f"resumed from the checkpoint of step {stopped}" in result.stdout + result.stderr
  assert checkpoints.latest_step(tmp_path / "run") == stopped + 1


def test_interrupted_save_does_not_break_the_next_start(straight_run, tmp_path, programs):
  # What kill -9 during a save leaves: a temporary directory next to complete ones.
  import shutil  # pylint: disable=import-outside-toplevel
  workdir = tmp_path / "run"
  shutil.copytree(straight_run / "checkpoints", workdir / "checkpoints")
  shutil.copytree(workdir / "checkpoints" / "4",
                  workdir / "checkpoints" / "6.orbax-checkpoint-tmp-1234")
  shutil.rmtree(workdir / "checkpoints" / "6.orbax-checkpoint-tmp-1234" / "state")
  assert checkpoints.latest_step(workdir) == 4
  config = small_config(total_steps=5)
  summary = trainer.train_and_evaluate(config, workdir, batches=training_data.batches(config),
                                       programs=programs)
  assert summary.step == 5 and checkpoints.latest_step(workdir) == 5
