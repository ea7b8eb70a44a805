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

Evaluation streams: one batch at a time from the pipeline, so a host holds a few
batches whatever the test split's size. Multi-host: each host reconstructs its share of
the videos; a host that runs out feeds masked stand-ins while another still has frames,
so that every host runs the same number of global steps (:func:`padded_batches`). The
step runs on whatever mesh the training state lives on (parameters sharded or not).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Iterator

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


def padded_batches(local_batches: Iterable[dict[str, np.ndarray]],
                   filler: dict[str, np.ndarray], max_batches: int | None = None
                   ) -> Iterator[dict[str, np.ndarray]]:
  """This host's evaluation batches, streamed, padded so that every host yields as many.

  Batches are read one at a time (host memory holds what the pipeline prefetches, not
  the split). On several processes, after each batch the hosts tell each other whether
  they had one; a host that has run out yields ``filler`` (its ``mask`` all False) while
  another still has batches, and all stop together. Hosts can hold unequal numbers of
  frames (their shares of the videos differ in length) or none at all.

  Args:
    local_batches: this host's batches (``source``, ``driving``, ``mask``, ...).
    filler: a batch of the same shapes whose ``mask`` is all False.
    max_batches: stop after this many (``config.eval_max_batches``); None for all.

  Yields:
    Host-local batches, the same number on every host.
  """
  iterator = iter(local_batches)
  for index in itertools.count():
    if max_batches and index >= max_batches:
      return
    local = next(iterator, None)
    has_batch = local is not None
    if jax.process_count() > 1:
      has_batch_anywhere = bool(np.any(multihost_utils.process_allgather(np.array(has_batch))))
    else:
      has_batch_anywhere = has_batch
    if not has_batch_anywhere:
      return
    yield local if has_batch else filler


def evaluate(eval_step: Callable, variables: Any, batches: Iterable[dict[str, jax.Array]]
             ) -> dict[str, float]:
  """Runs ``eval_step`` over global batches and returns mean PSNR, L1 and the frame count.

  The sums stay on the device until the end (one transfer), so the loop over batches
  does not wait for each one.
  """
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
