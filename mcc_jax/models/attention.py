"""Multi-head attention with ``torch.nn.MultiheadAttention`` semantics.

Separate query / key / value projections (PyTorch packs them into one
``in_proj_weight``; the checkpoint converter splits it), scaled dot-product attention
per head, an output projection. A key mask removes keys from the softmax; where every
key of a row is masked, PyTorch returns NaN, while here the row attends uniformly (the
masked logits are finite), so one degenerate sample cannot poison a batch.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.torch_layers import Linear


class MultiHeadAttention(nn.Module):
  """Multi-head attention.

  Attributes:
    num_heads: number of heads; must divide the model width.
    dtype: computation dtype (softmax in float32).
  """

  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, query: jax.Array, key: jax.Array, value: jax.Array,
               key_mask: jax.Array | None = None) -> jax.Array:
    """Attends from ``query`` to (``key``, ``value``).

    Args:
      query: (B, Tq, D).
      key: (B, Tk, D) or (Tk, D) shared by the batch (e.g. codebook rows).
      value: same shape as ``key``.
      key_mask: optional (B, Tk) boolean, True for keys to ignore.

    Returns:
      (B, Tq, D).
    """
    width = query.shape[-1]
    if width % self.num_heads:
      raise ValueError(
          f"MultiHeadAttention: width {width} is not divisible by num_heads={self.num_heads}.")
    head = width // self.num_heads
    q = Linear(width, dtype=self.dtype, name="q_proj")(query)
    k = Linear(width, dtype=self.dtype, name="k_proj")(key)
    v = Linear(width, dtype=self.dtype, name="v_proj")(value)
    q = q.reshape(q.shape[:-1] + (self.num_heads, head))
    k = k.reshape(k.shape[:-1] + (self.num_heads, head))
    v = v.reshape(v.shape[:-1] + (self.num_heads, head))
    shared = "khd" if k.ndim == 3 else "bkhd"
    logits = jnp.einsum(f"bqhd,{shared}->bhqk", q, k).astype(jnp.float32) * head**-0.5
    if key_mask is not None:
      logits = jnp.where(key_mask[:, None, None, :], jnp.finfo(jnp.float32).min, logits)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum(f"bhqk,{shared}->bqhd", weights, v)
    out = out.reshape(out.shape[:-2] + (width,))
    return Linear(width, dtype=self.dtype, name="out_proj")(out)
