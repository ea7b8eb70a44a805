"""Training-step time and peak memory at 256x256, next to the official PyTorch step.

Times one full training step (every term of the objective, the adaptive weight, the
discriminator step: an iteration after the discriminator's start) of

* mcc-jax: ``mcc_jax.train.step.train_step`` jitted, float32 (or ``--dtype bfloat16``);
* the official code (``--official-repo``): its own ``optimize_parameters`` on the same
  batch size (see mcc_jax/testing/official_training.py), float32, every core of this machine.

Each side runs in its own subprocess, so that its peak resident memory (the process's
maximum RSS, framework overhead included, read after the timed steps) is its own. Like
the trainer, the mcc-jax side returns the compiler's freed heap to the system after
compiling (mcc_jax.train.host_memory). The
first step (compilation for mcc-jax, allocator warm-up for PyTorch) is reported
separately; the step time is the median of ``--steps`` further steps. Weights are random
(speed and memory do not depend on them); the perceptual VGG19 is randomly initialised.

    python benchmarks/train_step.py [--official-repo PATH] [--batch 2] [--steps 3]
        [--config configs/vox256.py] [--remat] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _peak_rss_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _ours(args) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel
  from mcc_jax.losses import PerceptualNetwork  # pylint: disable=import-outside-toplevel
  from mcc_jax.models.vgg import VGGFeatures  # pylint: disable=import-outside-toplevel
  from mcc_jax.train import host_memory  # pylint: disable=import-outside-toplevel
  from mcc_jax.train import optimizers as optimizers_lib  # pylint: disable=import-outside-toplevel
  from mcc_jax.train import step as step_lib  # pylint: disable=import-outside-toplevel

  config = config_cli.load_config(str(args.config))
  config.batch_size = args.batch
  config.model.batch_norm_group_size = 0
  config.model.dtype = args.dtype
  config.model.remat = args.remat
  size = config.model.image_size
  models = step_lib.build_models(config)
  optimizers = optimizers_lib.make_optimizers(config.optimizer, 0)
  vgg = VGGFeatures("vgg19" if config.losses.perceptual_network == "vgg19" else "vgg16")
  perceptual = PerceptualNetwork(vgg, jax.jit(vgg.init)(jax.random.PRNGKey(1),
                                                         jnp.zeros((1, 32, 32, 3))))
  state = jax.jit(functools.partial(step_lib.create_train_state, config=config, models=models,
                                    optimizers=optimizers, batch_shape=(args.batch, size, size, 3)))(
                                        jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  batch = {k: jnp.asarray(rng.uniform(-1, 1, (args.batch, size, size, 3)), jnp.float32)
           for k in ("source", "driving")}
  step = jax.jit(functools.partial(step_lib.train_step, models=models, optimizers=optimizers,
                                   features=perceptual, config=config, adversarial=True),
                 donate_argnums=(0,))
  start = time.perf_counter()
  compiled = step.lower(state, batch, perceptual.params).compile()
  compile_seconds = time.perf_counter() - start
  host_memory.release_freed_host_memory()   # as the trainer does after compiling
  # XLA's cost analysis counts a loop's body once (the attention's query chunks, the
  # kernel gradient's row chunks on CPU), so this is a lower bound.
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  flops = float(cost.get("flops", 0.0)) if cost else 0.0
  start = time.perf_counter()
  state, metrics = compiled(state, batch, perceptual.params)
  jax.block_until_ready(metrics)
  first = time.perf_counter() - start
  times = []
  for _ in range(args.steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch, perceptual.params)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  stats = jax.devices()[0].memory_stats() or {}
  return {"compile_seconds": compile_seconds, "first_step_seconds": first,
          "step_seconds": statistics.median(times), "peak_rss_bytes": _peak_rss_bytes(),
          "device_peak_bytes": stats.get("peak_bytes_in_use"), "gflop_per_step": flops / 1e9,
          "device": jax.devices()[0].device_kind, "backend": jax.default_backend()}


def _official(args) -> dict:
  import numpy as np  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel

  from mcc_jax.testing import official_training  # pylint: disable=import-outside-toplevel

  torch.manual_seed(0)
  vgg = official_training.random_vgg19(torch)
  official = official_training.load(args.official_repo, vgg)
  code, options = official.code, official.options
  build = lambda cls, block: cls(**{k: v for k, v in options[block].items() if k != "type"})
  networks = {"generator": build(code.AppMotionCompFormer, "network_g"),
              "motion_estimator": build(code.MotionEstimator, "network_motion_estimator"),
              "discriminator": build(code.VQGANDiscriminator, "network_d")}
  model = official_training.build_step(official, networks, torch, torch.float32)
  size = options["datasets"]["train"].get("gt_size", 256) if "datasets" in options else 256
  rng = np.random.default_rng(0)
  data = {k: torch.from_numpy(rng.uniform(-1, 1, (args.batch, 3, size, size)).astype(np.float32))
          for k in ("source", "driving")}
  model.feed_data(data)
  times = []
  with official_training.cpu_cuda_calls(torch):
    for index in range(args.steps + 1):
      start = time.perf_counter()
      model.optimize_parameters(5002 + index)
      times.append(time.perf_counter() - start)
  return {"first_step_seconds": times[0], "step_seconds": statistics.median(times[1:]),
          "peak_rss_bytes": _peak_rss_bytes(), "threads": torch.get_num_threads(),
          "torch": torch.__version__}


def _run_side(side: str, args) -> dict:
  command = [sys.executable, __file__, "--side", side, "--batch", str(args.batch),
             "--steps", str(args.steps), "--config", str(args.config), "--dtype", args.dtype]
  if args.remat:
    command.append("--remat")
  if args.official_repo:
    command += ["--official-repo", str(args.official_repo)]
  result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
  if result.returncode:
    raise RuntimeError(f"the {side} side failed:\n{result.stderr[-4000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--official-repo", type=pathlib.Path, default=None)
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--config", type=pathlib.Path, default=ROOT / "configs" / "vox256.py")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--remat", action="store_true",
                      help="mcc-jax side: config.model.remat=True (recompute the residual "
                           "blocks' activations in the backward pass).")
  parser.add_argument("--json", type=pathlib.Path, default=None)
  parser.add_argument("--side", choices=("ours", "official"), default=None,
                      help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.steps < 1:
    parser.error("--steps must be >= 1")
  if args.side:
    print(json.dumps(_ours(args) if args.side == "ours" else _official(args)))
    return 0

  results = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
             "batch": args.batch, "config": str(args.config), "dtype": args.dtype,
             "remat": args.remat, "mcc_jax": _run_side("ours", args)}
  if args.official_repo:
    results["official"] = _run_side("official", args)
    results["time_ratio"] = results["mcc_jax"]["step_seconds"] / results["official"]["step_seconds"]
    results["memory_ratio"] = (results["mcc_jax"]["peak_rss_bytes"]
                               / results["official"]["peak_rss_bytes"])
  gb = lambda b: b / 2**30
  print(f"training step, batch {args.batch}, {args.config.stem}, {args.dtype}, full objective"
        + (", mcc-jax with remat" if args.remat else ""))
  print(f"{'':10s} {'s/step':>8s} {'examples/s':>11s} {'first step s':>13s} {'peak RSS GiB':>12s}")
  for name in ("mcc_jax", "official"):
    if name in results:
      r = results[name]
      print(f"{name:10s} {r['step_seconds']:8.2f} {args.batch / r['step_seconds']:11.3f} "
            f"{r['first_step_seconds']:13.1f} {gb(r['peak_rss_bytes']):12.2f}")
  if "time_ratio" in results:
    print(f"ratio (mcc-jax / official): time {results['time_ratio']:.2f}, "
          f"peak memory {results['memory_ratio']:.2f}")
  if args.json:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
