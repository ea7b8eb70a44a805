"""The training step runs wholly in float64 when asked, with nothing narrowed to float32.

``tools/check_training_parity.py --ours-float64`` compares a float64 step of mcc-jax with a
float64 step of the official code, which proves the two compute the same function with
float32 rounding out of the way. That proof is only as good as the float64 run: a single
``.astype(jnp.float32)`` left in a loss or a model would round one intermediate to float32
and the comparison would again be limited by float32 rounding. The step is traced (not
compiled, so this is cheap) and every value in its program, sub-programs included, must
be float64 where it is floating point.
"""

import functools

import jax
from jax._src import source_info_util  # pylint: disable=protected-access
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.configs import tiny
from mcc_jax import losses
from mcc_jax.models import factory
from mcc_jax.train import optimizers as optimizers_lib
from mcc_jax.train import step as step_lib


def _is_narrow(aval) -> bool:
  dtype = getattr(aval, "dtype", None)
  return dtype is not None and jnp.issubdtype(dtype, jnp.floating) and dtype != jnp.float64


def _narrow_values(jaxpr, found):
  """Appends (primitive, dtype, source line) for every non-float64 floating value.

  Values are the outputs of every equation and the inputs that are not computed by the
  program: constants (a float32 coordinate grid or kernel built on the host and cast up
  carries float32 rounding into the float64 step just as a cast down would).
  """
  for var in jaxpr.constvars:
    if _is_narrow(var.aval):
      found.append(("constant", str(var.aval.dtype), f"a constant of shape {var.aval.shape}"))
  for eqn in jaxpr.eqns:
    for var in eqn.invars:
      if isinstance(var, jax.extend.core.Literal) and _is_narrow(var.aval):
        found.append((f"literal into {eqn.primitive}", str(var.aval.dtype),
                      source_info_util.summarize(eqn.source_info)))
    for var in eqn.outvars:
      if _is_narrow(var.aval):
        found.append((str(eqn.primitive), str(var.aval.dtype),
                      source_info_util.summarize(eqn.source_info)))
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          _narrow_values(sub.jaxpr, found)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          _narrow_values(sub, found)
  return found


@pytest.fixture(scope="module")
def float64_step_program():
  with jax.enable_x64(True):
    config = tiny.get_config()
    config.batch_size = 2
    config.model.batch_norm_group_size = 0
    config.model.dtype = "float64"
    models = step_lib.build_models(config)
    optimizers = optimizers_lib.make_optimizers(config.optimizer)
    perceptual = losses.load_perceptual_network(config.losses, dtype=jnp.float64)
    as_float64 = lambda tree: jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, jnp.float64 if jnp.issubdtype(
            x.dtype, jnp.floating) else x.dtype), tree)
    state = as_float64(jax.eval_shape(functools.partial(
        step_lib.create_train_state, config=config, models=models, optimizers=optimizers,
        batch_shape=(2, 64, 64, 3)), jax.random.PRNGKey(0)))
    batch = {k: jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float64) for k in ("source", "driving")}
    step = functools.partial(step_lib.train_step, models=models, optimizers=optimizers,
                             features=perceptual, config=config, adversarial=True,
                             with_gradients=True)
    program = jax.make_jaxpr(step, return_shape=True)(state, batch,
                                                      as_float64(perceptual.params))
  return program


def test_float64_step_program_has_no_narrower_float(float64_step_program):
  jaxpr, _ = float64_step_program
  found = _narrow_values(jaxpr.jaxpr, [])
  # Report each offending source line once.
  lines = sorted({f"{where} ({primitive} -> {dtype})" for primitive, dtype, where in found})
  assert not lines, "float32 values in the float64 training step:\n" + "\n".join(lines)


def test_float64_step_returns_float64_params_gradients_and_metrics(float64_step_program):
  _, (new_state, metrics, grads) = float64_step_program
  for name, tree in (("params", new_state.params), ("ema_params", new_state.ema_params),
                     ("gradients", grads), ("metrics", metrics)):
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    assert leaves, name
    narrow = [jax.tree_util.keystr(path) for path, leaf in leaves
              if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.dtype != jnp.float64]
    assert not narrow, f"{name}: {narrow[:10]}"


def test_float64_needs_64_bit_jax():
  config = tiny.get_config()
  config.model.dtype = "float64"
  with jax.enable_x64(False), pytest.raises(factory.ConfigError, match="JAX_ENABLE_X64"):
    factory.dtype_of(config.model)
  with jax.enable_x64(True):
    assert factory.dtype_of(config.model) == jnp.float64
  assert np.dtype(jnp.float64) == np.float64
