"""Checks that one mcc-jax training step equals one step of the official training code.

Builds the official networks (options/train.yml, random weights as in
check_official_parity.py; random smooth frames as inputs) and a randomly initialised VGG19 of torchvision's architecture
for the perceptual loss, converts every weight to mcc-jax, and runs one training step on
both sides with the same batch and the same random equivariance transform, at an
iteration after the discriminator's start (5002: GAN term, adaptive weight and the
discriminator step are active). The official step is the official code's own
``optimize_parameters`` (see tools/official_training.py). Compared:

* every loss term, the adaptive weight, the total, the discriminator's losses;
* the gradient of the generator objective per parameter group (generator, keypoint
  detector, dense motion) and the discriminator's gradient (relative L2 per group);
* the parameters after one Adam step of each optimiser (relative L2 per group).

    python tools/check_training_parity.py --official-repo PATH [--float64-reference]
        [--batch 1] [--seed 0]

Each output is judged with ``mcc_jax.testing.parity.judge``: within the flat bound
(1e-4 for terms and gradients, 1e-5 for parameters) of the official float32 run, or,
with ``--float64-reference``, no further from the official float64 run than 1.5x the
official float32 runs are. Those runs are the official step on the batch itself and on
``--rounding-runs`` more copies of it moved by one ulp per pixel (random direction),
which sample how far float32 rounding alone carries the step across its
discontinuities (nearest-code choices, bilinear sampling cells, ReLU kinks), each under
every convolution backend of ``--official-backends``: PyTorch's CPU build has two,
oneDNN (its default) and its own native im2col kernels
(``torch.backends.mkldnn.flags(enabled=False)``), and both are the official code
computing in float32. Our step is run on the same batches, so each backend is sampled
as many times as ours. Exit status 0 when everything passes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import pathlib
import pickle
import sys

import jax
import numpy as np

from mcc_jax.configs import vox256
from mcc_jax.convert.generator import convert_discriminator, convert_generator
from mcc_jax.convert.motion_estimator import convert_motion_estimator
from mcc_jax.testing import official_parity
from mcc_jax.testing import official_training
from mcc_jax.testing import official_weights_step, parity
from mcc_jax.train import step as step_lib

ITERATION = official_weights_step.ITERATION
# With --ours-float64: the largest relative L2 distance allowed between our float64 step
# and the official float64 step (set in the light of the measured distances; see
# docs/training.md).
FLOAT64_RTOL = 1e-6
# Bumped when what the cache holds changes (2: motion-estimator trees kept in float64;
# 3: one entry per official run, filled in as runs are asked for).
_CACHE_FORMAT = 3
# PyTorch's CPU convolution backends: name -> whether oneDNN (mkldnn) is enabled.
BACKENDS = {"onednn": True, "native": False}
# Official log key -> our term name.
_TERMS = {
    "l_g_pix": "l1", "l_g_gan": "gan", "d_weight": "adaptive_weight",
    "l_g_motion_codebook_code": "motion_code",
    "l_g_motion_codebook_recon": "motion_reconstruction",
    "l_g_pix_lr_0": "low_resolution_l1", "l_g_percep_lr_0": "low_resolution_perceptual",
    "l_g_app_codebook_code": "appearance_code", "l_equivariance_value": "equivariance_value",
    "l_equivariance_jacobian": "equivariance_jacobian", "l_kpd": "keypoint_distance",
    "l_d_real": "discriminator_real", "l_d_fake": "discriminator_fake",
}


def _numpy_state(net, values=None):
  """state_dict as float64 numpy; ``values`` replaces the parameters (e.g. by their grads)."""
  state = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
  if values is not None:
    for name, param in net.named_parameters():
      state[name] = values(name, param)
  return state


def _grads(name, param):
  return (np.zeros(tuple(param.shape)) if param.grad is None
          else param.grad.detach().double().numpy())


@contextlib.contextmanager
def _convolution_backend(torch, backend: str):
  """PyTorch's CPU convolutions computed by ``backend`` (a key of ``BACKENDS``) inside."""
  enabled = torch.backends.mkldnn.enabled
  torch.backends.mkldnn.enabled = BACKENDS[backend]
  try:
    yield
  finally:
    torch.backends.mkldnn.enabled = enabled


def official_step(official, networks, vgg, torch, dtype, source, driving, theta, control,
                   backend="onednn"):
  """Runs the official step; returns terms, gradients and parameters as numpy trees.

  ``backend`` names PyTorch's CPU convolution backend (a key of ``BACKENDS``).
  """
  networks = {k: copy.deepcopy(v) for k, v in networks.items()}
  vgg.to(dtype)
  model = official_training.build_step(official, networks, torch, dtype)
  to_torch = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(dtype)
  model.feed_data({"source": to_torch(source), "driving": to_torch(driving)})
  with official_training.cpu_cuda_calls(torch), official_training.fixed_transform(
      official, theta, control, torch, dtype), _convolution_backend(torch, backend):
    model.optimize_parameters(ITERATION)
  log = dict(model.log_dict)
  terms = {ours: log[key] for key, ours in _TERMS.items()}
  # From iteration 5002 the official logged l_g_percep is percep + pix (in-place +=).
  terms["perceptual"] = log["l_g_percep"] - log["l_g_pix"]
  terms["total"] = sum(v for k, v in terms.items()
                       if k not in ("adaptive_weight", "discriminator_real",
                                    "discriminator_fake"))
  terms["discriminator_loss"] = log["l_d_real"] + log["l_d_fake"]
  generator, estimator, disc = (networks[k] for k in
                                ("generator", "motion_estimator", "discriminator"))
  out = {
      "terms": terms,
      "grads": {"generator": _numpy_state(generator, _grads),
                "motion_estimator": _numpy_state(estimator, _grads),
                "discriminator": _numpy_state(disc, _grads)},
      "params": {"generator": _numpy_state(generator),
                 "motion_estimator": _numpy_state(estimator),
                 "discriminator": _numpy_state(disc)},
  }
  del model, networks
  gc.collect()
  return out


def to_ours(trees, models, num_layers):
  """Official-layout numpy state dicts -> our parameter trees (per group)."""
  # Never rounded to float32: the float64 run's gradients are compared in float64.
  wide = lambda tree: jax.tree.map(lambda x: np.asarray(x, np.float64), tree)
  estimator = convert_motion_estimator(trees["motion_estimator"], models.motion_estimator)
  return {
      "generator": wide(convert_generator(trees["generator"], models.generator)["params"]),
      "keypoint_detector": wide(estimator["params"]["keypoint_detector"]),
      "dense_motion": wide(estimator["params"]["dense_motion"]),
      "discriminator": wide(convert_discriminator(trees["discriminator"], num_layers)["params"]),
  }


def _smooth_images(rng, batch: int, size: int) -> np.ndarray:
  """Random frames in [-1, 1] with the smoothness of real ones (16x16 noise, bilinear).

  Pixel-independent noise would make the equivariance loss's resampled frame (and so its
  keypoints) depend on the last bit of every sampling position, a sensitivity no real
  frame has, which turns the float32 rounding of either side into large differences.
  """
  import torch  # pylint: disable=import-outside-toplevel
  coarse = torch.from_numpy(rng.uniform(-1, 1, (batch, 3, 16, 16)))
  fine = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear",
                                         align_corners=False)
  return fine.permute(0, 2, 3, 1).numpy().astype(np.float32)


def _flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def _one_ulp(rng, x: np.ndarray) -> np.ndarray:
  """``x`` with every element moved to a neighbouring float32, in a random direction."""
  direction = np.where(rng.random(x.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
  return np.nextafter(x.astype(np.float32), direction)


def _summarise(run, models, num_layers, dtype):
  """An official step's terms, and its gradients and parameters per group, flattened."""
  trees = {kind: to_ours(run[kind], models, num_layers) for kind in ("grads", "params")}
  return {"terms": run["terms"],
          **{kind: {group: _flat(tree).astype(dtype) for group, tree in groups.items()}
             for kind, groups in trees.items()}}


def _flatten(summary):
  """Our step's gradients and parameters as one flat float64 vector per group."""
  return {"terms": summary["terms"],
          **{kind: {group: _flat(tree) for group, tree in summary[kind].items()}
             for kind in ("grads", "params")}}


class _OfficialRuns:
  """The official runs' summaries by name, kept in a pickle between invocations.

  Only runs of the same batch size, seed and cache format are reused; a run asked for
  and not in the file is computed and added by the next :meth:`save`.
  """

  def __init__(self, path: pathlib.Path | None, key):
    self._path, self._key, self._runs, self._changed = path, key, {}, False
    if path is not None and path.exists():
      with path.open("rb") as f:
        cached = pickle.load(f)
      if cached.get("key") == key:
        self._runs = cached["runs"]

  def __contains__(self, name):
    return name in self._runs

  def __getitem__(self, name):
    return self._runs[name]

  def __setitem__(self, name, summary):
    self._runs[name], self._changed = summary, True

  def save(self):
    if self._path is not None and self._changed:
      with self._path.open("wb") as f:
        pickle.dump({"key": self._key, "runs": self._runs}, f)
      self._changed = False


def run(official_repo, batch: int = 1, seed: int = 0, float64_reference: bool = False,
        rounding_runs: int = 2, ours_float64: bool = False,
        official_cache: pathlib.Path | None = None, backends=tuple(BACKENDS),
        out=sys.stdout) -> bool:
  """Runs the comparison, prints the table and returns whether everything passed.

  ``backends`` (keys of ``BACKENDS``) are the PyTorch convolution backends whose
  official float32 runs sample the rounding floor (with ``float64_reference``).
  """
  unknown = sorted(set(backends) - set(BACKENDS))
  if unknown or not backends:
    raise ValueError(f"backends must be a non-empty subset of {sorted(BACKENDS)}, got "
                     f"{list(backends)}")
  import torch  # pylint: disable=import-outside-toplevel

  jax.config.update("jax_default_matmul_precision", "highest")
  torch.manual_seed(seed)
  vgg = official_training.random_vgg19(torch, seed)
  official = official_training.load(official_repo, vgg)
  code, options = official.code, official.options
  build = lambda cls, block: cls(**{k: v for k, v in options[block].items() if k != "type"})
  networks = {"generator": build(code.AppMotionCompFormer, "network_g"),
              "motion_estimator": build(code.MotionEstimator, "network_motion_estimator"),
              "discriminator": build(code.VQGANDiscriminator, "network_d")}
  for index, net in enumerate(networks.values()):
    official_parity.randomise(net, torch, seed + index)

  config = vox256.get_config()
  config.model.batch_norm_group_size = 0        # the official step: one GPU's whole batch
  config.batch_size = batch
  models = step_lib.build_models(config)
  size = config.model.image_size
  rng = np.random.default_rng(seed)
  source, driving = (_smooth_images(rng, batch, size) for _ in range(2))
  theta = (np.eye(2, 3)[None] + 0.05 * rng.normal(size=(batch, 2, 3))).astype(np.float32)
  control = (0.005 * rng.normal(size=(batch, 25))).astype(np.float32)
  # The rounding runs' batches: every pixel moved by one ulp, in a random direction.
  perturbed = [tuple(_one_ulp(rng, x) for x in (source, driving))
               for _ in range(rounding_runs if float64_reference else 0)]

  initial = {name: _numpy_state(net) for name, net in networks.items()}
  vgg_state = {f"features.{k}": v.detach().numpy().copy()
               for k, v in vgg.features.state_dict().items()}
  # The float64 step first, while little else is held: it needs the most memory.
  ours64 = None
  if ours_float64:
    # The float32 weights, inputs and transform widen exactly to float64, and so does
    # the one constant both sides compute in float32, the anti-aliasing blur kernel
    # (ops.antialias builds it the official way, bit for bit at the model's scales).
    # What remains between the float64 runs is the algorithm.
    with jax.enable_x64(True):
      ours64 = _flatten(official_weights_step.run_steps(
          config, initial, vgg_state, [(source, driving)], theta, control, "float64")[0])
    jax.clear_caches()      # the float64 program and its buffers
    gc.collect()
  num_layers = models.discriminator.num_layers
  # Every official run this comparison needs: name -> (dtype, inputs, backend).
  wanted = {"float32 onednn 0": (torch.float32, (source, driving), "onednn")}
  if float64_reference:
    wanted["float64"] = (torch.float64, (source, driving), "onednn")
    for backend in backends:
      for index, inputs in enumerate([(source, driving), *perturbed]):
        wanted[f"float32 {backend} {index}"] = (torch.float32, inputs, backend)
  official_runs = _OfficialRuns(official_cache, (batch, seed, _CACHE_FORMAT))
  for name, (dtype, inputs, backend) in wanted.items():
    if name not in official_runs:
      official_runs[name] = _summarise(
          official_step(official, networks, vgg, torch, dtype, *inputs, theta, control,
                         backend), models, num_layers,
          np.float64 if dtype == torch.float64 else np.float32)
  official_runs.save()
  theirs = official_runs["float32 onednn 0"]
  reference = official_runs["float64"] if float64_reference else None
  # Every official float32 draw but ``theirs``, by backend.
  runs_by_backend = {b: [official_runs[n] for n in wanted
                         if n.startswith(f"float32 {b} ") and n != "float32 onednn 0"]
                     for b in (backends if float64_reference else ())}
  runs = [run for draws in runs_by_backend.values() for run in draws]
  del networks, vgg
  gc.collect()

  ours, *our_runs = official_weights_step.run_steps(
      config, initial, vgg_state, [(source, driving), *perturbed], theta, control, "float32")
  passed = True
  header = f"{'quantity':34s} {'ours':>12s} {'official':>12s} {'rel error':>10s}"
  if reference:
    header += (f" {'ours vs f64':>12s} {'(max)':>9s} {'official vs f64':>16s}"
               + "".join(f" {b + ' (max)':>13s}" for b in runs_by_backend))
  if ours64:
    header += f" {'f64 vs f64':>11s}"
  print(header + "  verdict", file=out)

  def line(name, get, mine, mine_runs, rtol, mine64=None, show_values=True):
    """``get`` reads the quantity from an official run's summary."""
    nonlocal passed
    theirs_value = get(theirs)
    ref_value = get(reference) if reference else None
    verdict = parity.judge(mine, theirs_value, ref_value, reference_runs=[get(r) for r in runs],
                           ours_runs=mine_runs, rtol=rtol)
    reason, ok = verdict.reason, verdict.passed
    values = (f"{float(np.ravel(mine)[0]):12.6g} {float(np.ravel(theirs_value)[0]):12.6g}"
              if show_values else f"{'':12s} {'':12s}")
    text = f"{name:34s} {values} {verdict.rel_l2:10.2e}"
    if reference:
      text += (f" {parity.relative_l2(mine, ref_value):12.2e} {verdict.ours_vs_float64:9.2e}"
               f" {parity.relative_l2(theirs_value, ref_value):16.2e}")
      for backend, draws in runs_by_backend.items():
        first = [theirs] if backend == "onednn" else []
        text += f" {max(parity.relative_l2(get(r), ref_value) for r in first + draws):13.2e}"
    if mine64 is not None:
      distance = parity.relative_l2(mine64, ref_value)
      text += f" {distance:11.2e}"
      if distance > FLOAT64_RTOL:
        ok, reason = False, f"float64 mismatch (> {FLOAT64_RTOL:g})"
      elif ok:
        reason += "; float64 equal"
    passed &= ok
    print(text + f"  {reason}", file=out)

  for name in theirs["terms"]:
    term = lambda run, name=name: np.float64(run["terms"][name])
    line(f"term {name}", term, np.float64(ours["terms"][name]),
         [np.float64(r["terms"][name]) for r in our_runs], 1e-4,
         mine64=np.float64(ours64["terms"][name]) if ours64 else None)
  for kind, rtol, label in (("grads", 1e-4, "gradient"), ("params", 1e-5, "parameters after step")):
    for group in ("generator", "keypoint_detector", "dense_motion", "discriminator"):
      line(f"{label} {group}", lambda run, kind=kind, group=group: run[kind][group],
           _flat(ours[kind][group]), [_flat(r[kind][group]) for r in our_runs],
           rtol, mine64=ours64[kind][group] if ours64 else None, show_values=False)
  print(f"\n{'PASS' if passed else 'FAIL'}: one training step at iteration {ITERATION}, batch "
        f"{batch}, {size}x{size}, float32, random weights"
        + (f"; floor from {1 + len(runs)} official float32 runs ({1 + rounding_runs} per "
           f"convolution backend: {', '.join(runs_by_backend)})" if reference else ""),
        file=out)
  return passed


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--official-repo", required=True, type=pathlib.Path)
  # Batch 1 fits a 24 GiB machine with --float64-reference; batch 2 with it was killed
  # by the out-of-memory killer at 24 GiB.
  parser.add_argument("--batch", type=int, default=1,
                      help="Frames per batch (default 1; batch 2 with --float64-reference "
                      "needs more than 24 GiB).")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--float64-reference", action="store_true",
                      help="Also run the official step in float64 and judge each quantity by "
                      "its distance to that run.")
  parser.add_argument("--rounding-runs", type=int, default=2,
                      help="With --float64-reference: further official float32 runs on the "
                      "batch moved by one ulp, to sample the rounding floor (default 2).")
  parser.add_argument("--official-backends", default=",".join(BACKENDS),
                      help="With --float64-reference: PyTorch CPU convolution backends whose "
                      "official float32 runs sample the rounding floor, comma-separated, from "
                      f"{', '.join(BACKENDS)} (default: all).")
  parser.add_argument("--ours-float64", action="store_true",
                      help="With --float64-reference: also run our step in float64 "
                      "(jax.enable_x64) and print its distance to the official float64 run.")
  parser.add_argument("--official-cache", type=pathlib.Path, default=None,
                      help="Pickle of the official runs: written after running them, read "
                      "instead of running them when it exists for the same batch, seed and "
                      "options (the official float32/float64 runs take most of the time).")
  args = parser.parse_args(argv)
  if args.ours_float64 and not args.float64_reference:
    parser.error("--ours-float64 needs --float64-reference")
  if args.rounding_runs < 0:
    parser.error(f"--rounding-runs must be >= 0, got {args.rounding_runs}")
  backends = tuple(b for b in args.official_backends.split(",") if b)
  unknown = sorted(set(backends) - set(BACKENDS))
  if unknown or not backends:
    parser.error(f"--official-backends takes names from {', '.join(BACKENDS)}, got "
                 f"{args.official_backends!r}")
  return 0 if run(args.official_repo, args.batch, args.seed, args.float64_reference,
                  args.rounding_runs, args.ours_float64, args.official_cache, backends) else 1

