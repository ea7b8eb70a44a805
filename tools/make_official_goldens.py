"""Writes golden outputs of the official networks, for the default test run.

Builds the official networks (its ``options/train.yml``: the full 256x256 paper model)
from a checkout of the official repository, sets every tensor to the seeded value of
``mcc_jax.testing.goldens`` (numpy only, so the test rebuilds the same weights without
torch or the checkout), runs them in eval mode on seeded smooth frames (batch 1) in
float32 and in float64, and saves their outputs:

    tests/goldens/official_forward.npz   outputs, float32 and float64 runs
    tests/goldens/official_forward.json  official commit, seed, torch version, and per
                                         network every tensor's name, shape and kind
                                         (fixed buffers' values are in the .npz)

    python tools/make_official_goldens.py --official-repo PATH [--commit SHA]

``tests/goldens_test.py`` compares mcc-jax with them using the parity criterion of
``mcc_jax.testing.parity``. See docs/parity.md.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

import numpy as np
import yaml

_HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]
import check_official_parity  # noqa: E402
import official_code  # noqa: E402

from mcc_jax.testing import goldens  # noqa: E402

OUTPUT = _HERE.parent / "tests" / "goldens" / "official_forward"
NETWORKS = {"generator": ("AppMotionCompFormer", "network_g"),
            "motion_estimator": ("MotionEstimator", "network_motion_estimator"),
            "discriminator": ("VQGANDiscriminator", "network_d")}


def _commit(repo: pathlib.Path) -> str:
  try:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def _key(name: str) -> str:
  return name.replace(" ", "_")


def make(official_repo: pathlib.Path, output: pathlib.Path = OUTPUT, seed: int = 0,
         commit: str | None = None) -> dict:
  """Builds, runs and saves; returns the metadata written beside the arrays."""
  import torch  # pylint: disable=import-outside-toplevel

  code = official_code.load(official_repo)
  options = yaml.safe_load((official_repo / "options" / "train.yml").read_text())
  networks, manifests, arrays = {}, {}, {}
  for name, (cls, block) in NETWORKS.items():
    net = getattr(code, cls)(**{k: v for k, v in options[block].items() if k != "type"})
    parameter_names = {n for n, _ in net.named_parameters()}
    manifest = []
    state = net.state_dict()
    for tensor_name, tensor in state.items():
      kind = goldens.tensor_kind(tensor_name, tensor_name in parameter_names)
      manifest.append([tensor_name, list(tensor.shape), kind])
      if kind == goldens.FIXED:
        arrays[f"fixed/{name}/{tensor_name}"] = tensor.detach().numpy()
    fixed = {n: arrays[f"fixed/{name}/{n}"] for n, _, k in manifest if k == goldens.FIXED}
    values = goldens.state_dict(name, manifest, fixed, seed)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in values.items()})
    net.eval()
    networks[name], manifests[name] = net, manifest

  size = options["network_g"].get("img_size", 256)
  source = goldens.smooth_frames(seed, 1, size)
  driving = goldens.smooth_frames(seed + 1, 1, size)
  outputs = {}
  for label, dtype in (("float32", torch.float32), ("float64", torch.float64)):
    outputs[label] = check_official_parity._official_outputs(  # pylint: disable=protected-access
        networks, torch, source, driving, dtype)
    for key, value in outputs[label].items():
      arrays[f"{label}/{_key(key)}"] = np.asarray(
          value, np.float32 if label == "float32" else np.float64)

  metadata = {
      "official_repository": "ShaelynZ/synergize-motion-appearance",
      "official_commit": commit or _commit(official_repo),
      "torch": torch.__version__,
      "seed": seed,
      "inputs": {"source": f"goldens.smooth_frames({seed}, 1, {size})",
                 "driving": f"goldens.smooth_frames({seed + 1}, 1, {size})"},
      "mode": "eval",
      "outputs": [_key(k) for k in outputs["float32"]],
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
  parser.add_argument("--output", type=pathlib.Path, default=OUTPUT,
                      help="Path without suffix (default tests/goldens/official_forward).")
  args = parser.parse_args(argv)
  metadata = make(args.official_repo.expanduser().resolve(), args.output, args.seed,
                  args.commit)
  size = args.output.with_suffix(".npz").stat().st_size
  print(f"wrote {args.output}.npz ({size / 1e6:.2f} MB) and .json: outputs "
        f"{', '.join(metadata['outputs'])}; official commit {metadata['official_commit']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
