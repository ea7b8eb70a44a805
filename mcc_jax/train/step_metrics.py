"""The step metrics between log steps: kept on device, then fetched at once and checked.

Every step returns a dictionary of scalars (loss terms, gradient norms, codebook
statistics, and whether its update was skipped as non-finite). They stay on the device
until the loop needs them, at a log step or before a save; then the pending steps'
metrics are stacked on the device into one ``(steps, metrics)`` array and fetched with
a single device-to-host transfer.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


class NonFiniteLossError(FloatingPointError):
  """A loss term or gradient norm became NaN or infinite."""


@functools.partial(jax.jit, static_argnums=0)
def _stack(names: tuple[str, ...], pending: list[dict[str, jax.Array]]) -> jax.Array:
  return jnp.stack([jnp.stack([jnp.asarray(m[name], jnp.float32).reshape(())
                               for name in names]) for m in pending])


class MetricBuffer:
  """Keeps the step metrics on device until they are needed, then checks and averages them."""

  def __init__(self):
    self._pending: list[tuple[int, dict[str, jax.Array]]] = []
    self.transfers = 0  # device-to-host transfers so far (one per non-empty flush)

  def add(self, step: int, metrics: dict[str, jax.Array]) -> None:
    """Holds the metrics of ``step`` (device arrays; nothing is transferred)."""
    self._pending.append((step, metrics))

  def flush(self) -> dict[str, float]:
    """Fetches the pending metrics in one transfer and returns their means over the steps.

    Raises:
      NonFiniteLossError: naming the first step with a non-finite value and its terms
        (that step's update was not applied; see ``program.keep_if_finite``).
    """
    if not self._pending:
      return {}
    steps = [s for s, _ in self._pending]
    names = tuple(sorted(self._pending[0][1]))
    stacked = _stack(names, [m for _, m in self._pending])
    self._pending = []
    # On several processes the stacked array is replicated; this process's shard holds it.
    values = np.asarray(stacked.addressable_data(0) if not stacked.is_fully_addressable
                        else stacked)
    self.transfers += 1
    for row, step in enumerate(steps):
      bad = [name for name, value in zip(names, values[row]) if not np.isfinite(value)]
      if bad:
        raise NonFiniteLossError(
            f"step {step}: non-finite values in {', '.join(bad)}; its update was not "
            f"applied and the run stopped without saving this or any later step")
    means = values.mean(axis=0, dtype=np.float64)
    return {name: float(mean) for name, mean in zip(names, means)}
