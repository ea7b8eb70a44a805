"""Multi-head attention with ``torch.nn.MultiheadAttention`` semantics.

Separate query / key / value projections (PyTorch packs them into one
``in_proj_weight``; the checkpoint converter splits it), scaled dot-product attention
per head, an output projection. A key mask removes keys from the softmax; where every
key of a row is masked, PyTorch returns NaN, while here the row attends uniformly (the
masked logits are finite), so one degenerate sample cannot poison a batch.

The model attends over 1024 tokens with 8 heads: one attention materialises 8M logits
(32 MB), which on a CPU costs far more in memory traffic than in arithmetic. Queries can
therefore be processed in chunks (``query_chunk_size``) whose logits stay in cache; the
result is the same up to float rounding. By default chunking is used on the CPU backend
only: on accelerators one large matrix product is faster.

The attention weights are not kept for the backward pass: the gradient recomputes them
from the queries and keys (``recompute_weights``, on by default). In the vox256 training
step the kept weights were 1.66 GiB of the compiled step's temporaries; recomputing them
costs one more query-key product per attention and no measurable step time on a CPU
(docs/performance.md).

Heads are laid out first ((B, H, T, d)) and the softmax is normalised after the product
with the values; with the chunking this makes an attention 4 to 9 times faster on a
CPU than the direct formulation, with the same result up to float rounding.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.models.torch_layers import Linear
from mcc_jax.ops.precision import at_least_float32

CPU_QUERY_CHUNK = 256


def default_query_chunk_size() -> int | None:
  """The chunk size used when a module leaves it to the backend: 256 on CPU, else None."""
  return CPU_QUERY_CHUNK if jax.default_backend() == "cpu" else None


def packed_in_projection_init(width: int):
  """``xavier_uniform_`` of PyTorch's packed (3 * width, width) ``in_proj_weight``,
  restricted to one (width, width) block: ``U(+-sqrt(6 / (width + 3 * width)))``."""
  bound = (6.0 / (4.0 * width)) ** 0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

  return init


def _attend(q: jax.Array, k: jax.Array, v: jax.Array, key_mask: jax.Array | None,
            dtype: Any) -> jax.Array:
  """Softmax attention, head-major: q (B, H, Tq, d), k/v (B, H, Tk, d) or (H, Tk, d)
  shared by the batch -> (B, H, Tq, d).

  The exponentials are normalised after the product with the values: dividing the
  (Tq, d) result is cheaper than dividing the (Tq, Tk) weights, and the weights never
  have to be rewritten in another layout.
  """
  kv = "hkd" if k.ndim == 3 else "bhkd"
  logits = at_least_float32(jnp.einsum(f"bhqd,{kv}->bhqk", q, k))
  if key_mask is not None:
    logits = jnp.where(key_mask[:, None, None, :], jnp.finfo(logits.dtype).min, logits)
  # The shift only guards exp against overflow; it cancels in the normalisation.
  shift = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
  weights = jnp.exp(logits - shift)
  total = jnp.sum(weights, axis=-1, keepdims=True)
  out = at_least_float32(jnp.einsum(f"bhqk,{kv}->bhqd", weights.astype(dtype), v))
  return (out / total).astype(dtype)


class MultiHeadAttention(nn.Module):
  """Multi-head attention.

  Attributes:
    num_heads: number of heads; must divide the model width.
    dtype: computation dtype (softmax in float32).
    query_chunk_size: process this many queries at a time (a divisor of the query
      count); 0 attends with all queries at once; None picks
      :func:`default_query_chunk_size`.
    recompute_weights: recompute the attention weights in the backward pass instead of
      keeping them (same gradient; less memory, one more query-key product).
  """

  num_heads: int
  dtype: Any = jnp.float32
  query_chunk_size: int | None = None
  recompute_weights: bool = True

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
    # PyTorch's initialisation: Xavier-uniform on the packed (3 D, D) input projection,
    # so each of q, k, v gets the bound sqrt(6 / (D + 3 D)), and zero biases.
    in_proj = dict(kernel_init=packed_in_projection_init(width), bias_init=nn.initializers.zeros)
    q = Linear(width, dtype=self.dtype, name="q_proj", **in_proj)(query)
    k = Linear(width, dtype=self.dtype, name="k_proj", **in_proj)(key)
    v = Linear(width, dtype=self.dtype, name="v_proj", **in_proj)(value)
    # Scaling the queries is cheaper than scaling the (Tq x Tk) logits. Head-major
    # layouts: (B, H, T, d); keys shared by the batch stay (H, Tk, d).
    b, tq = q.shape[:2]
    q = jnp.moveaxis((q * head**-0.5).reshape(b, tq, self.num_heads, head), 2, 1)
    heads_first = lambda x: jnp.moveaxis(
        x.reshape(x.shape[:-1] + (self.num_heads, head)), -2, -3)
    k, v = heads_first(k), heads_first(v)

    attend = _attend
    if self.recompute_weights:
      attend = jax.checkpoint(_attend, static_argnums=(4,))
    chunk = self.query_chunk_size
    if chunk is None:
      chunk = default_query_chunk_size() or 0
    if chunk and tq > chunk and tq % chunk == 0:
      chunks = jnp.moveaxis(q.reshape(q.shape[:2] + (tq // chunk, chunk, head)), 2, 0)
      out = jax.lax.map(lambda qc: attend(qc, k, v, key_mask, self.dtype), chunks)
      out = jnp.moveaxis(out, 0, 2).reshape(q.shape)
    else:
      out = attend(q, k, v, key_mask, self.dtype)
    out = jnp.moveaxis(out, 1, 2)  # (B, Tq, H, d)
    out = out.reshape(out.shape[:-2] + (width,))
    # The output projection keeps nn.Linear's default weight; its bias starts at zero.
    return Linear(width, dtype=self.dtype, bias_init=nn.initializers.zeros,
                  name="out_proj")(out)
