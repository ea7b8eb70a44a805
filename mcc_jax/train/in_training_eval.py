"""Reconstruction metrics during training: L1 and PSNR on the test split.

The paper's protocol: the first frame of each test video is the source and every frame
is reconstructed (``data_pipelines.build_eval_pipeline`` yields exactly that). Frames are
scored as the official evaluation scores its saved PNGs: clamped to [-1, 1], mapped to
[0, 255] and rounded to integers, then per frame

* PSNR = 20 log10(255 / sqrt(MSE)) over all pixels and channels,
* L1 = mean |a - b| / 255 (the [0, 1]-range value the paper reports, 0.0355 on VoxCeleb),

averaged over frames (the formulas: :mod:`mcc_jax.ops.image_metrics`). These are the
trainer's running check; ``mcc-jax evaluate`` (:mod:`mcc_jax.evaluation`) runs the
paper's whole protocol on a saved model.

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

from mcc_jax.ops.image_metrics import l1_of_levels
from mcc_jax.ops.image_metrics import psnr_of_levels
from mcc_jax.ops.image_metrics import to_uint8_levels


def frame_metrics(generated: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
  """Per-frame PSNR (dB) and L1 ([0, 1] range) of (B, H, W, C) images in [-1, 1]."""
  a, b = to_uint8_levels(generated), to_uint8_levels(target)
  return {"psnr": psnr_of_levels(a, b), "l1": l1_of_levels(a, b) / 255.0}


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
