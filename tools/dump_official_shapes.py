"""Writes the tensor names and shapes of the official networks' state dicts as JSON.

The file (``tests/convert/official_state_dict_shapes.json``) lets the test suite check
that every tensor of an official checkpoint maps onto the Flax model exactly once,
with the right shape, on machines without a checkout of the official code.

    python tools/dump_official_shapes.py --official-repo PATH [--output FILE]
"""

import argparse
import json
import pathlib
import sys

import yaml

from mcc_jax.testing import official_code


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--official-repo", required=True, type=pathlib.Path)
  parser.add_argument("--output", type=pathlib.Path,
                      default=pathlib.Path("tests/convert/official_state_dict_shapes.json"))
  args = parser.parse_args()
  code = official_code.load(args.official_repo)
  options = yaml.safe_load((args.official_repo / "options" / "train.yml").read_text())
  build = lambda cls, block: cls(**{k: v for k, v in options[block].items() if k != "type"})
  networks = {
      "generator": build(code.AppMotionCompFormer, "network_g"),
      "motion_estimator": build(code.MotionEstimator, "network_motion_estimator"),
      "discriminator": build(code.VQGANDiscriminator, "network_d"),
  }
  shapes = {name: {k: list(v.shape) for k, v in net.state_dict().items()}
            for name, net in networks.items()}
  args.output.parent.mkdir(parents=True, exist_ok=True)
  args.output.write_text(json.dumps(shapes, indent=1, sort_keys=True) + "\n")
  print(f"wrote {sum(len(v) for v in shapes.values())} tensor shapes to {args.output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
