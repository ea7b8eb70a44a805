"""``mcc-jax convert-vgg19 vgg19.pth [--output PATH]``: the official perceptual network's weights.

The official perceptual loss uses torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``,
torchvision's ``VGG19_Weights.IMAGENET1K_V1``). No PyPI package ships it, so download it
once where you have internet access and convert it here; ``config.losses.vgg19_weights``
(default ``~/.cache/mcc_jax/vgg19.npz``) then points at the result.
"""

from __future__ import annotations

import argparse
import pathlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("checkpoint", type=pathlib.Path,
                      help="torchvision VGG19 state dict (vgg19-dcbb9e9d.pth).")
  parser.add_argument("--output", type=pathlib.Path, default=None,
                      help="Where to write the .npz (default: ~/.cache/mcc_jax/vgg19.npz, "
                      "the default of config.losses.vgg19_weights).")


def run(args: argparse.Namespace) -> int:
  from mcc_jax.convert.torch_checkpoint import load_state_dict  # pylint: disable=import-outside-toplevel
  from mcc_jax.convert.vgg import convert_vgg  # pylint: disable=import-outside-toplevel
  from mcc_jax.models import vgg_weights  # pylint: disable=import-outside-toplevel

  params = convert_vgg(load_state_dict(args.checkpoint), "vgg19")
  output = args.output or pathlib.Path(vgg_weights.default_vgg19_path()).expanduser()
  vgg_weights.save_params(output, params)
  count = sum(v.size for layer in params["params"].values() for v in layer.values())
  print(f"wrote {output} ({count:,} parameters, 16 convolutions up to relu5_1)")
  return 0
