"""Times the warp, the vector quantiser and small-map convolutions against PyTorch.

Both run in the same process on the same machine, and the JAX and PyTorch versions of a
case take turns run by run (``timing.interleaved_seconds``), so the ratio (JAX
time / PyTorch time) is meaningful even on a noisy host; below 1.0 JAX is faster.

    python benchmarks/ops.py [--repeats 20] [--json PATH] [--compare-formulations]

Workloads (the sizes the model uses at 256x256):
* warp: (8, 64, 64, 256) features, a (8, 64, 64, 2) deformation, bilinear, zeros
  padding, align_corners=True; forward, and forward + gradient w.r.t. features and flow.
* quantize: (8, 1024, 256) vectors against 1024 codes of width 256; forward, and
  forward + gradient of the code-level loss w.r.t. vectors and codes.
* conv2d: a 3x3, 512 -> 512 convolution over (4, 2, 2, 512) maps (a VGG's last block on
  the smallest level of the perceptual pyramid); forward, and forward + gradient w.r.t.
  map and kernel. ``mcc_jax.ops.conv2d`` computes it as a matrix product; the
  ``(lax)`` rows time ``jax.lax.conv_general_dilated`` on the same work (no PyTorch
  counterpart), which XLA rewrites into a slow swapped convolution on CPU.
* conv2d kernel gradient: the gradient with respect to the kernel alone of a 3x3,
  128 -> 128 convolution over (2, 256, 256, 128) maps (the decoder's last upsampling
  convolution at batch 2). On CPU ``mcc_jax.ops.conv2d`` computes it by
  ``conv.kernel_gradient_by_patches``; the ``(lax)`` row is XLA's own gradient.

The PyTorch quantiser computes what ``mcc_jax.ops.quantize`` computes: the nearest code
by squared Euclidean distance, the straight-through output ``z + sg(q - z)`` and the
loss ``mean((sg(z) - q)^2) + beta * mean((sg(q) - z)^2)``. Among the formulations that
``--compare-formulations`` times (every combination of a distance, a lookup and a loss
from ``DISTANCES``, ``LOOKUPS`` and ``LOSSES`` below, 40 in all), the reference is the
fastest one measured on the development machine (a 2-core AMD EPYC, PyTorch 2.13, CPU):
``REFERENCE_QUANTIZER`` = distances by ``torch.addmm(c_sq, z, c.T, alpha=-2)`` with
``c_sq = (c**2).sum(1)`` (the per-vector ``(z**2).sum(1)`` term is left out: it cannot
change the argmin), ``argmin``, rows by ``F.embedding``, loss by ``F.mse_loss``. The
script checks on the benchmark data that it picks the same codes as mcc-jax and gives
the same outputs and gradients.

Times of that comparison (ms, median of 10, forward / forward+backward; the best lookup
and loss for each distance unless named; docs/performance.md has more rows):

* addmm(c_sq, z, c.T, alpha=-2) + F.embedding + F.mse_loss: 36.6 / 37.2 (chosen)
* addmm(c_sq, ...) + index_select + F.mse_loss: 38.7 / 36.7 (tied within noise)
* addmm(c_sq, ...) + codes[idx] + F.mse_loss: 38.5 / 39.3
* addmm(c_sq, ...) + F.embedding + two .mean()s: 39.1 / 43.8
* torch.cdist(z, c) + index_select + F.mse_loss: 44.4 / 45.8
* torch.cdist(z, c, compute_mode='use_mm_for_euclid_dist') + F.embedding: 44.2 / 42.3
* addmm(z_sq + c_sq, z, c.T, alpha=-2) + index_select: 46.1 / 42.3
* z_sq + c_sq - 2 * z @ c.T + index_select: 55.6 / 57.2
* z_sq + c_sq - 2 * z @ c.T + one-hot matmul + two .mean()s (the former reference):
  98.6 / 130.8
* mcc-jax ``ops.quantize`` under jit, for scale: 52.8 / 54.3
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import statistics
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax import ops

from mcc_jax.testing.timing import interleaved_seconds

BETA = 0.25

# Distance matrix (tokens, codes) whose argmin is the nearest code; lookup of the chosen
# rows; code-level loss. Each is a lambda body over torch tensors, resolved lazily so that
# the module imports without PyTorch.
DISTANCES = {
    "expanded": "(flat**2).sum(1, keepdim=True) + (codes**2).sum(1) - 2 * flat @ codes.t()",
    "addmm": "torch.addmm((flat**2).sum(1, keepdim=True) + (codes**2).sum(1), flat, "
             "codes.t(), alpha=-2)",
    "addmm_codes_only": "torch.addmm((codes**2).sum(1), flat, codes.t(), alpha=-2)",
    "cdist": "torch.cdist(flat, codes)",
    "cdist_mm": "torch.cdist(flat, codes, compute_mode='use_mm_for_euclid_dist')",
}
LOOKUPS = {
    "one_hot_matmul": "torch.zeros(idx.shape[0], codes.shape[0], dtype=codes.dtype)"
                      ".scatter_(1, idx[:, None], 1.0) @ codes",
    "embedding": "F.embedding(idx, codes)",
    "index_select": "codes.index_select(0, idx)",
    "indexing": "codes[idx]",
}
LOSSES = {
    "means": "((z.detach() - q)**2).mean() + beta * ((q.detach() - z)**2).mean()",
    "mse_loss": "F.mse_loss(q, z.detach()) + beta * F.mse_loss(z, q.detach())",
}
REFERENCE_QUANTIZER = "addmm_codes_only+embedding+mse_loss"
# The formulation of the previous reference, kept in the comparison.
ONE_HOT_QUANTIZER = "expanded+one_hot_matmul+means"


def torch_quantizers(names=None):
  """PyTorch quantisers by name ``'distance+lookup+loss'``.

  Args:
    names: the names wanted; None for every combination.

  Returns:
    name -> ``fn(z, codebook, beta) -> (straight-through output, indices, loss)``,
    ``z`` of shape (..., D), ``codebook`` (K, D).
  """
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  if names is None:
    names = [f"{d}+{l}+{s}" for d in DISTANCES for l in LOOKUPS for s in LOSSES]
  namespace = {"torch": torch, "F": F}
  quantizers = {}
  for name in names:
    distance, lookup, loss = name.split("+")
    distance_fn = eval(f"lambda flat, codes: {DISTANCES[distance]}", namespace)  # pylint: disable=eval-used
    lookup_fn = eval(f"lambda idx, codes: {LOOKUPS[lookup]}", namespace)  # pylint: disable=eval-used
    loss_fn = eval(f"lambda z, q, beta: {LOSSES[loss]}", namespace)  # pylint: disable=eval-used

    def quantize(z, codebook, beta=BETA, distance_fn=distance_fn, lookup_fn=lookup_fn,
                 loss_fn=loss_fn):
      flat = z.reshape(-1, z.shape[-1])
      idx = distance_fn(flat, codebook).argmin(1)
      q = lookup_fn(idx, codebook).view(z.shape)
      return z + (q - z).detach(), idx.view(z.shape[:-1]), loss_fn(z, q, beta)

    quantizers[name] = quantize
  return quantizers


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
  small_maps = rng.normal(size=(4, 2, 2, 512)).astype(np.float32)
  conv_kernel = (0.02 * rng.normal(size=(3, 3, 512, 512))).astype(np.float32)
  large_map = rng.normal(size=(2, 256, 256, 128)).astype(np.float32)
  large_kernel = (0.02 * rng.normal(size=(3, 3, 128, 128))).astype(np.float32)
  return (features, deformation, vectors, codebook, small_maps, conv_kernel, large_map,
          large_kernel)


def _lax_conv2d(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _kernel_squares_gradient(fn):
  """The gradient of sum(fn(a, b)**2) with respect to b (the kernel) alone."""
  def gradient(a, b):
    return jax.grad(lambda b: jnp.sum(fn(a, b)**2))(b)
  return gradient


def _squares_gradient(fn):
  """The gradient of sum(fn(a, b)**2) with respect to both arguments."""
  def gradient(a, b):
    return jax.grad(lambda a, b: jnp.sum(fn(a, b)**2), argnums=(0, 1))(a, b)
  return gradient


def _quantize_objective(quantized, loss):
  # The scalar whose gradient the forward+backward cases take (both frameworks).
  return (quantized**2).sum() * 1e-3 + loss


def jax_quantize_forward(z, c):
  out = ops.quantize(z, c, beta=BETA)
  return out.quantized, out.indices, out.loss


def jax_quantize_gradient(z, c):
  def objective(z, c):
    out = ops.quantize(z, c, beta=BETA)
    return _quantize_objective(out.quantized, out.loss)
  return jax.grad(objective, argnums=(0, 1))(z, c)


def _jax_cases(features, deformation, vectors, codebook, small_maps, conv_kernel, large_map,
               large_kernel):
  f, d, z, c = (jnp.asarray(a) for a in (features, deformation, vectors, codebook))
  m, k = jnp.asarray(small_maps), jnp.asarray(conv_kernel)
  big_m, big_k = jnp.asarray(large_map), jnp.asarray(large_kernel)
  conv2d = functools.partial(ops.conv2d, padding=1)

  return {
      "warp forward": _jax_runner(ops.warp, f, d),
      "warp forward+backward": _jax_runner(_squares_gradient(ops.warp), f, d),
      "quantize forward": _jax_runner(jax_quantize_forward, z, c),
      "quantize forward+backward": _jax_runner(jax_quantize_gradient, z, c),
      "conv2d forward": _jax_runner(conv2d, m, k),
      "conv2d forward+backward": _jax_runner(_squares_gradient(conv2d), m, k),
      "conv2d (lax) forward": _jax_runner(_lax_conv2d, m, k),
      "conv2d (lax) forward+backward": _jax_runner(_squares_gradient(_lax_conv2d), m, k),
      "conv2d kernel gradient": _jax_runner(_kernel_squares_gradient(conv2d), big_m, big_k),
      "conv2d (lax) kernel gradient": _jax_runner(_kernel_squares_gradient(_lax_conv2d),
                                                  big_m, big_k),
  }


def torch_quantize_cases(quantize, vectors, codebook):
  """(forward, forward+gradient) callables of a PyTorch quantiser on numpy inputs."""
  import torch  # pylint: disable=import-outside-toplevel

  z = torch.from_numpy(vectors)
  c = torch.from_numpy(codebook)

  def forward():
    with torch.no_grad():
      return quantize(z, c)

  def gradient():
    zg = z.clone().requires_grad_(True)
    cg = c.clone().requires_grad_(True)
    quantized, _, loss = quantize(zg, cg)
    _quantize_objective(quantized, loss).backward()
    return zg.grad, cg.grad

  return forward, gradient


def _torch_cases(features, deformation, vectors, codebook, small_maps, conv_kernel, large_map,
                 large_kernel):
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  f = torch.from_numpy(features).permute(0, 3, 1, 2).contiguous()  # NCHW, as PyTorch models use
  d = torch.from_numpy(deformation)

  def warp_fwd():
    with torch.no_grad():
      return F.grid_sample(f, d, align_corners=True)

  def warp_grad():
    fg = f.clone().requires_grad_(True)
    dg = d.clone().requires_grad_(True)
    (F.grid_sample(fg, dg, align_corners=True)**2).sum().backward()
    return fg.grad, dg.grad

  m = torch.from_numpy(small_maps).permute(0, 3, 1, 2).contiguous()
  k = torch.from_numpy(conv_kernel).permute(3, 2, 0, 1).contiguous()

  def conv_fwd():
    with torch.no_grad():
      return F.conv2d(m, k, padding=1)

  def conv_grad():
    mg = m.clone().requires_grad_(True)
    kg = k.clone().requires_grad_(True)
    (F.conv2d(mg, kg, padding=1)**2).sum().backward()
    return mg.grad, kg.grad

  big_m = torch.from_numpy(large_map).permute(0, 3, 1, 2).contiguous()
  big_k = torch.from_numpy(large_kernel).permute(3, 2, 0, 1).contiguous()

  def conv_kernel_grad():
    kg = big_k.clone().requires_grad_(True)
    (F.conv2d(big_m, kg, padding=1)**2).sum().backward()
    return kg.grad

  quantize = torch_quantizers([REFERENCE_QUANTIZER])[REFERENCE_QUANTIZER]
  quantize_fwd, quantize_grad = torch_quantize_cases(quantize, vectors, codebook)
  return {
      "conv2d forward": conv_fwd,
      "conv2d forward+backward": conv_grad,
      "conv2d kernel gradient": conv_kernel_grad,
      "warp forward": warp_fwd,
      "warp forward+backward": warp_grad,
      "quantize forward": quantize_fwd,
      "quantize forward+backward": quantize_grad,
  }


def compare_quantizer(quantize, vectors, codebook) -> dict[str, float]:
  """How far a PyTorch quantiser is from ``mcc_jax.ops.quantize`` on the given inputs.

  Returns:
    ``index_mismatches`` (count), and the largest absolute differences of the output
    (``quantized``), the loss (``loss``, relative) and the gradients w.r.t. the vectors
    and the codes (``grad_vectors``, ``grad_codes``, relative to the largest entry).
  """
  forward, gradient = torch_quantize_cases(quantize, vectors, codebook)
  quantized, indices, loss = (np.asarray(a) for a in forward())
  grad_z, grad_c = (np.asarray(g) for g in gradient())
  z, c = jnp.asarray(vectors), jnp.asarray(codebook)
  ours_q, ours_idx, ours_loss = (np.asarray(a) for a in jax.jit(jax_quantize_forward)(z, c))
  ours_gz, ours_gc = (np.asarray(g) for g in jax.jit(jax_quantize_gradient)(z, c))
  relative = lambda a, b: float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
  return {
      "index_mismatches": int(np.sum(indices != ours_idx)),
      "quantized": float(np.max(np.abs(quantized - ours_q))),
      "loss": abs(float(loss) - float(ours_loss)) / abs(float(ours_loss)),
      "grad_vectors": relative(grad_z, ours_gz),
      "grad_codes": relative(grad_c, ours_gc),
  }


def check_quantizer(quantize, vectors, codebook) -> dict[str, float]:
  """:func:`compare_quantizer`, raising AssertionError unless the two agree."""
  diff = compare_quantizer(quantize, vectors, codebook)
  assert diff["index_mismatches"] == 0, diff
  assert diff["quantized"] <= 1e-6 and diff["loss"] <= 1e-5, diff
  assert diff["grad_vectors"] <= 1e-5 and diff["grad_codes"] <= 1e-5, diff
  return diff


def compare_formulations(vectors, codebook, repeats: int) -> dict[str, dict[str, float]]:
  """Times every PyTorch quantiser formulation (and mcc-jax), all taking turns.

  Returns:
    name -> {case: median ms, case + ' fastest': fastest ms} for the cases
    ``'quantize forward'`` and ``'quantize forward+backward'``.
  """
  results = {}
  for case, position in (("quantize forward", 0), ("quantize forward+backward", 1)):
    fns = {name: torch_quantize_cases(fn, vectors, codebook)[position]
           for name, fn in torch_quantizers().items()}
    z, c = jnp.asarray(vectors), jnp.asarray(codebook)
    fns["mcc-jax"] = _jax_runner(jax_quantize_forward if position == 0
                                 else jax_quantize_gradient, z, c)
    for name, seconds in interleaved_seconds(fns, repeats, warmup=2).items():
      results.setdefault(name, {})[case] = 1e3 * statistics.median(seconds)
      results[name][case + " fastest"] = 1e3 * min(seconds)
  return results


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--repeats", type=int, default=20, help="Timed runs per case (median).")
  parser.add_argument("--json", type=pathlib.Path, default=None, help="Write figures here.")
  parser.add_argument("--compare-formulations", action="store_true",
                      help="Also time every PyTorch quantiser formulation tried.")
  args = parser.parse_args(argv)
  if args.repeats < 1:
    parser.error("--repeats must be >= 1")

  inputs = _workloads()
  jax_cases = _jax_cases(*inputs)
  try:
    torch_cases = _torch_cases(*inputs)
  except ImportError:
    print("PyTorch is not installed: reporting JAX times only.", file=sys.stderr)
    torch_cases = {}

  payload = {"backend": jax.default_backend(), "repeats": args.repeats}
  if torch_cases:
    quantize = torch_quantizers([REFERENCE_QUANTIZER])[REFERENCE_QUANTIZER]
    agreement = check_quantizer(quantize, *inputs[2:4])
    payload["torch_quantizer"] = {"formulation": REFERENCE_QUANTIZER,
                                  "difference_to_mcc_jax": agreement}
    print(f"PyTorch quantiser: {REFERENCE_QUANTIZER} (same codes as mcc-jax on the "
          f"benchmark data; largest differences {agreement})")

  results = {}
  print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"median of {args.repeats}, JAX and PyTorch taking turns")
  print(f"{'case':30s} {'jax ms':>10s} {'torch ms':>10s} {'jax/torch':>10s} "
        f"{'of fastest':>10s}")
  for name, run_jax in jax_cases.items():
    fns = {"jax": run_jax}
    if name in torch_cases:
      fns["torch"] = torch_cases[name]
    samples = interleaved_seconds(fns, args.repeats, warmup=2)
    jax_s = statistics.median(samples["jax"])
    torch_s = statistics.median(samples["torch"]) if "torch" in samples else None
    ratio = jax_s / torch_s if torch_s else None
    # The ratio of the fastest runs: the least disturbed by other load on the machine.
    fastest = min(samples["jax"]) / min(samples["torch"]) if torch_s else None
    results[name] = {"jax_ms": 1e3 * jax_s,
                     "torch_ms": None if torch_s is None else 1e3 * torch_s,
                     "ratio": ratio, "ratio_of_fastest": fastest}
    print(f"{name:30s} {1e3 * jax_s:10.2f} "
          f"{'-' if torch_s is None else f'{1e3 * torch_s:10.2f}':>10s} "
          f"{'-' if ratio is None else f'{ratio:10.2f}':>10s} "
          f"{'-' if fastest is None else f'{fastest:10.2f}':>10s}")
  payload["cases"] = results

  if args.compare_formulations and torch_cases:
    formulations = compare_formulations(*inputs[2:4], args.repeats)
    print(f"\nPyTorch quantiser formulations, all taking turns, ms (median of "
          f"{args.repeats}; fastest run), fastest first by the sum of fastest runs:")
    print(f"{'distance+lookup+loss':40s} {'forward':>9s} {'fastest':>8s} {'fwd+bwd':>9s} "
          f"{'fastest':>8s}")
    cases = ("quantize forward", "quantize forward+backward")
    for name, times in sorted(formulations.items(),
                              key=lambda item: sum(item[1][c + " fastest"] for c in cases)):
      print(f"{name:40s} " + " ".join(f"{times[c]:9.1f} {times[c + ' fastest']:8.1f}"
                                      for c in cases))
    payload["formulations_ms"] = formulations
  if args.json is not None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
