"""``mcc-jax ops-demo``: warps an image by a flow and quantises vectors, printing what happened.

A small end-to-end exercise of the public ops that runs in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import pathlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--size", type=int, default=128, help="Image side in pixels.")
  parser.add_argument("--angle", type=float, default=15.0, help="Rotation of the flow, degrees.")
  parser.add_argument("--seed", type=int, default=0, help="PRNG seed.")
  parser.add_argument("--output", type=pathlib.Path, default=None,
                      help="Optional PNG path for [input | warped] side by side.")


def _test_image(size: int):
  """A colourful synthetic image: gradients plus a disc, in [0, 1]."""
  import numpy as np

  y, x = np.mgrid[0:size, 0:size] / (size - 1)
  disc = ((x - 0.35)**2 + (y - 0.4)**2 < 0.04).astype(np.float32)
  return np.stack([x, y, np.clip(0.5 * (1 - x) + disc, 0, 1)], axis=-1).astype(np.float32)


def run(args: argparse.Namespace) -> int:
  if args.size < 8:
    raise SystemExit(f"--size must be at least 8, got {args.size}.")
  import jax
  import jax.numpy as jnp
  import numpy as np

  from mcc_jax import ops

  image = jnp.asarray(_test_image(args.size))[None]
  theta = np.deg2rad(args.angle)
  rotation = jnp.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]],
                       jnp.float32)
  # A coarse 32x32 deformation, resized to the image by `warp` as the generator does.
  grid = ops.coordinate_grid(32, 32)
  deformation = jnp.einsum("ij,hwj->hwi", rotation, grid)[None]
  warped = jax.jit(ops.warp)(image, deformation)
  inside = float(jnp.mean(jnp.any(warped != 0, axis=-1)))
  print(f"warp: {image.shape} image, {deformation.shape} deformation -> {warped.shape}; "
        f"{inside:.1%} of the output samples the image (rotation {args.angle:g} deg).")

  key_codes, key_z = jax.random.split(jax.random.PRNGKey(args.seed))
  codebook = jax.random.normal(key_codes, (256, 8))
  vectors = jax.random.normal(key_z, (4, 16, 16, 8))

  def loss_fn(z):
    out = ops.quantize(z, codebook, beta=0.25)
    return jnp.sum(out.quantized), out

  (_, out), grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(vectors)
  print(f"quantize: {vectors.shape} vectors, {codebook.shape[0]} codes -> indices "
        f"{out.indices.shape}; code-level loss {float(out.loss):.4f}, perplexity "
        f"{float(out.perplexity):.1f}, {float(out.usage):.1%} of codes used; "
        f"straight-through gradient == 1: {bool(jnp.all(grad == 1.0))}.")

  if args.output is not None:
    import imageio.v3 as iio

    strip = np.concatenate([np.asarray(image[0]), np.asarray(warped[0])], axis=1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(args.output, (np.clip(strip, 0, 1) * 255).round().astype(np.uint8))
    print(f"wrote {args.output}")
  return 0
