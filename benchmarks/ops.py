"""Times the warp and the vector quantiser against the same work in PyTorch.

Both run in the same process on the same machine, so the ratio (JAX time / PyTorch
time) is meaningful even on a noisy host; below 1.0 JAX is faster.

    python benchmarks/ops.py [--repeats 20] [--json PATH]

Workloads (the sizes the model uses at 256x256):
* warp: (8, 64, 64, 256) features, a (8, 64, 64, 2) deformation, bilinear, zeros
  padding, align_corners=True; forward, and forward + gradient w.r.t. features and flow.
* quantize: (8, 1024, 256) vectors against 1024 codes of width 256; forward, and
  forward + gradient of the code-level loss w.r.t. vectors and codes.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax import ops

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from timing import median_seconds  # noqa: E402  (the benchmarks folder)


def _jax_runner(fn, *args):
  compiled = jax.jit(fn)
  return lambda: jax.block_until_ready(compiled(*args))


def _workloads(seed: int = 0):
  rng = np.random.default_rng(seed)
  features = rng.normal(size=(8, 64, 64, 256)).astype(np.float32)
  identity = np.stack(np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64),
                                  indexing="xy"), -1)
  deformation = (identity[None] + 0.1 * rng.normal(size=(8, 64, 64, 2))).astype(np.float32)
  vectors = rng.normal(size=(8, 1024, 256)).astype(np.float32)
  codebook = rng.uniform(-1 / 1024, 1 / 1024, size=(1024, 256)).astype(np.float32) + \
      0.05 * rng.normal(size=(1024, 256)).astype(np.float32)
  return features, deformation, vectors, codebook


def _jax_cases(features, deformation, vectors, codebook):
  f, d, z, c = (jnp.asarray(a) for a in (features, deformation, vectors, codebook))

  def warp_grad(f, d):
    return jax.grad(lambda f, d: jnp.sum(ops.warp(f, d)**2), argnums=(0, 1))(f, d)

  def quantize_fwd(z, c):
    out = ops.quantize(z, c, beta=0.25)
    return out.quantized, out.indices, out.loss

  def quantize_grad(z, c):
    def loss(z, c):
      out = ops.quantize(z, c, beta=0.25)
      return jnp.sum(out.quantized**2) * 1e-3 + out.loss
    return jax.grad(loss, argnums=(0, 1))(z, c)

  return {
      "warp forward": _jax_runner(ops.warp, f, d),
      "warp forward+backward": _jax_runner(warp_grad, f, d),
      "quantize forward": _jax_runner(quantize_fwd, z, c),
      "quantize forward+backward": _jax_runner(quantize_grad, z, c),
  }


def _torch_cases(features, deformation, vectors, codebook):
  import torch
  import torch.nn.functional as F

  f = torch.from_numpy(features).permute(0, 3, 1, 2).contiguous()  # NCHW, as PyTorch models use
  d = torch.from_numpy(deformation)
  z = torch.from_numpy(vectors)
  c = torch.from_numpy(codebook)

  def warp_fwd():
    with torch.no_grad():
      return F.grid_sample(f, d, align_corners=True)

  def warp_grad():
    fg = f.clone().requires_grad_(True)
    dg = d.clone().requires_grad_(True)
    (F.grid_sample(fg, dg, align_corners=True)**2).sum().backward()
    return fg.grad, dg.grad

  def quantize(zz, cc):
    # The reference formulation: distances by expansion, argmin, one-hot matmul.
    flat = zz.reshape(-1, zz.shape[-1])
    dist = (flat**2).sum(1, keepdim=True) + (cc**2).sum(1) - 2 * flat @ cc.t()
    idx = dist.argmin(1)
    onehot = torch.zeros(idx.shape[0], cc.shape[0])
    onehot.scatter_(1, idx[:, None], 1)
    zq = (onehot @ cc).view(zz.shape)
    loss = 0.25 * ((zq.detach() - zz)**2).mean() + ((zq - zz.detach())**2).mean()
    return zz + (zq - zz).detach(), idx, loss

  def quantize_fwd():
    with torch.no_grad():
      return quantize(z, c)

  def quantize_grad():
    zg = z.clone().requires_grad_(True)
    cg = c.clone().requires_grad_(True)
    zq, _, loss = quantize(zg, cg)
    ((zq**2).sum() * 1e-3 + loss).backward()
    return zg.grad, cg.grad

  return {
      "warp forward": warp_fwd,
      "warp forward+backward": warp_grad,
      "quantize forward": quantize_fwd,
      "quantize forward+backward": quantize_grad,
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--repeats", type=int, default=20, help="Timed runs per case (median).")
  parser.add_argument("--json", type=pathlib.Path, default=None, help="Write figures here.")
  args = parser.parse_args(argv)

  inputs = _workloads()
  jax_cases = _jax_cases(*inputs)
  try:
    torch_cases = _torch_cases(*inputs)
  except ImportError:
    print("PyTorch is not installed: reporting JAX times only.", file=sys.stderr)
    torch_cases = {}

  results = {}
  print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"median of {args.repeats}")
  print(f"{'case':28s} {'jax ms':>10s} {'torch ms':>10s} {'jax/torch':>10s}")
  for name, run_jax in jax_cases.items():
    jax_s = median_seconds(run_jax, args.repeats, warmup=2)
    torch_s = (median_seconds(torch_cases[name], args.repeats, warmup=2)
               if name in torch_cases else None)
    ratio = jax_s / torch_s if torch_s else None
    results[name] = {"jax_ms": 1e3 * jax_s,
                     "torch_ms": None if torch_s is None else 1e3 * torch_s,
                     "ratio": ratio}
    print(f"{name:28s} {1e3 * jax_s:10.2f} "
          f"{'-' if torch_s is None else f'{1e3 * torch_s:10.2f}':>10s} "
          f"{'-' if ratio is None else f'{ratio:10.2f}':>10s}")
  if args.json is not None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"backend": jax.default_backend(), "cases": results},
                                    indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
