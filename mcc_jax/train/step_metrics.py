"""The step metrics between log steps: kept on device, then checked and averaged."""

from __future__ import annotations

import jax
import numpy as np

from mcc_jax.train import sharding


class NonFiniteLossError(FloatingPointError):
  """A loss term or gradient norm became NaN or infinite."""


class MetricBuffer:
  """Keeps the step metrics on device until they are needed, then checks and averages them."""

  def __init__(self):
    self._pending: list[tuple[int, dict[str, jax.Array]]] = []

  def add(self, step: int, metrics: dict[str, jax.Array]) -> None:
    """Holds the metrics of ``step`` (device arrays; nothing is transferred)."""
    self._pending.append((step, metrics))

  def flush(self) -> dict[str, float]:
    """Fetches the pending metrics and returns their means over the steps.

    Raises:
      NonFiniteLossError: naming the first step with a non-finite value and its terms.
    """
    if not self._pending:
      return {}
    fetched = sharding.host_value([m for _, m in self._pending])
    steps = [s for s, _ in self._pending]
    self._pending = []
    for step, metrics in zip(steps, fetched):
      bad = sorted(name for name, value in metrics.items() if not np.all(np.isfinite(value)))
      if bad:
        raise NonFiniteLossError(
            f"step {step}: non-finite values in {', '.join(bad)}; the run stopped without "
            f"saving this or any later step")
    return {name: float(np.mean([m[name] for m in fetched])) for name in fetched[0]}
