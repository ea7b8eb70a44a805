"""The training state: every array a training run carries from one step to the next.

One :class:`TrainState` holds the three networks' parameters (generator, motion
estimator = keypoint detector + dense motion, discriminator), their BatchNorm
statistics, the generator's exponential moving average, both optimisers' states, the
step counter and the random key. The optax transforms themselves are static (they hold
no arrays) and travel separately in :class:`Optimizers`, so the state is a plain pytree
that jit shards, donates and orbax saves.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.struct
import jax
import optax

# Parameter groups, as in the official code's three optimisers: opt_g (net_g) and opt_m
# (motion estimator) share hyper-parameters and minimise the same objective, so one Adam
# transform over both trees is the same update; the discriminator has its own.
GENERATOR_SIDE = ("generator", "motion_estimator")
NETWORKS = ("generator", "motion_estimator", "discriminator")


class Optimizers(NamedTuple):
  """The two optax transforms (static: no arrays).

  Attributes:
    generator: updates ``{'generator': ..., 'motion_estimator': ...}`` parameters.
    discriminator: updates the discriminator's parameters.
  """

  generator: optax.GradientTransformation
  discriminator: optax.GradientTransformation


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training.

  Attributes:
    step: int32 scalar, the number of completed steps. The next step is the official
      code's iteration ``step + 1`` (its iterations count from 1).
    params: ``{'generator': ..., 'motion_estimator': ..., 'discriminator': ...}`` Flax
      ``params`` collections.
    batch_stats: ``{'motion_estimator': ..., 'discriminator': ...}`` BatchNorm running
      statistics (the generator has none: it normalises with GroupNorm/LayerNorm).
    ema_params: the generator's parameters averaged with ``config.optimizer.ema_decay``
      (what inference uses by default).
    opt_state: ``{'generator': ..., 'discriminator': ...}`` optax states; the first over
      ``{'generator': ..., 'motion_estimator': ...}`` parameters.
    rng: PRNG key, split once per step (the equivariance loss's random transforms).
  """

  step: jax.Array
  params: dict[str, Any]
  batch_stats: dict[str, Any]
  ema_params: Any
  opt_state: dict[str, Any]
  rng: jax.Array

  def generator_side_params(self) -> dict[str, Any]:
    """``{'generator': ..., 'motion_estimator': ...}``: what the generator optimiser updates."""
    return {name: self.params[name] for name in GENERATOR_SIDE}

  def variables(self, network: str, *, ema: bool = False) -> dict[str, Any]:
    """Flax variables of one network, ready for ``module.apply``.

    Args:
      network: ``'generator'``, ``'motion_estimator'`` or ``'discriminator'``.
      ema: for the generator, use the moving-average parameters.
    """
    if network not in NETWORKS:
      raise ValueError(f"unknown network {network!r}; expected one of {NETWORKS}")
    params = self.ema_params if (ema and network == "generator") else self.params[network]
    variables = {"params": params}
    if network in self.batch_stats:
      variables["batch_stats"] = self.batch_stats[network]
    return variables
