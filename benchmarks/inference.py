"""Inference speed of the whole pipeline (motion estimator + generator) per generated frame.

    python benchmarks/inference.py [--config configs/vox256.py] [--batch-sizes 1 8]
        [--dtype float32] [--repeats 5] [--official-repo PATH] [--json PATH]

For each batch size: seconds per generated frame (median of ``--repeats`` timed runs
after a warm-up), frames per second, GFLOP per frame from XLA's cost analysis of the
compiled program, and peak memory (the device's peak allocation where the backend
reports it, else XLA's estimate of the program's buffers). Weights are random: speed
does not depend on them.

With ``--official-repo`` the official PyTorch pipeline (built from that checkout at run
time) is timed on the same inputs in the same run, and the ratio is printed; PyTorch
uses every core JAX uses.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from mcc_jax import config_cli  # noqa: E402
from mcc_jax.models import attention  # noqa: E402
from mcc_jax.models import factory  # noqa: E402
from timing import median_seconds  # noqa: E402  (the benchmarks folder)


def _random_like(shapes, seed=0):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(0.02 * rng.normal(size=s.shape), s.dtype), shapes)


def _peak_memory(compiled) -> tuple[int | None, str]:
  stats = jax.devices()[0].memory_stats() if hasattr(jax.devices()[0], "memory_stats") else None
  if stats and "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"]), "device peak"
  analysis = compiled.memory_analysis()
  if analysis is None:
    return None, "unavailable"
  total = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
           + analysis.temp_size_in_bytes)
  return int(total), "XLA buffers"


def _flops(frame, variables, source, driving) -> float:
  """FLOPs of one call by XLA's cost analysis.

  On CPU, attention runs over query chunks in a loop, and the cost analysis counts a
  loop body once; the count is therefore taken from a lowering without chunking (the
  same arithmetic).
  """
  inner = frame.__wrapped__
  with mock.patch.object(attention, "default_query_chunk_size", lambda: None):
    # A new function object, so that the trace is not taken from jit's cache.
    lowered = jax.jit(lambda *args: inner(*args)).lower(variables, source, driving)
    cost = lowered.compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


def build_pipeline(config, dtype: str):
  """Returns (jitted frame function, variables) for random weights."""
  model = config.model
  model.dtype = dtype
  estimator = factory.build_motion_estimator(model)
  generator = factory.build_generator(model)
  size = model.image_size
  image = jnp.zeros((1, size, size, 3))
  me_shapes = jax.eval_shape(lambda: estimator.init(jax.random.PRNGKey(0), image, image,
                                                    train=False))
  motion = jax.eval_shape(lambda v: estimator.apply(v, image, image, train=False), me_shapes)
  gen_shapes = jax.eval_shape(lambda m: generator.init(
      jax.random.PRNGKey(0), image, m.deformation, m.occlusion, m.driving_heatmaps,
      train=False), motion)
  variables = {"motion_estimator": _random_like(me_shapes), "generator": _random_like(gen_shapes)}
  # BatchNorm variances must stay positive.
  variables["motion_estimator"]["batch_stats"] = jax.tree.map(
      jnp.abs, variables["motion_estimator"]["batch_stats"])

  def frame(variables, source, driving):
    motion = estimator.apply(variables["motion_estimator"], source, driving, train=False)
    return generator.apply(variables["generator"], source, motion.deformation, motion.occlusion,
                           motion.driving_heatmaps, train=False).image

  return jax.jit(frame), variables


def time_official(repo: pathlib.Path, batch: int, size: int, repeats: int) -> float:
  """Seconds per frame of the official PyTorch pipeline (random weights)."""
  import torch  # pylint: disable=import-outside-toplevel
  import yaml  # pylint: disable=import-outside-toplevel

  sys.path.insert(0, str(ROOT / "tools"))
  import official_code  # pylint: disable=import-outside-toplevel

  code = official_code.load(repo)
  options = yaml.safe_load((repo / "options" / "train.yml").read_text())
  build = lambda cls, block: cls(**{k: v for k, v in options[block].items() if k != "type"})
  estimator = build(code.MotionEstimator, "network_motion_estimator").eval()
  generator = build(code.AppMotionCompFormer, "network_g").eval()
  source = torch.rand(batch, 3, size, size) * 2 - 1
  driving = torch.rand(batch, 3, size, size) * 2 - 1

  def run():
    with torch.no_grad():
      dense = estimator(driving, source)
      return generator(source, dense, w=1, inference=True)["out"]

  return median_seconds(run, repeats) / batch


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", default=str(ROOT / "configs" / "vox256.py"))
  parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
  parser.add_argument("--dtype", default="float32", choices=sorted(factory.DTYPES))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--official-repo", type=pathlib.Path, default=None)
  parser.add_argument("--json", type=pathlib.Path, default=None)
  args = parser.parse_args(argv)
  if args.repeats < 1:
    parser.error("--repeats must be >= 1")

  config = config_cli.load_config(str(args.config))
  frame, variables = build_pipeline(config, args.dtype)
  size = config.model.image_size
  device = jax.devices()[0]
  print(f"backend {jax.default_backend()} ({device.device_kind}), {size}x{size}, {args.dtype}, "
        f"median of {args.repeats}")
  header = f"{'batch':>5s} {'s/frame':>9s} {'frames/s':>9s} {'GFLOP/frame':>12s} {'peak MB':>9s}"
  if args.official_repo:
    header += f" {'official s/frame':>17s} {'ratio':>6s}"
  print(header)
  results = {}
  for batch in args.batch_sizes:
    rng = np.random.default_rng(batch)
    source = jnp.asarray(rng.uniform(-1, 1, (batch, size, size, 3)), jnp.float32)
    driving = jnp.asarray(rng.uniform(-1, 1, (batch, size, size, 3)), jnp.float32)
    compiled = frame.lower(variables, source, driving).compile()
    flops = _flops(frame, variables, source, driving)
    seconds = median_seconds(lambda: jax.block_until_ready(compiled(variables, source, driving)),
                              args.repeats) / batch
    peak, peak_kind = _peak_memory(compiled)
    entry = {"sec_per_frame": seconds, "frames_per_sec": 1.0 / seconds,
             "gflop_per_frame": flops / batch / 1e9, "peak_memory_bytes": peak,
             "peak_memory_kind": peak_kind, "dtype": args.dtype, "image_size": size,
             "backend": jax.default_backend(), "device": device.device_kind}
    line = (f"{batch:5d} {seconds:9.3f} {1 / seconds:9.2f} {flops / batch / 1e9:12.1f} "
            f"{(peak or 0) / 2**20:9.0f}")
    if args.official_repo:
      official = time_official(args.official_repo, batch, size, args.repeats)
      entry.update(official_sec_per_frame=official, ratio_to_official=seconds / official)
      line += f" {official:17.3f} {seconds / official:6.2f}"
    results[str(batch)] = entry
    print(line)
  if args.json is not None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    # Keyed by batch size; each entry names its backend, device and dtype.
    args.json.write_text(json.dumps(results, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
