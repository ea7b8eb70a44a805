"""Writes golden results of the official networks and training step, for the default test run.

Builds the official networks (its ``options/train.yml``: the full 256x256 paper model)
from a checkout of the official repository, sets every tensor to the seeded value of
``mcc_jax.testing.goldens`` (numpy only, so the test rebuilds the same weights without
torch or the checkout), and saves two sets of results (batch 1, seeded smooth frames):

    tests/goldens/official_forward.{npz,json}
        eval-mode outputs (keypoints, jacobians, deformation, occlusion, generated frame,
        discriminator logits) in float32 and float64; the .json records the official
        commit, seed, torch version and per network every tensor's name, shape and kind
        (fixed buffers' values are in the .npz)
    tests/goldens/official_train_step.{npz,json}
        one official training step (``optimize_parameters`` at iteration 5002, the
        discriminator active) with a seeded VGG19 and a seeded equivariance transform:
        every loss term and, per parameter tensor in mcc-jax's layout, the gradient's
        norm and sum; in float32, in float64, and in float32 on two batches moved by one
        ulp (the rounding floor of ``mcc_jax.testing.parity.judge``)

    python tools/make_official_goldens.py --official-repo PATH [--commit SHA]
        [--what all|forward|train-step]

``tests/goldens_test.py`` and ``tests/goldens_train_step_test.py`` compare mcc-jax with
them using the parity criterion of ``mcc_jax.testing.parity``. See docs/parity.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys

import numpy as np
import yaml

from mcc_jax.configs import vox256
from mcc_jax.testing import goldens
from mcc_jax.testing import official_code
from mcc_jax.testing import official_parity
from mcc_jax.testing import official_training
from mcc_jax.testing import official_weights_step
from mcc_jax.testing import training_parity
from mcc_jax.train import step as step_lib

GOLDENS = pathlib.Path(__file__).resolve().parents[1] / "tests" / "goldens"
OUTPUT = GOLDENS / "official_forward"
TRAIN_STEP_OUTPUT = GOLDENS / "official_train_step"
# The float32 runs on one-ulp-perturbed batches of the training-step goldens.
ROUNDING_RUNS = 2
NETWORKS = {"generator": ("AppMotionCompFormer", "network_g"),
            "motion_estimator": ("MotionEstimator", "network_motion_estimator"),
            "discriminator": ("VQGANDiscriminator", "network_d")}


def _commit(repo: pathlib.Path) -> str:
  try:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError) as error:
    raise SystemExit(f"make_official_goldens: cannot read the commit of {repo} with git "
                     f"({error}); pass --commit SHA, the official commit the checkout "
                     "holds, so that the goldens record their provenance") from error


def _key(name: str) -> str:
  return name.replace(" ", "_")


def _seeded_networks(code, options, seed: int, torch):
  """The official networks with goldens-seeded tensors; their manifests and fixed buffers."""
  networks, manifests, fixed_arrays = {}, {}, {}
  for name, (cls, block) in NETWORKS.items():
    net = getattr(code, cls)(**{k: v for k, v in options[block].items() if k != "type"})
    parameter_names = {n for n, _ in net.named_parameters()}
    manifest = []
    for tensor_name, tensor in net.state_dict().items():
      kind = goldens.tensor_kind(tensor_name, tensor_name in parameter_names)
      manifest.append([tensor_name, list(tensor.shape), kind])
      if kind == goldens.FIXED:
        fixed_arrays[f"fixed/{name}/{tensor_name}"] = tensor.detach().numpy()
    fixed = {n: fixed_arrays[f"fixed/{name}/{n}"] for n, _, k in manifest if k == goldens.FIXED}
    values = goldens.state_dict(name, manifest, fixed, seed)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in values.items()})
    networks[name], manifests[name] = net, manifest
  return networks, manifests, fixed_arrays


def _machine() -> str:
  """The CPU the goldens were computed on: float32 kernels round differently per ISA."""
  model, flags = platform.machine(), set()
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name") and model == platform.machine():
        model = line.split(":", 1)[1].strip()
      if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
  except OSError:
    pass
  isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "other ISA"
  return f"{model}, {isa}, {os.cpu_count()} cores"


def _provenance(official_repo, commit, torch, seed, size) -> dict:
  return {
      "official_repository": "ShaelynZ/synergize-motion-appearance",
      "official_commit": commit or _commit(official_repo),
      "torch": torch.__version__,
      "machine": _machine(),
      "seed": seed,
      "inputs": {"source": f"goldens.smooth_frames({seed}, 1, {size})",
                 "driving": f"goldens.smooth_frames({seed + 1}, 1, {size})"},
  }


def make(official_repo: pathlib.Path, output: pathlib.Path = OUTPUT, seed: int = 0,
         commit: str | None = None) -> dict:
  """The eval-mode forward goldens: builds, runs and saves; returns the metadata."""
  import torch  # pylint: disable=import-outside-toplevel

  code = official_code.load(official_repo)
  options = yaml.safe_load((official_repo / "options" / "train.yml").read_text())
  networks, manifests, arrays = _seeded_networks(code, options, seed, torch)
  for net in networks.values():
    net.eval()

  size = options["network_g"].get("img_size", 256)
  source = goldens.smooth_frames(seed, 1, size)
  driving = goldens.smooth_frames(seed + 1, 1, size)
  outputs = {}
  for label, dtype in (("float32", torch.float32), ("float64", torch.float64)):
    outputs[label] = official_parity.official_outputs(
        networks, torch, source, driving, dtype)
    for key, value in outputs[label].items():
      arrays[f"{label}/{_key(key)}"] = np.asarray(
          value, np.float32 if label == "float32" else np.float64)

  metadata = {
      **_provenance(official_repo, commit, torch, seed, size),
      "mode": "eval",
      "outputs": [_key(k) for k in outputs["float32"]],
      "networks": manifests,
  }
  output.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(output.with_suffix(".npz"), **arrays)
  output.with_suffix(".json").write_text(json.dumps(metadata, indent=1) + "\n")
  return metadata


def make_train_step(official_repo: pathlib.Path, output: pathlib.Path = TRAIN_STEP_OUTPUT,
                    seed: int = 0, commit: str | None = None) -> dict:
  """The training-step goldens (see the module docstring); returns the metadata."""
  import torch  # pylint: disable=import-outside-toplevel

  vgg = official_training.random_vgg19(torch, seed)
  vgg_values = goldens.state_dict("vgg19", goldens.vgg19_manifest(), {}, seed)
  vgg.load_state_dict({k: torch.from_numpy(v) for k, v in vgg_values.items()})
  official = official_training.load(official_repo, vgg)
  networks, manifests, _ = _seeded_networks(official.code, official.options, seed, torch)

  config = vox256.get_config()
  config.model.batch_norm_group_size = 0    # the official step: one GPU's whole batch
  config.batch_size = 1
  models = step_lib.build_models(config)
  size = config.model.image_size
  source = goldens.smooth_frames(seed, 1, size)
  driving = goldens.smooth_frames(seed + 1, 1, size)
  theta, control = goldens.equivariance_transform(seed, 1)
  batches = {"float32": (source, driving), "float64": (source, driving)}
  for run in range(1, ROUNDING_RUNS + 1):
    batches[f"rounding_{run}"] = (goldens.one_ulp(source, seed, 2 * run),
                                  goldens.one_ulp(driving, seed, 2 * run + 1))

  arrays, paths = {}, {}
  for label, (src, drv) in batches.items():
    dtype = torch.float64 if label == "float64" else torch.float32
    result = training_parity.official_step(
        official, networks, vgg, torch, dtype, src, drv, theta, control)
    for name, value in result["terms"].items():
      arrays[f"{label}/terms/{name}"] = np.float64(value)
    grads = training_parity.to_ours(
        result["grads"], models, models.discriminator.num_layers)
    for group in official_weights_step.GROUPS:
      paths[group], norms, sums = official_weights_step.tensor_statistics(grads[group])
      arrays[f"{label}/grad_norm/{group}"] = norms
      arrays[f"{label}/grad_sum/{group}"] = sums

  metadata = {
      **_provenance(official_repo, commit, torch, seed, size),
      "weights": "as official_forward.json: the same networks, tensors, kinds and seed",
      "vgg19": "goldens.state_dict('vgg19', goldens.vgg19_manifest(), {}, seed)",
      "transform": f"goldens.equivariance_transform({seed}, 1)",
      "rounding_runs": {f"rounding_{run}": f"goldens.one_ulp(source, {seed}, {2 * run}), "
                        f"goldens.one_ulp(driving, {seed}, {2 * run + 1})"
                        for run in range(1, ROUNDING_RUNS + 1)},
      "iteration": official_weights_step.ITERATION,
      "batch_norm": "statistics of the whole batch (batch_norm_group_size = 0)",
      "runs": list(batches),
      "terms": list(result["terms"]),
      "gradient_tensors": paths,
      "networks": manifests,
  }
  output.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(output.with_suffix(".npz"), **arrays)
  output.with_suffix(".json").write_text(json.dumps(metadata, indent=1) + "\n")
  return metadata


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--official-repo", required=True, type=pathlib.Path)
  parser.add_argument("--commit", help="The checkout's commit, when it is not a git work tree.")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--what", choices=("all", "forward", "train-step"), default="all")
  parser.add_argument("--output-dir", type=pathlib.Path, default=GOLDENS,
                      help="Where the files go (default tests/goldens).")
  args = parser.parse_args(argv)
  repo = args.official_repo.expanduser().resolve()
  if not (repo / "options" / "train.yml").exists():
    parser.error(f"{repo} is not a checkout of the official repository (no options/train.yml)")
  jobs = {"forward": (make, OUTPUT.name), "train-step": (make_train_step, TRAIN_STEP_OUTPUT.name)}
  for what, (function, name) in jobs.items():
    if args.what not in ("all", what):
      continue
    output = args.output_dir / name
    metadata = function(repo, output, args.seed, args.commit)
    size = output.with_suffix(".npz").stat().st_size
    print(f"wrote {output}.npz ({size / 1e6:.2f} MB) and .json ({what}); official commit "
          f"{metadata['official_commit']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
