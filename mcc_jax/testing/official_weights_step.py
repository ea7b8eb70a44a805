"""One mcc-jax training step started from official-layout weights, for parity checks.

The training parity tool (``tools/check_training_parity.py``, against a checkout of the
official code) and the training-step goldens test (``tests/goldens_train_step_test.py``,
against stored official results) both need the same thing: convert the official
networks' state dicts and a torchvision-layout VGG19 to mcc-jax, build a training state
at an iteration after the discriminator's start, and run
:func:`mcc_jax.train.step.train_step` once with a fixed equivariance transform, keeping
every loss term, the gradients per parameter group and the parameters after the step.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mcc_jax.convert.generator import convert_discriminator, convert_generator
from mcc_jax.convert.motion_estimator import convert_motion_estimator
from mcc_jax.convert.vgg import convert_vgg
from mcc_jax.losses import PerceptualNetwork
from mcc_jax.models.vgg import VGGFeatures
from mcc_jax.ops import tps as tps_ops
from mcc_jax.train import optimizers as optimizers_lib
from mcc_jax.train import step as step_lib
from mcc_jax.train.state import TrainState

# The official step's iteration in the checks: after the discriminator's start (5001),
# so the GAN term, the adaptive weight and the discriminator step are all active.
ITERATION = 5002
# The parameter groups compared, in our layout.
GROUPS = ("generator", "keypoint_detector", "dense_motion", "discriminator")


def run_steps(config, state_dicts: Mapping[str, Mapping[str, np.ndarray]],
              vgg_state: Mapping[str, np.ndarray], batches: Sequence[tuple], theta, control,
              dtype_name: str = "float32", iteration: int = ITERATION,
              compiler_options: Mapping[str, Any] | None = None) -> list[dict]:
  """One step of ``train_step`` from the same initial state, per batch.

  Args:
    config: the full configuration (``configs/vox256.py`` in the checks).
    state_dicts: official-layout state dicts ``{'generator', 'motion_estimator',
      'discriminator'}`` (name -> array).
    vgg_state: torchvision VGG19 ``features.*`` tensors of the perceptual loss.
    batches: (source, driving) pairs, (B, S, S, 3) in [-1, 1]; each is stepped from the
      same initial state with one compiled program.
    theta: (B, 2, 3) affine part of the equivariance transform.
    control: (B, 25) thin-plate-spline parameters on the 5x5 control grid.
    dtype_name: the computation dtype, "float32" (or "float64" under
      ``jax.enable_x64``); weights, batch, transform and VGG are cast to it after
      rounding to float32, as the official float32 weights are.
    iteration: the step's iteration (the state's step is ``iteration - 1``).
    compiler_options: XLA options for compiling the step (``jax.stages.Lowered.compile``),
      e.g. ``{"xla_backend_optimization_level": 3}`` where the process was started at a
      lower level.

  Returns:
    Per batch ``{'terms': {name: float}, 'grads': {group: tree}, 'params': {group:
    tree}}`` with numpy leaves; ``grads`` are the gradients the optimisers received,
    ``params`` the parameters after one step of each.
  """
  dtype = np.dtype(dtype_name)
  config = copy.deepcopy(config)
  config.model.dtype = dtype_name
  models = step_lib.build_models(config)
  num_layers = models.discriminator.num_layers
  cast = lambda tree: jax.tree.map(lambda x: jnp.asarray(np.asarray(x, np.float32), dtype), tree)
  f32 = lambda d: {k: np.asarray(v, np.float32) for k, v in d.items()}
  gen_vars = cast(convert_generator(f32(state_dicts["generator"]), models.generator))
  motion_vars = cast(convert_motion_estimator(f32(state_dicts["motion_estimator"]),
                                              models.motion_estimator))
  disc_vars = cast(convert_discriminator(f32(state_dicts["discriminator"]), num_layers))
  optimizers = optimizers_lib.make_optimizers(config.optimizer, 0)
  params = {"generator": gen_vars["params"], "motion_estimator": motion_vars["params"],
            "discriminator": disc_vars["params"]}
  state = TrainState(
      step=jnp.asarray(iteration - 1, jnp.int32), params=params,
      batch_stats={"motion_estimator": motion_vars["batch_stats"],
                   "discriminator": disc_vars["batch_stats"]},
      ema_params=jax.tree.map(jnp.copy, gen_vars["params"]),
      opt_state={"generator": optimizers.generator.init(
          {k: params[k] for k in ("generator", "motion_estimator")}),
                 "discriminator": optimizers.discriminator.init(params["discriminator"])},
      rng=jax.random.PRNGKey(0))
  perceptual = PerceptualNetwork(VGGFeatures("vgg19", dtype=dtype),
                                 cast(convert_vgg(dict(vgg_state), "vgg19")))
  tps = tps_ops.RandomTPS(theta=jnp.asarray(theta, dtype),
                          control_points=tps_ops.coordinate_grid(5, 5, dtype).reshape(-1, 2),
                          control_params=jnp.asarray(control, dtype))
  step = jax.jit(functools.partial(step_lib.train_step, models=models, optimizers=optimizers,
                                   features=perceptual, config=config, adversarial=True,
                                   with_gradients=True))
  summaries, compiled = [], None
  for source, driving in batches:
    batch = {"source": jnp.asarray(source, dtype), "driving": jnp.asarray(driving, dtype)}
    if compiled is None:
      compiled = step.lower(state, batch, perceptual.params, tps=tps).compile(
          compiler_options)
    new_state, metrics, grads = jax.device_get(compiled(state, batch, perceptual.params,
                                                        tps=tps))
    summaries.append(_summary(new_state, metrics, grads))
  return summaries


def _summary(new_state, metrics, grads) -> dict:
  by_group = lambda tree: {
      "generator": tree["generator"],
      "keypoint_detector": tree["motion_estimator"]["keypoint_detector"],
      "dense_motion": tree["motion_estimator"]["dense_motion"],
      "discriminator": tree["discriminator"]}
  return {"terms": {k: float(v) for k, v in metrics.items() if np.ndim(v) == 0},
          "grads": by_group(grads), "params": by_group(new_state.params)}


def tensor_statistics(tree) -> tuple[list[str], np.ndarray, np.ndarray]:
  """Per tensor of a parameter tree: its path, L2 norm and sum (float64).

  Both statistics are independent of a tensor's memory layout (our HWIO kernels against
  PyTorch's OIHW), so they compare gradients across frameworks without converting them;
  the norm catches a gradient of the wrong size or sent to the wrong layer, the sum one
  of the wrong sign.
  """
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  paths = [jax.tree_util.keystr(path) for path, _ in leaves]
  values = [np.asarray(leaf, np.float64) for _, leaf in leaves]
  return (paths, np.array([np.linalg.norm(v) for v in values]),
          np.array([np.sum(v) for v in values]))
