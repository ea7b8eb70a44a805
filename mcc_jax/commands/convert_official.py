"""``mcc-jax convert-official``: the official PyTorch checkpoints as an orbax checkpoint.

    mcc-jax convert-official --generator net_g_latest.pth \
        --motion-estimator net_motion_estimator_latest.pth [--discriminator net_d.pth] \
        --output checkpoints/official [--config configs/vox256.py] [--config.x=...]

Every tensor of each state dict is mapped exactly once, with its shape checked; a
missing or unmapped tensor stops the conversion with the list of names. Needs torch
(``pip install 'mcc-jax[convert]'``).
"""

from __future__ import annotations

import argparse
import pathlib

DEFAULT_CONFIG = "vox256"  # the shipped configs/vox256.py


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--generator", type=pathlib.Path, required=True,
                      help="Official generator checkpoint (net_g_*.pth).")
  parser.add_argument("--generator-key", default="params_ema",
                      help="Entry of the generator file to convert: params_ema (the EMA "
                      "weights the paper evaluates) or params.")
  parser.add_argument("--motion-estimator", type=pathlib.Path, required=True,
                      help="Official motion estimator checkpoint (net_motion_estimator_*.pth).")
  parser.add_argument("--discriminator", type=pathlib.Path, default=None,
                      help="Optional official discriminator checkpoint (net_d_*.pth).")
  parser.add_argument("--output", type=pathlib.Path, required=True,
                      help="Directory for the converted checkpoint.")
  parser.add_argument("--overwrite", action="store_true", help="Replace an existing output.")
  parser.epilog = ("--config PATH names the configuration of the networks (default: "
                   "configs/vox256.py); --config.<field>=<value> overrides a field.")


def convert(args: argparse.Namespace) -> dict:
  """Loads, converts and checks the checkpoints; returns the variables per network."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  from mcc_jax import config_cli  # pylint: disable=import-outside-toplevel
  from mcc_jax.convert import generator as generator_conversion  # pylint: disable=import-outside-toplevel
  from mcc_jax.convert import motion_estimator as motion_conversion  # pylint: disable=import-outside-toplevel
  from mcc_jax.convert.state_dict import check_tree_matches  # pylint: disable=import-outside-toplevel
  from mcc_jax.convert.torch_checkpoint import load_state_dict  # pylint: disable=import-outside-toplevel
  from mcc_jax.models import factory  # pylint: disable=import-outside-toplevel

  config = config_cli.parse_config(getattr(args, "config_args", ()), default=str(DEFAULT_CONFIG),
                                   prog="mcc-jax convert-official")
  model = config.model
  generator = factory.build_generator(model)
  estimator = factory.build_motion_estimator(model)
  size, flow = model.image_size, factory.flow_size(model)
  image = jnp.zeros((1, size, size, 3))

  variables = {}
  variables["generator"] = generator_conversion.convert_generator(
      load_state_dict(args.generator, args.generator_key), generator)
  check_tree_matches(variables["generator"], jax.eval_shape(lambda: generator.init(
      jax.random.PRNGKey(0), image, jnp.zeros((1, flow, flow, 2)), jnp.zeros((1, flow, flow, 1)),
      jnp.zeros((1, flow, flow, model.num_keypoints)), image, train=True)), "generator")
  variables["motion_estimator"] = motion_conversion.convert_motion_estimator(
      load_state_dict(args.motion_estimator, None), estimator)
  if args.discriminator is not None:
    discriminator = factory.build_discriminator(model)
    variables["discriminator"] = generator_conversion.convert_discriminator(
        load_state_dict(args.discriminator, None), discriminator.num_layers)
    check_tree_matches(variables["discriminator"], jax.eval_shape(
        lambda: discriminator.init(jax.random.PRNGKey(0), image, train=False)), "discriminator")
  return variables, config


def run(args: argparse.Namespace) -> int:
  from mcc_jax.checkpoints.model_files import save_model_checkpoint  # pylint: disable=import-outside-toplevel

  variables, config = convert(args)
  save_model_checkpoint(args.output, variables, config, overwrite=args.overwrite)
  counts = {name: sum(int(v.size) for v in _leaves(tree)) for name, tree in variables.items()}
  for name, count in counts.items():
    print(f"{name}: {count:,} values")
  print(f"wrote {args.output}")
  return 0


def _leaves(tree):
  import jax  # pylint: disable=import-outside-toplevel

  return jax.tree.leaves(tree)
