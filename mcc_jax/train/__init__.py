"""Training: the state, the optimisers, the sharded train step, checkpoints and the loop."""
