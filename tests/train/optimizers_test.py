"""The official learning-rate schedule and Adam settings."""

import numpy as np
import optax
import pytest

from mcc_jax.configs import vox256
from mcc_jax.train import optimizers


@pytest.mark.parametrize("iteration,expected", [
    (1, 8e-5), (200_000, 8e-5), (200_001, 4e-5), (225_000, 4e-5), (225_001, 2e-5),
    (250_000, 2e-5)])
def test_schedule_matches_the_official_multistep_scheduler(iteration, expected):
  # The official scheduler has stepped `iteration - 1` times at iteration `iteration`
  # and halves the rate when that count reaches a milestone (200k, 225k).
  schedule = optimizers.learning_rate_schedule(vox256.get_config().optimizer)
  assert float(schedule(iteration - 1)) == pytest.approx(expected, rel=1e-6)


def test_first_adam_update_is_lr_times_sign():
  # Adam's bias-corrected first step is lr * g / (|g| + eps): a check of lr, betas and eps.
  tx = optimizers.adam(vox256.get_config().optimizer)
  params = {"w": np.zeros(3, np.float32)}
  grads = {"w": np.array([1e-2, -3.0, 1e-9], np.float32)}
  updates, _ = tx.update(grads, tx.init(params), params)
  g = grads["w"].astype(np.float64)
  np.testing.assert_allclose(updates["w"], -8e-5 * g / (np.abs(g) + optimizers.ADAM_EPS),
                             rtol=1e-5)
  assert isinstance(optimizers.make_optimizers(vox256.get_config().optimizer).generator,
                    optax.GradientTransformation)


def test_discriminator_schedule_follows_the_official_iteration():
  # The discriminator's first update is iteration 5002 (count 0); its rate must halve at
  # iteration 200001 like the others, i.e. at its own count 200001 - 5002.
  config = vox256.get_config().optimizer
  schedule = optimizers.learning_rate_schedule(config, offset=5001)
  assert float(schedule(0)) == pytest.approx(8e-5)
  assert float(schedule(200_000 - 5002)) == pytest.approx(8e-5)
  assert float(schedule(200_001 - 5002)) == pytest.approx(4e-5)
  assert float(schedule(225_001 - 5002)) == pytest.approx(2e-5)


def test_weight_decay_is_torchs_coupled_l2():
  # torch.optim.Adam(weight_decay=w) adds w * p to the gradient before the moments;
  # three updates on the same gradients must give torch's parameters (decoupled AdamW
  # gives others: the check fails for optax.adamw).
  torch = pytest.importorskip("torch")
  config = vox256.get_config().optimizer
  config.weight_decay = 0.1
  config.learning_rate = 1e-2
  start = np.array([0.5, -2.0, 3.0, 1e-3], np.float32)
  gradients = [np.array(g, np.float32) for g in ([0.1, -0.2, 0.0, 1e-4], [0.3, 0.1, -0.5, 0.0],
                                                 [-0.2, 0.2, 0.1, 2e-4])]
  tx = optimizers.adam(config)
  params = {"w": start}
  state = tx.init(params)
  for g in gradients:
    updates, state = tx.update({"w": g}, state, params)
    params = optax.apply_updates(params, updates)
  weight = torch.nn.Parameter(torch.from_numpy(start.copy()))
  reference = torch.optim.Adam([weight], lr=1e-2, betas=(config.b1, config.b2),
                               eps=optimizers.ADAM_EPS, weight_decay=0.1)
  for g in gradients:
    weight.grad = torch.from_numpy(g.copy())
    reference.step()
  np.testing.assert_allclose(params["w"], weight.detach().numpy(), rtol=1e-5, atol=1e-7)
