"""Checks that mcc-jax computes the same function as the official PyTorch model.

Builds the official networks from a checkout of the official repository (imported from
that path at run time; nothing of it is copied here) with the configuration of its
``options/train.yml``, gives them random weights (seeded; random BatchNorm running
statistics, codebooks and position embeddings, so that no part is trivially zero),
converts the weights with ``mcc_jax.convert``, runs the same random inputs through both
in eval mode and reports, per output, the largest absolute and the relative L2 error.

    python tools/check_official_parity.py --official-repo PATH [--rtol 1e-4] [--batch 2]

Exit status 0 when every output passes and every network has the official number of
parameters, 1 otherwise. An output passes when its relative L2 error is at most
``--rtol``; with ``--float64-reference`` (which also runs the official networks in
float64) it also passes when it is no further from the float64 run than 1.5x the
official float32 output is (``mcc_jax.testing.parity.judge``): how far float32 results
drift depends on the machine's kernels (AVX2 or AVX-512), not on the port.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import numpy as np
import yaml

from mcc_jax.configs import vox256
from mcc_jax.convert.generator import convert_discriminator, convert_generator
from mcc_jax.convert.motion_estimator import convert_motion_estimator
from mcc_jax.convert.state_dict import check_tree_matches
from mcc_jax.models import factory
from mcc_jax.models import reenactment
from mcc_jax.testing import official_code
from mcc_jax.testing import parity


def randomise(module, torch, seed: int) -> None:
  """Random values where default initialisation would leave trivial ones."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, param in module.named_parameters():
      if "position_emb" in name or "embedding.weight" in name:
        param.copy_(0.5 * torch.randn(param.shape, generator=generator))
      elif name.endswith("jacobian.weight"):  # zero at init: make the jacobians non-trivial
        param.copy_(0.01 * torch.randn(param.shape, generator=generator))
      elif name.endswith("kp_detector.kp.weight"):
        # Random heatmap logits are nearly flat, which puts every keypoint at the image
        # centre; sharper ones spread the keypoints over the image.
        param.mul_(30.0)
    for name, buffer in module.named_buffers():
      if name.endswith("running_mean"):
        buffer.copy_(0.1 * torch.randn(buffer.shape, generator=generator))
      elif name.endswith("running_var"):
        buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)


def _count(tree) -> int:
  return sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(tree))


def _errors(ours, theirs) -> tuple[float, float]:
  ours = np.asarray(ours, np.float64)
  theirs = np.asarray(theirs, np.float64)
  if ours.shape != theirs.shape:
    raise ValueError(f"shape mismatch: {ours.shape} vs official {theirs.shape}")
  max_abs = float(np.max(np.abs(ours - theirs)))
  rel_l2 = float(np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-30))
  return max_abs, rel_l2


def official_outputs(official, torch, source, driving, dtype):
  """Keypoints, dense motion, frame and logits of the official networks, as numpy NHWC."""
  to_torch = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(dtype)
  from_torch = lambda t: t.detach().double().numpy().transpose(0, 2, 3, 1)
  for net in official.values():
    net.to(dtype)
  with torch.no_grad():
    dense = official["motion_estimator"](to_torch(driving), to_torch(source))
    frame = official["generator"](to_torch(source), dense, w=1, inference=True)["out"]
    logits = official["discriminator"](frame)
  value = lambda kp, key: kp[key].double().numpy()
  return {
      "source keypoints": value(dense["kp_source"], "value"),
      "source jacobians": value(dense["kp_source"], "jacobian"),
      "driving keypoints": value(dense["kp_driving"], "value"),
      "driving jacobians": value(dense["kp_driving"], "jacobian"),
      "deformation": dense["deformation"].double().numpy(),
      "occlusion": from_torch(dense["occlusion_map"]),
      "generated frame": from_torch(frame),
      "discriminator logits": from_torch(logits),
  }


def run(official_repo: pathlib.Path, rtol: float = 1e-4, batch: int = 2, seed: int = 0,
        float64_reference: bool = False, out=sys.stdout) -> bool:
  """Runs the comparison, prints the report and returns whether it passed."""
  import torch  # pylint: disable=import-outside-toplevel

  jax.config.update("jax_default_matmul_precision", "highest")
  torch.manual_seed(seed)
  code = official_code.load(official_repo)
  options = yaml.safe_load((pathlib.Path(official_repo) / "options" / "train.yml").read_text())
  build = lambda cls, block: cls(**{k: v for k, v in options[block].items() if k != "type"})
  official = {
      "generator": build(code.AppMotionCompFormer, "network_g"),
      "motion_estimator": build(code.MotionEstimator, "network_motion_estimator"),
      "discriminator": build(code.VQGANDiscriminator, "network_d"),
  }
  for index, net in enumerate(official.values()):
    randomise(net, torch, seed + index)
    net.eval()

  config = vox256.get_config().model
  generator = factory.build_generator(config)
  estimator = factory.build_motion_estimator(config)
  discriminator = factory.build_discriminator(config)
  state = lambda net: {k: v.detach().numpy() for k, v in net.state_dict().items()}
  variables = {
      "generator": convert_generator(state(official["generator"]), generator),
      "motion_estimator": convert_motion_estimator(state(official["motion_estimator"]),
                                                   estimator),
      "discriminator": convert_discriminator(state(official["discriminator"]),
                                             discriminator.num_layers),
  }

  rng = np.random.default_rng(seed)
  size = config.image_size
  source = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
  driving = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
  theirs = official_outputs(official, torch, source, driving, torch.float32)
  reference = (official_outputs(official, torch, source, driving, torch.float64)
               if float64_reference else None)
  for net in official.values():
    net.float()

  motion, output, _, _ = jax.jit(lambda v, s, d: reenactment.reenact(
      estimator, generator, v, s, d))(variables, source, driving)
  ours = output.image
  our_logits = jax.jit(lambda v, x: discriminator.apply(v, x, train=False))(
      variables["discriminator"], ours)

  # Parameter counts, and the converted trees against the models' own.
  passed = True
  key = jax.random.PRNGKey(0)
  shapes = jax.eval_shape(lambda: reenactment.init_variables(
      estimator, generator, config.image_size, key, key, train=True))
  shapes["discriminator"] = jax.eval_shape(lambda: discriminator.init(key, source, train=False))
  print("parameters            official        mcc-jax", file=out)
  for name, net in official.items():
    official_count = sum(p.numel() for p in net.parameters())
    check_tree_matches(variables[name], shapes[name], name)
    mine = _count(shapes[name].get("params", {}))
    ok = official_count == mine
    passed &= ok
    print(f"{name:18s} {official_count:12,d}   {mine:12,d}  {'ok' if ok else 'DIFFERENT'}",
          file=out)
  parts = {"keypoint detector": official["motion_estimator"].kp_detector,
           "dense motion": official["motion_estimator"].dense_motion_network}
  our_parts = {"keypoint detector": "keypoint_detector", "dense motion": "dense_motion"}
  for name, net in parts.items():
    official_count = sum(p.numel() for p in net.parameters())
    mine = _count(shapes["motion_estimator"]["params"][our_parts[name]])
    ok = official_count == mine
    passed &= ok
    print(f"  {name:16s} {official_count:12,d}   {mine:12,d}  {'ok' if ok else 'DIFFERENT'}",
          file=out)

  ours_by_name = {
      "source keypoints": motion.kp_source.value, "source jacobians": motion.kp_source.jacobian,
      "driving keypoints": motion.kp_driving.value,
      "driving jacobians": motion.kp_driving.jacobian, "deformation": motion.deformation,
      "occlusion": motion.occlusion, "generated frame": ours,
      "discriminator logits": our_logits,
  }
  header = f"\n{'output':22s} {'max abs error':>14s} {'rel L2 error':>14s} {'output std':>12s}"
  if reference is not None:
    header += f" {'ours vs f64':>12s} {'official vs f64':>16s}"
  print(header + "  verdict", file=out)
  worst = 0.0
  for name, mine in ours_by_name.items():
    verdict = parity.judge(mine, theirs[name], None if reference is None else reference[name],
                           rtol=rtol)
    worst = max(worst, verdict.rel_l2)
    passed &= verdict.passed
    line = (f"{name:22s} {verdict.max_abs:14.3e} {verdict.rel_l2:14.3e} "
            f"{float(np.std(theirs[name])):12.3e}")
    if reference is not None:
      line += f" {verdict.ours_vs_float64:12.3e} {verdict.reference_vs_float64:16.3e}"
    print(f"{line}  {verdict.reason}", file=out)
  print(f"\n{'PASS' if passed else 'FAIL'}: worst relative L2 error {worst:.3e} "
        f"(rtol {rtol:g}{', or the float64 rounding floor' if reference is not None else ''}), "
        f"batch {batch}, {size}x{size}, float32", file=out)
  return passed


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--official-repo", required=True, type=pathlib.Path,
                      help="Checkout of ShaelynZ/synergize-motion-appearance.")
  parser.add_argument("--rtol", type=float, default=1e-4,
                      help="Largest relative L2 error accepted per output.")
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--float64-reference", action="store_true",
                      help="Also run the official networks in float64 and report how far "
                      "each float32 implementation is from that reference.")
  args = parser.parse_args(argv)
  return 0 if run(args.official_repo, args.rtol, args.batch, args.seed,
                  args.float64_reference) else 1

