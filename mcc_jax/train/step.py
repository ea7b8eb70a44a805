"""The arithmetic of one training step, following the official ``optimize_parameters``.

One step (the official iteration ``t = state.step + 1``):

1. generator side: the motion estimator (training mode) on (source, driving), the
   generator in training mode with the driving frame, the keypoint detector on a randomly
   transformed driving frame (equivariance), and, once the discriminator has joined, the
   discriminator (training mode, parameters frozen) on the generated frame with the
   adaptive weight (the generated image's reconstruction and GAN gradients computed once,
   for the weight and for the total: ``losses.adversarial_image_terms``); one backward
   pass of the total objective; one Adam update of the
   generator and motion estimator parameters; the generator's EMA;
2. discriminator (from iteration ``discriminator_start_step + 1`` on): hinge loss with
   real and generated (stopped) frames in separate forward passes; one Adam update.

BatchNorm layers see groups of ``model.batch_norm_group_size`` examples
(:mod:`mcc_jax.models.batch_groups`); their running statistics are updated in the
official order: keypoints of the driving frame, of the source, dense motion, keypoints
of the transformed frame; the discriminator's on the generated frame (generator step),
then the real and the generated frames (discriminator step).

Everything is a pure function of arrays: ``train_step`` is what the trainer jits (with
``adversarial`` static) over any mesh.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mcc_jax import losses
from mcc_jax.models import factory
from mcc_jax.models.batch_groups import grouped_apply
from mcc_jax.models.discriminator import PatchDiscriminator
from mcc_jax.models.generator import Generator
from mcc_jax.models.motion_estimator import MotionEstimator
from mcc_jax.models.reenactment import reenact
from mcc_jax.ops import tps as tps_ops
from mcc_jax.ops.precision import at_least_float32
from mcc_jax.train.optimizers import learning_rate_schedule
from mcc_jax.train.state import GENERATOR_SIDE, Optimizers, TrainState


class Models(NamedTuple):
  """The three networks (Flax modules, no parameters)."""

  generator: Generator
  motion_estimator: MotionEstimator
  discriminator: PatchDiscriminator


def build_models(config) -> Models:
  """The networks of ``config.model`` (validated by the factory)."""
  model = config.model
  return Models(factory.build_generator(model), factory.build_motion_estimator(model),
                factory.build_discriminator(model))


def create_train_state(rng: jax.Array, *, config, models: Models, optimizers: Optimizers,
                       batch_shape: tuple[int, int, int, int]) -> TrainState:
  """A fresh state: initial parameters (PyTorch's initialisation), EMA = generator, step 0.

  Args:
    rng: PRNG key; split into the three networks' keys and the state's key.
    config: the full configuration.
    models: from :func:`build_models`.
    optimizers: the two transforms.
    batch_shape: (B, S, S, 3); only S matters (parameters do not depend on B).

  Returns:
    The :class:`TrainState` (jit it with ``out_shardings`` to create it sharded).
  """
  key_motion, key_generator, key_discriminator, key_state = jax.random.split(rng, 4)
  size = batch_shape[1]
  image = jnp.zeros((1, size, size, 3), jnp.float32)
  flow = factory.flow_size(config.model)
  motion_vars = models.motion_estimator.init(key_motion, image, image, train=False)
  generator_vars = models.generator.init(
      key_generator, image, jnp.zeros((1, flow, flow, 2)), jnp.zeros((1, flow, flow, 1)),
      jnp.zeros((1, flow, flow, config.model.num_keypoints)), image, train=True)
  discriminator_vars = models.discriminator.init(key_discriminator, image, train=False)
  params = {"generator": generator_vars["params"], "motion_estimator": motion_vars["params"],
            "discriminator": discriminator_vars["params"]}
  batch_stats = {"motion_estimator": motion_vars["batch_stats"],
                 "discriminator": discriminator_vars["batch_stats"]}
  generator_side = {name: params[name] for name in GENERATOR_SIDE}
  opt_state = {"generator": optimizers.generator.init(generator_side),
               "discriminator": optimizers.discriminator.init(params["discriminator"])}
  # A copy, not an alias: the EMA buffers are updated (and donated) separately.
  ema = jax.tree.map(jnp.copy, params["generator"])
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                    ema_params=ema, opt_state=opt_state, rng=key_state)


def sample_transforms(key: jax.Array, batch_size: int, losses_config) -> tps_ops.RandomTPS:
  """The equivariance loss's random affine + TPS transforms (FOMM's, official sigmas)."""
  return tps_ops.sample_random_tps(key, batch_size, sigma_affine=losses_config.sigma_affine,
                                   sigma_tps=losses_config.sigma_tps,
                                   points_tps=losses_config.points_tps)


def generator_gradients(params: dict, batch_stats: dict, batch: dict[str, jax.Array],
                        features_fn: Callable, tps: tps_ops.RandomTPS, *, models: Models,
                        config, adversarial: bool):
  """Gradients of the generator objective w.r.t. the generator and motion estimator.

  Args:
    params: all parameters (``state.params``).
    batch_stats: all BatchNorm statistics (``state.batch_stats``).
    batch: ``{'source', 'driving'}`` (B, S, S, 3) in [-1, 1].
    features_fn: the perceptual network's features (its weights bound).
    tps: the equivariance transforms.
    models: the networks.
    config: the full configuration.
    adversarial: whether the discriminator has joined (GAN term, adaptive weight).

  Returns:
    (grads ``{'generator', 'motion_estimator'}``, terms dict, new batch_stats dict
    ``{'motion_estimator', 'discriminator'}``, the GeneratorOutput).
  """
  source, driving = batch["source"], batch["driving"]
  group = config.model.batch_norm_group_size
  loss_config = config.losses

  def objective(trainable):
    variables = {"motion_estimator": {"params": trainable["motion_estimator"],
                                      "batch_stats": batch_stats["motion_estimator"]},
                 "generator": {"params": trainable["generator"]}}
    motion, output, motion_stats, captured = reenact(
        models.motion_estimator, models.generator, variables, source, driving, train=True,
        batch_norm_group_size=group, intermediates=True)
    transformed = tps_ops.transform_frame(tps, driving)
    kp_transformed, motion_stats = grouped_apply(
        models.motion_estimator, {"params": trainable["motion_estimator"],
                                  "batch_stats": motion_stats},
        transformed, group_size=group, method=MotionEstimator.detect_keypoints, train=True)
    new_stats = {"motion_estimator": motion_stats,
                 "discriminator": batch_stats["discriminator"]}
    image_terms = None
    if adversarial:
      frozen = {"params": jax.lax.stop_gradient(params["discriminator"]),
                "batch_stats": batch_stats["discriminator"]}

      def reconstruction(image):
        return losses.reconstruction_terms(image, driving, features_fn=features_fn,
                                           config=loss_config)

      def gan(image):
        logits, stats = grouped_apply(models.discriminator, frozen, image, group_size=group,
                                      train=True)
        return losses.hinge_generator_loss(logits), stats

      last_input = captured["decoder"]["last_layer_input"][0]
      kernel_shape = trainable["generator"]["decoder"]["conv_out"]["kernel"].shape
      image_terms = losses.adversarial_image_terms(
          reconstruction, gan, output.image, last_input, kernel_shape,
          max_weight=loss_config.adversarial_weight_max,
          scale=loss_config.adversarial_weight_scale)
      new_stats["discriminator"] = image_terms.gan_aux
    total, terms = losses.total_generator_loss(
        output, motion, kp_transformed, tps, driving, features_fn=features_fn,
        config=loss_config, image_terms=image_terms)
    return total, (terms, new_stats, output)

  trainable = {name: params[name] for name in GENERATOR_SIDE}
  (_, (terms, new_stats, output)), grads = jax.value_and_grad(objective, has_aux=True)(trainable)
  return grads, terms, new_stats, output


def discriminator_gradients(params_d: Any, batch_stats_d: Any, real: jax.Array,
                            fake: jax.Array, *, models: Models, group_size: int):
  """Gradient of the hinge discriminator loss; real and fake in separate passes.

  Returns:
    (grads, terms ``{'discriminator_loss', 'discriminator_real', 'discriminator_fake'}``,
    the new BatchNorm statistics after the real, then the fake pass).
  """
  fake = jax.lax.stop_gradient(fake)

  def objective(p):
    real_logits, stats = grouped_apply(models.discriminator,
                                       {"params": p, "batch_stats": batch_stats_d}, real,
                                       group_size=group_size, train=True)
    fake_logits, stats = grouped_apply(models.discriminator, {"params": p, "batch_stats": stats},
                                       fake, group_size=group_size, train=True)
    total, terms = losses.discriminator_loss(real_logits, fake_logits)
    return total, (terms, stats)

  (_, (terms, stats)), grads = jax.value_and_grad(objective, has_aux=True)(params_d)
  return grads, terms, stats


def _norm(tree: Any) -> jax.Array:
  """Global L2 norm of a gradient tree, in float32."""
  return jnp.sqrt(sum(jnp.sum(jnp.square(at_least_float32(x))) for x in jax.tree.leaves(tree)))


def _codebook_metrics(output) -> dict[str, jax.Array]:
  metrics = {}
  for kind, quantizers in (("motion", output.motion_quantizers),
                           ("appearance", output.appearance_quantizers)):
    for index, quantizer in enumerate(quantizers):
      metrics[f"{kind}_codebook/perplexity_{index}"] = at_least_float32(quantizer.perplexity)
      metrics[f"{kind}_codebook/usage_{index}"] = at_least_float32(quantizer.usage)
  return metrics


def train_step(state: TrainState, batch: dict[str, jax.Array], features_params: Any, *,
               models: Models, optimizers: Optimizers, features, config, adversarial: bool,
               tps: tps_ops.RandomTPS | None = None, with_gradients: bool = False):
  """One training step (see the module docstring).

  Args:
    state: the current state.
    batch: ``{'source', 'driving'}`` (B, S, S, 3) in [-1, 1].
    features_params: the perceptual network's weights (an argument, so that jit does not
      embed them as constants).
    models: the networks.
    optimizers: the two transforms (``make_optimizers``).
    features: the :class:`~mcc_jax.losses.PerceptualNetwork`.
    config: the full configuration.
    adversarial: whether the discriminator takes part (static under jit).
    tps: the equivariance transforms; drawn from ``state.rng`` if None.
    with_gradients: also return the gradients (for parity checks).

  Returns:
    (new state, metrics): every loss term, the adaptive weight, the discriminator's
    losses, gradient norms, learning rates and codebook perplexity/usage per scale, as
    float32 scalars (float64 in a float64 step). With ``with_gradients``, a third element: ``{'generator',
    'motion_estimator', 'discriminator'}`` gradients (the last None when not adversarial).
  """
  rng, tps_key = jax.random.split(state.rng)
  if tps is None:
    tps = sample_transforms(tps_key, batch["source"].shape[0], config.losses)

  def features_fn(images):
    return features.features(features_params, images)

  grads, terms, batch_stats, output = generator_gradients(
      state.params, state.batch_stats, batch, features_fn, tps, models=models, config=config,
      adversarial=adversarial)
  generator_side = state.generator_side_params()
  updates, generator_opt = optimizers.generator.update(grads, state.opt_state["generator"],
                                                       generator_side)
  generator_side = optax.apply_updates(generator_side, updates)
  decay = config.optimizer.ema_decay
  ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params,
                     generator_side["generator"])
  params = dict(state.params, **generator_side)
  opt_state = dict(state.opt_state, generator=generator_opt)
  metrics = dict(terms)
  metrics["grad_norm_generator"] = _norm(grads["generator"])
  metrics["grad_norm_motion_estimator"] = _norm(grads["motion_estimator"])
  metrics["learning_rate"] = learning_rate_schedule(config.optimizer)(state.step)
  metrics.update(_codebook_metrics(output))
  zero = jnp.zeros((), jnp.float32)
  metrics.update(discriminator_loss=zero, discriminator_real=zero, discriminator_fake=zero,
                 grad_norm_discriminator=zero)
  d_grads = None
  if adversarial:
    d_grads, d_terms, d_stats = discriminator_gradients(
        params["discriminator"], batch_stats["discriminator"], batch["driving"], output.image,
        models=models, group_size=config.model.batch_norm_group_size)
    d_updates, d_opt = optimizers.discriminator.update(
        d_grads, state.opt_state["discriminator"], params["discriminator"])
    params["discriminator"] = optax.apply_updates(params["discriminator"], d_updates)
    batch_stats = dict(batch_stats, discriminator=d_stats)
    opt_state["discriminator"] = d_opt
    metrics.update(d_terms)
    metrics["grad_norm_discriminator"] = _norm(d_grads)
  metrics = {name: at_least_float32(value) for name, value in metrics.items()}
  new_state = TrainState(step=state.step + 1, params=params, batch_stats=batch_stats,
                         ema_params=ema, opt_state=opt_state, rng=rng)
  if with_gradients:
    return new_state, metrics, dict(grads, discriminator=d_grads)
  return new_state, metrics
