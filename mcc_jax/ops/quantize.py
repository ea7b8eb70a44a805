"""Vector quantisation with a straight-through estimator and multi-scale code allocation.

The quantiser replaces each vector by its nearest codebook row (squared Euclidean
distance), passes gradients straight through to the input, and reports the code-level
loss of VQ-VAE as used by the paper (Eq. 3 and 5)::

    loss = mean((sg[z] - q)^2) + beta * mean((sg[q] - z)^2)

(means over all elements, as the official implementation reduces it).

Multi-scale code allocation (paper Sec. 3.2.1, Tab. 4) decides which rows scale
``i`` of ``N`` may use. Scales are counted from 0 (the coarsest) here:

* ``'prefix'``: the paper's scheme, the first ``(i + 1) * K / N`` codes;
* ``'equal'``: only group ``i``, codes ``[i * K / N, (i + 1) * K / N)``;
* ``'shared'``: all ``K`` codes at every scale.

The compensation transformers read the same allocated rows as keys and values, so the
slice is exposed by :func:`allocated_codes`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from mcc_jax.ops.precision import at_least_float32

Allocation = Literal["prefix", "equal", "shared"]
ALLOCATIONS = ("prefix", "equal", "shared")


class QuantizerOutput(NamedTuple):
  """Result of one quantisation call.

  Attributes:
    quantized: same shape and dtype as the input; forward value = nearest codes,
      gradient = identity to the input (straight-through).
    indices: input shape without the last axis, int32 row numbers into the *full*
      codebook (not into the allocated slice).
    loss: scalar code-level loss ``mean((sg[z]-q)^2) + beta * mean((sg[q]-z)^2)``.
    perplexity: scalar ``exp(entropy)`` of the code usage in this call.
    usage: scalar fraction of the allocated codes used at least once in this call.
  """

  quantized: jax.Array
  indices: jax.Array
  loss: jax.Array
  perplexity: jax.Array
  usage: jax.Array


def code_range(num_codes: int, scale_index: int | None = None, num_scales: int = 1,
               allocation: Allocation = "prefix") -> tuple[int, int]:
  """Rows ``[start, stop)`` of a ``num_codes`` codebook that a scale may use.

  Args:
    num_codes: K, the codebook size.
    scale_index: 0-based scale (0 = coarsest); None means the whole codebook.
    num_scales: N, the number of scales sharing the codebook.
    allocation: ``'prefix'``, ``'equal'`` or ``'shared'`` (see the module docstring).

  Returns:
    (start, stop) Python integers.
  """
  if allocation not in ALLOCATIONS:
    raise ValueError(f"code allocation must be one of {ALLOCATIONS}, got {allocation!r}.")
  if scale_index is None or allocation == "shared":
    return 0, num_codes
  if num_codes % num_scales:
    raise ValueError(
        f"the codebook size ({num_codes}) must be divisible by the number of scales "
        f"({num_scales}) to allocate codes per scale.")
  if not 0 <= scale_index < num_scales:
    raise ValueError(f"scale_index must be in [0, {num_scales}), got {scale_index}.")
  group = num_codes // num_scales
  stop = (scale_index + 1) * group
  start = 0 if allocation == "prefix" else scale_index * group
  return start, stop


def allocated_codes(codebook: jax.Array, scale_index: int | None = None, num_scales: int = 1,
                    allocation: Allocation = "prefix") -> jax.Array:
  """The rows of ``codebook`` (K, D) that scale ``scale_index`` may use, as (K_i, D)."""
  start, stop = code_range(codebook.shape[0], scale_index, num_scales, allocation)
  return codebook[start:stop]


def nearest_code_indices(vectors: jax.Array, codes: jax.Array,
                         precision=jax.lax.Precision.HIGHEST) -> jax.Array:
  """Index of the nearest code for each vector, by squared Euclidean distance.

  Uses ``|z|^2 + |e|^2 - 2 z.e``: a (tokens, codes) distance matrix from one matrix
  product, never a (tokens, codes, dim) difference tensor.

  Args:
    vectors: (N, D) array.
    codes: (K, D) array.
    precision: matmul precision; the default keeps argmin exact on TPU/GPU too.

  Returns:
    (N,) int32 indices into ``codes``.
  """
  vectors = at_least_float32(vectors)
  codes = at_least_float32(codes)
  distances = (jnp.sum(vectors**2, axis=1, keepdims=True) + jnp.sum(codes**2, axis=1)[None, :]
               - 2.0 * jnp.matmul(vectors, codes.T, precision=precision))
  return jnp.argmin(distances, axis=1).astype(jnp.int32)


def lookup(codebook: jax.Array, indices: jax.Array) -> jax.Array:
  """Code vectors for integer ``indices`` of any shape: returns ``indices.shape + (D,)``."""
  return jnp.take(codebook, indices, axis=0)


def code_level_loss(z: jax.Array, quantized: jax.Array, beta: float) -> jax.Array:
  """``mean((sg[z] - q)^2) + beta * mean((sg[q] - z)^2)`` in float32 (paper Eq. 3/5)."""
  z = at_least_float32(z)
  quantized = at_least_float32(quantized)
  codebook_term = jnp.mean((jax.lax.stop_gradient(z) - quantized)**2)
  commitment_term = jnp.mean((jax.lax.stop_gradient(quantized) - z)**2)
  return codebook_term + beta * commitment_term


def quantize(z: jax.Array,
             codebook: jax.Array,
             *,
             beta: float = 0.25,
             scale_index: int | None = None,
             num_scales: int = 1,
             allocation: Allocation = "prefix") -> QuantizerOutput:
  """Quantises the last axis of ``z`` against the allocated rows of ``codebook``.

  Args:
    z: (..., D) vectors (e.g. a (B, H, W, D) feature map).
    codebook: (K, D) code vectors.
    beta: weight of the commitment term.
    scale_index: 0-based scale for multi-scale allocation; None uses every code.
    num_scales: number of scales sharing the codebook.
    allocation: ``'prefix'``, ``'equal'`` or ``'shared'``.

  Returns:
    A :class:`QuantizerOutput`.
  """
  if z.shape[-1] != codebook.shape[-1]:
    raise ValueError(
        f"quantize: vectors have dimension {z.shape[-1]} but codes have {codebook.shape[-1]}.")
  start, stop = code_range(codebook.shape[0], scale_index, num_scales, allocation)
  codes = codebook[start:stop]
  flat = z.reshape(-1, z.shape[-1])
  local = nearest_code_indices(flat, codes)
  chosen = lookup(codes, local).astype(z.dtype).reshape(z.shape)
  loss = code_level_loss(z, chosen, beta)
  quantized = z + jax.lax.stop_gradient(chosen - z)

  counts = jnp.bincount(local, length=stop - start).astype(at_least_float32(z).dtype)
  probs = counts / flat.shape[0]
  perplexity = jnp.exp(-jnp.sum(probs * jnp.log(probs + 1e-10)))
  usage = jnp.mean((counts > 0).astype(counts.dtype))
  indices = (local + start).reshape(z.shape[:-1])
  return QuantizerOutput(quantized, indices, loss, perplexity, usage)


def uniform_codebook_init(key: jax.Array, shape: tuple[int, int], dtype=jnp.float32) -> jax.Array:
  """uniform(-1/K, 1/K) for a (K, D) codebook, as the official code initialises it."""
  bound = 1.0 / shape[0]
  return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)


class VectorQuantizer(nn.Module):
  """A learnable codebook with nearest-code quantisation.

  Attributes:
    num_codes: K, the number of codes.
    code_dim: D, the code dimension.
    beta: commitment weight of the code-level loss.
    num_scales: N, the number of scales sharing the codebook.
    allocation: how scales share the codes: ``'prefix'``, ``'equal'`` or ``'shared'``.
  """

  num_codes: int
  code_dim: int
  beta: float = 0.25
  num_scales: int = 1
  allocation: Allocation = "prefix"

  def setup(self):
    # Validates the allocation once, at construction time of the parameters.
    code_range(self.num_codes, 0 if self.num_scales > 1 else None, self.num_scales,
               self.allocation)
    self.codebook = self.param("codebook", uniform_codebook_init,
                               (self.num_codes, self.code_dim))

  def __call__(self, z: jax.Array, scale_index: int | None = None) -> QuantizerOutput:
    """Quantises (..., D) vectors with the codes allocated to ``scale_index``."""
    return quantize(z, self.codebook, beta=self.beta, scale_index=scale_index,
                    num_scales=self.num_scales, allocation=self.allocation)

  def codes(self, scale_index: int | None = None) -> jax.Array:
    """The (K_i, D) codebook rows allocated to ``scale_index`` (None: all rows)."""
    return allocated_codes(self.codebook, scale_index, self.num_scales, self.allocation)

  def lookup(self, indices: jax.Array) -> jax.Array:
    """Code vectors for full-codebook ``indices``; returns ``indices.shape + (D,)``."""
    return lookup(self.codebook, indices)
