"""Step metrics: one device-to-host transfer per flush, non-finite steps named."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.train import program
from mcc_jax.train import step_metrics
from mcc_jax.train.state import TrainState


def _metrics(step, names=("a", "b/c", "d")):
  return {name: jnp.asarray(step * 10.0 + i, jnp.float32) for i, name in enumerate(names)}


def test_flush_fetches_every_pending_step_in_one_transfer(monkeypatch):
  buffer = step_metrics.MetricBuffer()
  for step in range(1, 38):
    buffer.add(step, _metrics(step))
  fetched = []
  real = np.asarray

  def counting_asarray(value, *args, **kwargs):
    if isinstance(value, jax.Array):
      fetched.append(value.shape)
    return real(value, *args, **kwargs)

  monkeypatch.setattr(step_metrics.np, "asarray", counting_asarray)
  means = buffer.flush()
  assert fetched == [(37, 3)]
  assert means == pytest.approx({"a": 190.0, "b/c": 191.0, "d": 192.0})
  assert buffer.flush() == {}


def test_a_non_finite_step_is_named_with_its_terms():
  buffer = step_metrics.MetricBuffer()
  buffer.add(1, _metrics(1))
  bad = _metrics(2)
  bad["b/c"] = jnp.asarray(np.nan, jnp.float32)
  buffer.add(2, bad)
  buffer.add(3, _metrics(3))
  with pytest.raises(step_metrics.NonFiniteLossError, match=r"step 2: non-finite values in b/c;"):
    buffer.flush()


def test_a_non_finite_step_keeps_the_previous_state():
  state = TrainState(step=jnp.asarray(4), params={"w": jnp.ones(3)}, batch_stats={},
                     ema_params={"w": jnp.ones(3)}, opt_state={}, rng=jax.random.PRNGKey(0))
  moved = state.replace(step=state.step + 1, params={"w": jnp.full(3, 2.0)},
                        ema_params={"w": jnp.full(3, 3.0)}, rng=jax.random.PRNGKey(1))
  kept, metrics = program.keep_if_finite(state, moved, {"total": jnp.asarray(np.inf)})
  np.testing.assert_array_equal(kept.params["w"], 1.0)
  np.testing.assert_array_equal(kept.ema_params["w"], 1.0)
  assert int(kept.step) == 5 and not np.array_equal(kept.rng, state.rng)
  assert float(metrics[program.SKIPPED]) == 1.0
  kept, metrics = program.keep_if_finite(state, moved, {"total": jnp.asarray(1.0)})
  np.testing.assert_array_equal(kept.params["w"], 2.0)
  assert float(metrics[program.SKIPPED]) == 0.0
