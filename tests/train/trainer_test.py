"""The training loop in this process: restores across meshes, sharded evaluation, bad input.

Runs as users run them (whole runs through the command line, several processes,
preemption) are in rehearsal_test.py.
"""

import weakref

import jax
import numpy as np
import pytest

from mcc_jax.configs import tiny
from mcc_jax import checkpoints
from mcc_jax import cli
from mcc_jax import losses
from mcc_jax.checkpoints import training_runs
from mcc_jax.testing import parity
from mcc_jax.train import in_training_eval
from mcc_jax.train import program as program_lib
from mcc_jax.train import sharding
from mcc_jax.train import trainer
from tests.train import training_data


def small_config(total_steps=4):
  """The tiny model on the procedural heads, batch 8 (one per test device) on a data 4 x
  fsdp 2 mesh (some parameters really split over fsdp), with the discriminator from
  step 3, evaluation, images and checkpoints every 2 steps.

  The perceptual term is switched off: these tests are about the loop (restores, meshes,
  evaluation, bad input); the rehearsal runs and tests/train/step_test.py cover the
  whole objective. Every test of this module uses this one configuration, so that its
  two programs, the mesh's (the ``programs`` fixture) and the single device's
  (``one_device_program``), compile once for all of them.
  """
  config = tiny.get_config()
  config.mesh.update(data=4, fsdp=2, min_sharded_size=256)
  config.losses.perceptual_layer_weights = (0.0,) * 5
  config.batch_size = 8
  config.eval_batch_size = 8
  config.eval_max_batches = 1
  config.model.batch_norm_group_size = 2
  config.total_steps = total_steps
  config.losses.discriminator_start_step = 2
  config.checkpoint.every_steps = 2
  config.checkpoint.max_to_keep = 5
  config.log_every_steps = 1
  config.image_every_steps = 2
  config.eval_every_steps = 2
  return config


def _flat_rel(a, b):
  flat = lambda tree: np.concatenate([np.ravel(np.asarray(x, np.float64))
                                      for x in jax.tree.leaves(tree)])
  return parity.relative_l2(flat(a), flat(b))


def _assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def _perceptual(config):
  return losses.load_perceptual_network(config.losses, np.float32)


@pytest.fixture(scope="module")
def one_device_program():
  """The module's configuration on a single device."""
  config = small_config()
  one = sharding.make_mesh({"data": 1, "fsdp": 1}, devices=jax.devices()[:1])
  return program_lib.TrainingProgram(config, one, _perceptual(config))


def _mesh_program(config, programs):
  """The module's configuration on the 4 x 2 mesh: the straight run's program."""
  return programs.get(config, sharding.make_mesh(config.mesh), _perceptual(config))


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, programs):
  workdir = tmp_path_factory.mktemp("straight")
  summary = trainer.train_and_evaluate(small_config(), workdir, programs=programs)
  assert summary.step == 4 and not summary.stopped_by_signal
  assert summary.eval_metrics["frames"] == 8 and np.isfinite(summary.eval_metrics["psnr"])
  return workdir


def test_checkpoint_saved_on_eight_devices_restores_on_one(straight_run, one_device_program):
  program = one_device_program
  restorer = training_runs.Checkpointer(straight_run, max_to_keep=None, asynchronous=False)
  state = restorer.restore(program.restore_target())
  restorer.close()
  assert len(jax.tree.leaves(state)[0].sharding.device_set) == 1
  expected = checkpoints.restore_params(straight_run)
  _assert_trees_equal(jax.device_get(state.ema_params), expected["generator_ema"]["params"])
  # And it trains on: one more step on the single device.
  batch = program.global_batch(training_data.global_batch(4, 8, 64))
  state, metrics = program.step(state, batch, 4)
  assert np.isfinite(float(metrics["total"])) and float(metrics["skipped_non_finite"]) == 0


def test_data_and_fsdp_mesh_step_equals_single_device_step(programs, one_device_program):
  config = small_config()
  sharded, single = _mesh_program(config, programs), one_device_program
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
  # The full objective from the first update: a new state stepped as iteration 3, past
  # the discriminator's start (the step variant is the host's choice; the state's
  # optimiser counts still start at 0).
  completed = config.losses.discriminator_start_step
  results = []
  for program in (sharded, single):
    state = program.init_state(key)
    state, metrics = program.step(state, program.global_batch(batch), completed)
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
  # gradient norms, with the GAN term it scales) agree to 1e-2, what float32 allows for
  # this step: the gradient of this randomly initialised network amplifies rounding (the
  # official float32 step itself is 6e-3 from its float64 run, docs/training.md). One
  # machine's figure is a single draw that moves with the CPU: for key 0 the motion
  # estimator's gradient norm was 2e-6 apart on AVX-512 and 4e-4 on AVX2. A sharding error
  # (a gradient summed instead of averaged over the 4 data shards: 4x; statistics pooled
  # over the wrong examples, which the forward terms above catch) moves these by far more.
  from_gradients = ("grad_norm_generator", "grad_norm_motion_estimator",
                    "grad_norm_discriminator", "adaptive_weight", "gan", "total")
  for name, value in single_metrics.items():
    bound = 1e-2 if name in from_gradients else 1e-5
    assert abs(sharded_metrics[name] - value) <= bound * max(abs(value), 1e-3), name
  # Parameters after Adam's first update, per network. That update is lr * g / (|g| + eps):
  # +-lr wherever |g| >> eps, so a rounding-level gradient near zero can move a parameter
  # by up to 2 lr. The bound is the one the official float32 step meets against its own
  # float64 run (1.6e-4 for the generator, docs/training.md), with some margin.
  for name in ("generator", "motion_estimator", "discriminator"):
    assert _flat_rel(results[0][0][name], results[1][0][name]) <= 5e-4, name
  assert _flat_rel(results[0][1], results[1][1]) <= 5e-4


def test_evaluation_on_a_sharded_mesh_equals_one_device(programs, one_device_program):
  # The pod-run crash: evaluation handed fsdp-sharded parameters to a step compiled for
  # replicated ones. Now it runs on the state's own layout, and its figures are the
  # single device's (the per-batch sums are reduced over the mesh in another order).
  config = small_config()
  config.eval_max_batches = 2
  results = []
  mesh_program = _mesh_program(config, programs)
  specs = jax.tree.leaves(
      jax.tree.map(lambda s: s.spec, mesh_program.state_sharding.ema_params))
  assert any("fsdp" in tuple(spec) for spec in specs)
  for program in (mesh_program, one_device_program):
    state = program.init_state(jax.random.PRNGKey(0))
    log = trainer.data_pipelines.BadFileLog()
    results.append(program.evaluate(state, trainer._eval_batches(config, program.mesh, log)))  # pylint: disable=protected-access
  sharded, single = results
  assert sharded["frames"] == single["frames"] == 16
  assert sharded["psnr"] == pytest.approx(single["psnr"], rel=1e-5)
  assert sharded["l1"] == pytest.approx(single["l1"], rel=1e-5)


def test_evaluation_streams_whatever_the_size_of_the_test_split(monkeypatch):
  # 50 batches of a test split: the trainer's evaluation loop holds a couple at a time
  # (the pipeline's prefetch aside), not a list of them all.
  config = small_config()
  config.eval_max_batches = None
  alive, peak = [], [0]

  class FiftyBatches:
    def as_numpy_iterator(self):
      for index in range(50):
        peak[0] = max(peak[0], sum(ref() is not None for ref in alive))
        frames = np.full((8, 64, 64, 3), index, np.uint8)
        alive.append(weakref.ref(frames))
        yield {"source": frames, "driving": frames.copy(), "mask": np.ones(8, bool),
               "video_index": np.zeros(8, np.int32), "frame_index": np.zeros(8, np.int32)}

  monkeypatch.setattr(trainer.data_pipelines, "build_eval_pipeline",
                      lambda *args, **kwargs: FiftyBatches())
  mesh = sharding.make_mesh(config.mesh)
  seen = []

  def eval_step(variables, batch):
    seen.append(int(np.asarray(batch["source"].addressable_data(0))[0, 0, 0, 0]))
    return {"psnr": batch["mask"].sum() * 1.0, "l1": batch["mask"].sum() * 0.0,
            "count": batch["mask"].sum() * 1.0}

  metrics = in_training_eval.evaluate(
      eval_step, None, trainer._eval_batches(config, mesh, trainer.data_pipelines.BadFileLog()))  # pylint: disable=protected-access
  assert seen == list(range(50)) and metrics["frames"] == 400
  assert peak[0] <= 3, f"{peak[0]} batches of the test split held at once"


def test_hosts_with_fewer_batches_feed_masked_stand_ins(monkeypatch):
  # Two hosts, one with 3 batches and one with 1: both run 3 steps, the second host's
  # last two masked out. The hosts' exchange is faked with the other host's count.
  filler = {"mask": np.zeros(2, bool)}
  other_host_has = iter([True, True, True, False])
  monkeypatch.setattr(in_training_eval.jax, "process_count", lambda: 2)
  monkeypatch.setattr(in_training_eval.multihost_utils, "process_allgather",
                      lambda mine: np.array([bool(mine), next(other_host_has)]))
  mine = [{"mask": np.ones(2, bool)}]
  out = list(in_training_eval.padded_batches(mine, filler))
  assert len(out) == 3 and out[0] is mine[0] and out[1] is filler and out[2] is filler


def test_non_finite_loss_stops_without_saving(tmp_path, programs):
  # The one test that feeds its own batches: no dataset holds a NaN.
  config = small_config(total_steps=4)
  config.checkpoint.every_steps = 1
  config.eval_every_steps = 0
  config.log_every_steps = 2
  with pytest.raises(trainer.NonFiniteLossError,
                     match=r"step 2: non-finite values in .*total.*not applied"):
    trainer.train_and_evaluate(config, tmp_path,
                               batches=training_data.batches_with_nan(config, nan_at_step=2),
                               programs=programs)
  assert checkpoints.latest_step(tmp_path) == 1


@pytest.mark.parametrize("field,value,message", [
    ("batch_size", 6, "config.batch_size=6 cannot be split over the mesh"),
    ("eval_batch_size", 6, "config.eval_batch_size=6 cannot be split over the mesh"),
    ("datasets.root", "MISSING", "missing"),
    ("total_steps", 0, "config.total_steps must be a positive integer"),
])
def test_bad_inputs_are_named_before_any_compute(tmp_path, field, value, message):
  config = small_config()
  if field == "datasets.root":
    config.datasets.name = "folder"
    value = str(tmp_path / "missing")
  parent, _, name = field.rpartition(".")
  (config[parent] if parent else config)[name] = value
  with pytest.raises(trainer.StartupError, match=message):
    trainer.train_and_evaluate(config, tmp_path / "run")
  assert not (tmp_path / "run" / "checkpoints").exists() or not any(
      (tmp_path / "run" / "checkpoints").iterdir())


def test_the_command_prints_bad_input_as_one_line(tmp_path, capsys):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  base = ["train", "--config=configs/tiny.py", "--config.batch_size=8"]
  cases = [([f"--workdir={blocker / 'run'}"], "cannot be written"),
           ([f"--workdir={tmp_path / 'a'}", "--config.eval_batch_size=6",
             "--config.eval_every_steps=2"], "config.eval_batch_size=6"),
           ([f"--workdir={tmp_path / 'b'}", "--config.datasets.name=folder",
             f"--config.datasets.root={tmp_path / 'nowhere'}"], "nowhere")]
  for arguments, message in cases:
    assert cli.main(base + arguments) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mcc-jax train: error:") and message in err, err
    assert "\n" not in err and "Traceback" not in err


def test_another_models_checkpoint_is_refused_as_bad_input(straight_run, tmp_path, capsys):
  import shutil  # pylint: disable=import-outside-toplevel
  shutil.copytree(straight_run / "checkpoints", tmp_path / "run" / "checkpoints")
  assert cli.main(["train", "--config=configs/tiny.py", f"--workdir={tmp_path / 'run'}",
                   "--config.batch_size=8", "--config.model.variant=mmc"]) == 2
  err = capsys.readouterr().err.strip()
  assert "model.variant: 'full' in the checkpoint, 'mmc' now" in err and "\n" not in err


def test_interrupted_save_does_not_break_the_next_start(straight_run, tmp_path, programs):
  # What kill -9 during a save leaves: a temporary directory next to complete ones.
  import shutil  # pylint: disable=import-outside-toplevel
  workdir = tmp_path / "run"
  shutil.copytree(straight_run / "checkpoints", workdir / "checkpoints")
  shutil.copytree(workdir / "checkpoints" / "4",
                  workdir / "checkpoints" / "6.orbax-checkpoint-tmp-1234")
  shutil.rmtree(workdir / "checkpoints" / "6.orbax-checkpoint-tmp-1234" / "state")
  assert checkpoints.latest_step(workdir) == 4
  summary = trainer.train_and_evaluate(small_config(total_steps=5), workdir, programs=programs)
  assert summary.step == 5 and checkpoints.latest_step(workdir) == 5
