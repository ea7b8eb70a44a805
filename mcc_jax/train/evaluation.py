"""Reconstruction metrics during training: L1 and PSNR on the test split.

The paper's protocol: the first frame of each test video is the source and every frame
is reconstructed (``data_pipelines.build_eval_pipeline`` yields exactly that). Frames are
scored as the official evaluation scores its saved PNGs: clamped to [-1, 1], mapped to
[0, 255] and rounded to integers, then per frame

* PSNR = 20 log10(255 / sqrt(MSE)) over all pixels and channels,
* L1 = mean |a - b| / 255 (the [0, 1]-range value the paper reports, 0.0355 on VoxCeleb),

averaged over frames. A perfect frame would have an infinite PSNR; the MSE is floored at
1e-10 so that one such frame cannot make the mean infinite.

Multi-host: each host reconstructs its share of the videos; hosts pad their batch
lists to the same length (padding is masked out) so that every host runs the same
number of global steps.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

MSE_FLOOR = 1e-10


def to_uint8_levels(images: jax.Array) -> jax.Array:
  """[-1, 1] images as the official ``tensor2img`` saves them: rounded 0..255, float32."""
  return jnp.round((jnp.clip(images.astype(jnp.float32), -1.0, 1.0) + 1.0) * 127.5)


def frame_metrics(generated: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
  """Per-frame PSNR (dB) and L1 ([0, 1] range) of (B, H, W, C) images in [-1, 1]."""
  a, b = to_uint8_levels(generated), to_uint8_levels(target)
  mse = jnp.mean((a - b)**2, axis=(1, 2, 3))
  psnr = 20.0 * jnp.log10(255.0 / jnp.sqrt(jnp.maximum(mse, MSE_FLOOR)))
  l1 = jnp.mean(jnp.abs(a - b), axis=(1, 2, 3)) / 255.0
  return {"psnr": psnr, "l1": l1}


def make_eval_step(reconstruct: Callable[..., jax.Array]) -> Callable[..., dict[str, jax.Array]]:
  """Wraps ``reconstruct(variables, source, driving) -> frames`` into masked metric sums.

  Returns:
    ``eval_step(variables, batch) -> {'psnr', 'l1', 'count'}`` (sums over the unmasked
    frames of the batch).
  """

  def eval_step(variables: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    generated = reconstruct(variables, batch["source"], batch["driving"])
    per_frame = frame_metrics(generated, batch["driving"])
    mask = batch["mask"].astype(jnp.float32)
    sums = {name: jnp.sum(value * mask) for name, value in per_frame.items()}
    sums["count"] = jnp.sum(mask)
    return sums

  return eval_step


def pad_to_common_length(batches: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
  """Pads this host's list of batches with masked copies to the longest host's length."""
  count = len(batches)
  longest = int(np.max(multihost_utils.process_allgather(np.array(count)))) if (
      jax.process_count() > 1) else count
  if count == 0 and longest > 0:
    raise ValueError("this host has no evaluation batch to pad from; use at least as many "
                     "test videos as processes")
  padded = list(batches)
  while len(padded) < longest:
    filler = dict(batches[-1])
    filler["mask"] = np.zeros_like(filler["mask"])
    padded.append(filler)
  return padded


def evaluate(eval_step: Callable, variables: Any, batches: Iterable[dict[str, jax.Array]]
             ) -> dict[str, float]:
  """Runs ``eval_step`` over global batches and returns mean PSNR, L1 and the frame count."""
  totals = None
  for batch in batches:
    sums = eval_step(variables, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  if totals is None:
    return {"psnr": float("nan"), "l1": float("nan"), "frames": 0}
  totals = jax.tree.map(
      lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, totals)
  count = float(totals["count"])
  return {"psnr": float(totals["psnr"]) / max(count, 1.0),
          "l1": float(totals["l1"]) / max(count, 1.0), "frames": int(count)}
