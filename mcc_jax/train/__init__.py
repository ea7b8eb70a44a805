"""Training: the state, the optimisers, the sharded train step, checkpoints and the loop."""

from mcc_jax import extras as _extras

_extras.require("train", "mcc_jax.train", own_only=True)
