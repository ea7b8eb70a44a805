"""The official optimisers: Adam with step decay, for the generator side and the discriminator.

All three official optimisers (net_g, motion estimator, discriminator) are Adam with the
same learning rate, betas and no weight decay (``weight_decay`` is torch's coupled L2), under a multi-step schedule that halves
the rate at iterations 200k and 225k. The official scheduler steps at the start of each
iteration from the second one on, so iteration ``t`` (counted from 1) runs at the decayed
rate once ``t > milestone``. optax counts updates from 0 (update ``s`` is iteration
``s + 1``) and scales from update ``s >= boundary`` on, so the boundaries are the
milestones themselves.
"""

from __future__ import annotations

from typing import Mapping

import optax

from mcc_jax.train.state import Optimizers

# torch.optim.Adam's default, which the official configuration does not change.
ADAM_EPS = 1e-8


def learning_rate_schedule(config: Mapping, offset: int = 0) -> optax.Schedule:
  """Learning rate per optax update count, from ``config.optimizer``.

  Args:
    config: ``learning_rate``, ``decay_steps`` (official iteration milestones) and
      ``decay_factor``.
    offset: the iteration of the optimiser's first update minus one. The official
      scheduler steps every optimiser at every iteration, also the discriminator's
      before it joins, while an optax count starts at the first update; the
      discriminator's schedule is therefore shifted by its start step.

  Returns:
    A schedule: ``learning_rate * decay_factor**k`` at update ``s``, where ``k`` is the
    number of milestones ``m`` with ``s + 1 > m`` (iteration ``s + 1`` past it).
  """
  boundaries = {int(m) - offset: float(config["decay_factor"]) for m in config["decay_steps"]
                if int(m) - offset > 0}
  scale = float(config["decay_factor"])**sum(int(m) - offset <= 0 for m in config["decay_steps"])
  return optax.piecewise_constant_schedule(float(config["learning_rate"]) * scale, boundaries)


def adam(config: Mapping, offset: int = 0) -> optax.GradientTransformation:
  """Adam with the scheduled learning rate, and ``weight_decay`` as torch applies it.

  ``torch.optim.Adam(weight_decay=w)`` adds ``w * param`` to the gradient before the
  moments (coupled L2), which is ``optax.add_decayed_weights`` ahead of Adam; optax's
  ``adamw`` would decay the parameters after the moments (decoupled), another update.
  The official recipe uses no weight decay; with ``weight_decay = 0`` this is plain
  ``optax.adam``.
  """
  schedule = learning_rate_schedule(config, offset)
  transform = optax.adam(schedule, b1=config["b1"], b2=config["b2"], eps=ADAM_EPS)
  if config["weight_decay"]:
    return optax.chain(optax.add_decayed_weights(config["weight_decay"]), transform)
  return transform


def make_optimizers(config: Mapping, discriminator_start_step: int = 0) -> Optimizers:
  """Both transforms from ``config.optimizer``.

  Args:
    config: ``config.optimizer``.
    discriminator_start_step: ``config.losses.discriminator_start_step``; the
      discriminator's first update is iteration ``discriminator_start_step + 1``.
  """
  return Optimizers(generator=adam(config),
                    discriminator=adam(config, offset=int(discriminator_start_step)))
