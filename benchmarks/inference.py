"""Inference speed of the whole pipeline (motion estimator + generator) per generated frame.

    python benchmarks/inference.py [--config configs/vox256.py] [--batch-sizes 1 8]
        [--dtype float32] [--repeats 5] [--official-repo PATH] [--json PATH]
        [--processes auto|one|per-batch-size]

For each batch size: seconds per generated frame (median of ``--repeats`` timed runs
after a warm-up), frames per second, GFLOP per frame from XLA's cost analysis of the
compiled program, and peak memory (the device's peak allocation where the backend
reports it, else XLA's estimate of the program's buffers). Weights are random: speed
does not depend on them.

With ``--official-repo`` the official PyTorch pipeline (built from that checkout at run
time, PyTorch's default random initialisation) is timed on the same inputs in the same
run, twice:

* as shipped;
* with its dead warps removed. The official generator also warps the encoder features
  a second time at every scale (``deform_feat_list``: 4 extra ``grid_sample`` calls
  per frame at 256x256, with their flow and occlusion resizing), returns them, and
  nothing reads them; mcc-jax does not compute them. The benchmark removes those
  statements from the official ``AppMotionCompFormer.forward`` at run time (it parses
  the method's source from the checkout, drops the statements that build
  ``deform_feat_list`` and compiles the result in the official module's namespace; no
  file is changed) and asserts that the patched forward returns exactly the outputs of
  the shipped one.

mcc-jax and both official variants take turns run by run (``timing.interleaved_seconds``),
so that a noisy host slows them alike, and both ratios (mcc-jax time / official time,
of the medians) are printed and written to the JSON, together with the ratios of the
fastest runs and every timed run. PyTorch uses every core JAX uses; on a GPU backend
the official pipeline runs on CUDA when PyTorch has it (and JAX's memory preallocation
is turned off, so that both fit).

Peak memory on accelerators: PyTorch's peak statistics are reset before every batch
size. JAX cannot reset a device's ``peak_bytes_in_use`` (a high-water mark for the
life of the process), so with ``--processes auto`` (the default) every batch size runs
in its own child process wherever the device reports that peak; on CPU, which reports
none, the figure is XLA's buffer estimate of the batch size's own program.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import types
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax import config_cli
from mcc_jax.models import attention
from mcc_jax.models import factory
from mcc_jax.models import reenactment
from mcc_jax.testing.timing import interleaved_seconds


ROOT = pathlib.Path(__file__).resolve().parents[1]
# The list of the official generator's forward that is built and returned but never read.
DEAD_LIST = "deform_feat_list"


def _random_like(shapes, seed=0):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(0.02 * rng.normal(size=s.shape), s.dtype), shapes)


def _device_peak() -> int | None:
  device = jax.devices()[0]
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"])
  return None


def _peak_memory(compiled, shared_process: bool) -> tuple[int | None, str]:
  peak = _device_peak()
  if peak is not None:
    # JAX has no way to reset the peak: with several batch sizes in one process, the
    # figure is the largest so far.
    return peak, "device peak (running maximum of the process)" if shared_process \
        else "device peak"
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
  key = jax.random.PRNGKey(0)
  shapes = jax.eval_shape(lambda: reenactment.init_variables(
      estimator, generator, model.image_size, key, key, train=False))
  variables = _random_like(shapes)
  # BatchNorm variances must stay positive.
  variables["motion_estimator"]["batch_stats"] = jax.tree.map(
      jnp.abs, variables["motion_estimator"]["batch_stats"])

  def frame(variables, source, driving):
    return reenactment.reenact(estimator, generator, variables, source, driving).output.image

  return jax.jit(frame), variables


class _DropDeadList(ast.NodeTransformer):
  """Turns ``deform_feat_list = [...]`` into ``= []`` and drops its ``.append(...)`` calls."""

  def __init__(self):
    self.removed = 0

  def visit_Assign(self, node):  # pylint: disable=invalid-name
    if any(isinstance(t, ast.Name) and t.id == DEAD_LIST for t in node.targets):
      self.removed += 1
      node.value = ast.List(elts=[], ctx=ast.Load())
    return node

  def visit_Expr(self, node):  # pylint: disable=invalid-name
    call = node.value
    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
        and call.func.attr == "append" and isinstance(call.func.value, ast.Name)
        and call.func.value.id == DEAD_LIST):
      self.removed += 1
      return ast.copy_location(ast.Pass(), node)
    return node


def without_dead_warps(forward):
  """The official generator's ``forward`` with the statements filling ``deform_feat_list``
  removed (the list is returned empty), compiled from the checkout's source at run time.

  Args:
    forward: ``AppMotionCompFormer.forward`` of the loaded official code.

  Returns:
    (function, number of statements removed).
  """
  lines, first_line = inspect.getsourcelines(forward)
  tree = ast.parse(textwrap.dedent("".join(lines)))
  ast.increment_lineno(tree, first_line - 1)
  dropper = _DropDeadList()
  tree = ast.fix_missing_locations(dropper.visit(tree))
  if dropper.removed == 0:
    raise RuntimeError(f"the official forward no longer builds {DEAD_LIST}: nothing to remove.")
  namespace = {}
  exec(compile(tree, inspect.getsourcefile(forward), "exec"),  # pylint: disable=exec-used
       forward.__globals__, namespace)
  return namespace[forward.__name__], dropper.removed


class OfficialPipeline:
  """The official motion estimator and generator, random weights, as shipped or lean."""

  def __init__(self, repo: pathlib.Path, device: str):
    import torch  # pylint: disable=import-outside-toplevel
    import yaml  # pylint: disable=import-outside-toplevel

    from mcc_jax.testing import official_code  # pylint: disable=import-outside-toplevel

    self.torch, self.device = torch, device
    code = official_code.load(repo)
    options = yaml.safe_load((repo / "options" / "train.yml").read_text())
    build = lambda cls, block: cls(**{k: v for k, v in options[block].items() if k != "type"})
    self.image_size = options["network_g"]["img_size"]
    self.estimator = build(code.MotionEstimator, "network_motion_estimator").eval().to(device)
    self.generator = build(code.AppMotionCompFormer, "network_g").eval().to(device)
    lean, self.statements_removed = without_dead_warps(type(self.generator).forward)
    self.lean_forward = types.MethodType(lean, self.generator)

  def outputs(self, source, driving, lean: bool) -> dict:
    """The generator's output dictionary for one batch (torch NCHW inputs)."""
    patch = (mock.patch.object(self.generator, "forward", self.lean_forward) if lean
             else contextlib.nullcontext())
    with self.torch.no_grad(), patch:
      dense = self.estimator(driving, source)
      out = self.generator(source, dense, w=1, inference=True)
    if self.device != "cpu":
      self.torch.cuda.synchronize()
    return out

  def check_lean_is_equal(self, source, driving) -> None:
    """Asserts that the lean forward returns the shipped forward's outputs exactly."""
    shipped = self.outputs(source, driving, lean=False)
    lean = self.outputs(source, driving, lean=True)
    assert set(shipped) == set(lean), (sorted(shipped), sorted(lean))
    assert len(shipped[DEAD_LIST]) > 0 and len(lean[DEAD_LIST]) == 0
    exact = self.device == "cpu"  # CUDA kernels may pick other algorithms run to run.
    compared = 0
    for key in shipped:
      if key == DEAD_LIST:
        continue
      flat_a, flat_b = _tensors(shipped[key]), _tensors(lean[key])
      assert len(flat_a) == len(flat_b), key
      for a, b in zip(flat_a, flat_b):
        same = self.torch.equal(a, b) if exact else self.torch.allclose(a, b, atol=1e-5)
        assert same, f"the lean official forward changed {key!r}"
        compared += 1
    assert compared > 0


def _tensors(value) -> list:
  if isinstance(value, (list, tuple)):
    return [t for item in value for t in _tensors(item)]
  if isinstance(value, dict):
    return [t for item in value.values() for t in _tensors(item)]
  return [value] if hasattr(value, "shape") else []


def _torch_device() -> str:
  import torch  # pylint: disable=import-outside-toplevel

  return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _child_processes(args, argv_json: pathlib.Path | None) -> int:
  """Runs every batch size in its own process and merges what they write."""
  results = {}
  with tempfile.TemporaryDirectory() as scratch:
    for batch in args.batch_sizes:
      out = pathlib.Path(scratch) / f"{batch}.json"
      command = [sys.executable, str(pathlib.Path(__file__).resolve()),
                 "--config", str(args.config), "--batch-sizes", str(batch),
                 "--dtype", args.dtype, "--repeats", str(args.repeats),
                 "--processes", "one", "--json", str(out)]
      if args.official_repo:
        command += ["--official-repo", str(args.official_repo)]
      if batch != args.batch_sizes[0]:
        command.append("--no-header")
      subprocess.run(command, check=True)
      results.update(json.loads(out.read_text()))
  if argv_json is not None:
    argv_json.parent.mkdir(parents=True, exist_ok=True)
    argv_json.write_text(json.dumps(results, indent=2) + "\n")
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", default=str(ROOT / "configs" / "vox256.py"))
  parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
  parser.add_argument("--dtype", default="float32", choices=sorted(factory.DTYPES))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--official-repo", type=pathlib.Path, default=None)
  parser.add_argument("--json", type=pathlib.Path, default=None)
  parser.add_argument(
      "--processes", choices=("auto", "one", "per-batch-size"), default="auto",
      help="per-batch-size: each batch size in its own child process, so that the device's "
           "peak memory (which JAX cannot reset) is that batch size's own; auto: so where "
           "the device reports a peak (GPU, TPU), else one process.")
  parser.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.repeats < 1:
    parser.error("--repeats must be >= 1")
  if args.official_repo:
    # On a GPU, JAX would otherwise take most of the memory before PyTorch runs. Set
    # before the first backend call (and inherited by the child processes).
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  separate = args.processes == "per-batch-size" or (
      args.processes == "auto" and _device_peak() is not None)
  if separate and len(args.batch_sizes) > 1:
    return _child_processes(args, args.json)

  config = config_cli.load_config(str(args.config))
  frame, variables = build_pipeline(config, args.dtype)
  size = config.model.image_size
  device = jax.devices()[0]
  official = None
  if args.official_repo:
    official = OfficialPipeline(args.official_repo, _torch_device())
    if official.image_size != size:
      parser.error(f"the official network is built for {official.image_size}x"
                   f"{official.image_size} frames; --config is {size}x{size} "
                   f"(use configs/vox256.py with --official-repo).")
  if not args.no_header:
    print(f"backend {jax.default_backend()} ({device.device_kind}), {size}x{size}, "
          f"{args.dtype}, median of {args.repeats}, random weights"
          + (f"; official on {official.device}, as shipped and without its "
             f"{official.statements_removed} dead-warp statements (outputs checked equal)"
             if official else ""))
    header = (f"{'batch':>5s} {'s/frame':>9s} {'frames/s':>9s} {'GFLOP/frame':>12s} "
              f"{'peak MB':>9s}")
    if official:
      header += (f" {'official s/frame':>17s} {'ratio':>6s} {'lean official':>14s} "
                 f"{'ratio':>6s}")
    print(header, flush=True)
  results = {}
  for batch in args.batch_sizes:
    rng = np.random.default_rng(batch)
    source = jnp.asarray(rng.uniform(-1, 1, (batch, size, size, 3)), jnp.float32)
    driving = jnp.asarray(rng.uniform(-1, 1, (batch, size, size, 3)), jnp.float32)
    compiled = frame.lower(variables, source, driving).compile()
    flops = _flops(frame, variables, source, driving)
    fns = {"mcc-jax": lambda: jax.block_until_ready(compiled(variables, source, driving))}
    if official:
      torch = official.torch
      if official.device != "cpu":
        torch.cuda.reset_peak_memory_stats()
      to_torch = lambda a: torch.from_numpy(np.array(a)).permute(0, 3, 1, 2).contiguous() \
          .to(official.device)
      t_source, t_driving = to_torch(source), to_torch(driving)
      official.check_lean_is_equal(t_source, t_driving)
      fns["official"] = lambda: official.outputs(t_source, t_driving, lean=False)["out"]
      fns["official lean"] = lambda: official.outputs(t_source, t_driving, lean=True)["out"]
    samples = {name: [t / batch for t in values]
               for name, values in interleaved_seconds(fns, args.repeats).items()}
    times = {name: statistics.median(values) for name, values in samples.items()}
    fastest = {name: min(values) for name, values in samples.items()}
    seconds = times["mcc-jax"]
    peak, peak_kind = _peak_memory(compiled, shared_process=len(args.batch_sizes) > 1)
    entry = {"sec_per_frame": seconds, "frames_per_sec": 1.0 / seconds,
             "gflop_per_frame": flops / batch / 1e9, "peak_memory_bytes": peak,
             "peak_memory_kind": peak_kind, "dtype": args.dtype, "image_size": size,
             "backend": jax.default_backend(), "device": device.device_kind,
             "repeats": args.repeats, "weights": "random",
             "samples_sec_per_frame": samples}
    line = (f"{batch:5d} {seconds:9.3f} {1 / seconds:9.2f} {flops / batch / 1e9:12.1f} "
            f"{(peak or 0) / 2**20:9.0f}")
    if official:
      shipped, lean = times["official"], times["official lean"]
      entry.update(
          official_sec_per_frame=shipped, ratio_to_official=seconds / shipped,
          official_without_dead_warps_sec_per_frame=lean,
          ratio_to_official_without_dead_warps=seconds / lean,
          # The same ratios from the fastest run of each (the least disturbed by other load).
          ratio_of_fastest_to_official=fastest["mcc-jax"] / fastest["official"],
          ratio_of_fastest_to_official_without_dead_warps=(
              fastest["mcc-jax"] / fastest["official lean"]),
          official_device=official.device,
          official_peak_memory_bytes=(int(torch.cuda.max_memory_allocated())
                                      if official.device != "cpu" else None))
      line += f" {shipped:17.3f} {seconds / shipped:6.2f} {lean:14.3f} {seconds / lean:6.2f}"
    results[str(batch)] = entry
    print(line, flush=True)
    if official:
      print(f"      fastest runs: mcc-jax {fastest['mcc-jax']:.3f}, official "
            f"{fastest['official']:.3f} (ratio {entry['ratio_of_fastest_to_official']:.2f}), "
            f"lean official {fastest['official lean']:.3f} (ratio "
            f"{entry['ratio_of_fastest_to_official_without_dead_warps']:.2f}) s/frame",
            flush=True)
  if args.json is not None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    # Keyed by batch size; each entry names its backend, device and dtype.
    args.json.write_text(json.dumps(results, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
