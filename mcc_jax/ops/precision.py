"""The precision floor of mcc-jax's computations: float32, or wider when asked for.

Reductions, losses, flows and softmax logits run in float32 even when the networks
compute in bfloat16. They must not *narrow* a float64 computation, though: with
``jax_enable_x64`` and float64 parameters the whole training step runs in float64, which
is how ``tools/check_training_parity.py --ours-float64`` shows that mcc-jax computes the
same function as the official code with rounding out of the way.
"""

from __future__ import annotations

import jax.numpy as jnp


def at_least_float32(x):
  """``x`` cast to float32, unless its dtype is already wider (float64 stays float64).

  Args:
    x: an array of any floating (or integer) dtype.

  Returns:
    ``x`` as ``promote_types(x.dtype, float32)``: bfloat16/float16/int -> float32,
    float32 -> float32, float64 -> float64.
  """
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))
