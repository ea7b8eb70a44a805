"""``mcc-jax export``: the model as ONNX or StableHLO graphs, with a manifest.

    mcc-jax export --checkpoint vox256_ckpt --format onnx --output vox256_onnx
    mcc-jax animate --exported vox256_onnx --source photo.jpg --driving talk.mp4 \\
        --output result.mp4

Three graphs, weights inside, batch size symbolic: ``keypoints`` (once per frame),
``source_encoder`` (once per source image) and ``generator`` (once per driving frame,
returning the frame, the final flow and the occlusion map). ``manifest.json`` names
each graph's inputs and outputs (shapes, dtypes, value ranges), the image size, the
steps between the graphs (relative motion), the model's configuration and where the
weights came from; docs/export.md describes it. The output directory appears only
when complete.
"""

from __future__ import annotations

import argparse
import pathlib

from mcc_jax.commands import model_flags

FORMATS = ("onnx", "stablehlo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  model_flags.add_model_arguments(parser)
  parser.add_argument("--format", choices=FORMATS, required=True,
                      help="onnx: one .onnx file per graph (jax2onnx), for onnxruntime and "
                      "`mcc-jax animate --exported`; stablehlo: jax.export's serialized "
                      "StableHLO per graph, for JAX (jax.export.deserialize) or XLA.")
  parser.add_argument("--output", type=pathlib.Path, required=True,
                      help="The directory to create (it must not exist, or be empty).")
  parser.epilog = ("--config PATH and --config.<field>=<value> optionally replace the "
                   "configuration saved with the weights (which must then fit it).")


def _fail(message: str) -> SystemExit:
  return SystemExit(f"mcc-jax export: error: {message}")


def run(args: argparse.Namespace) -> int:
  output = args.output
  if output.exists() and (not output.is_dir() or any(output.iterdir())):
    raise _fail(f"--output {output}: already exists and is not an empty directory "
                f"(choose a new directory)")
  if not output.parent.is_dir():
    raise _fail(f"--output {output}: cannot be created, the directory {output.parent} "
                f"does not exist")
  from mcc_jax.export.exporter import export_model  # pylint: disable=import-outside-toplevel

  model = model_flags.load_model(args, "export")
  print(f"model: {model.description}, {model.image_size}x{model.image_size}")
  manifest = export_model(model, output, args.format)
  print(f"wrote {output}: {', '.join(e.file for e in manifest.graphs.values())} and "
        f"manifest.json ({args.format}, batch size symbolic)")
  return 0
