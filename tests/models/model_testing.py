"""Helpers shared by the model tests (not a test file itself)."""

import jax
import numpy as np


def random_variables(shapes, seed=0, scale=0.05):
  """Random arrays with the structure of ``jax.eval_shape(module.init, ...)``.

  Initialising a model for real compiles its whole init program; tests that only need
  *some* weights of the right shapes take them from here instead.
  """
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: (scale * rng.normal(size=s.shape)).astype(s.dtype), shapes)


def identity_grid(size):
  """(size, size, 2) FOMM coordinate grid, in numpy."""
  lin = np.linspace(-1, 1, size)
  return np.stack(np.meshgrid(lin, lin, indexing="xy"), -1).astype(np.float32)
