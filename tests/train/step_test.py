"""One training step on the tiny config: what changes, what must not, and the formulas."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.configs import tiny
from mcc_jax import losses
from mcc_jax.testing import parity
from mcc_jax.train import optimizers as optimizers_lib
from mcc_jax.train import step as step_lib


@pytest.fixture(scope="module")
def setup():
  config = tiny.get_config()
  config.batch_size = 2
  config.model.batch_norm_group_size = 0
  models = step_lib.build_models(config)
  optimizers = optimizers_lib.make_optimizers(config.optimizer)
  perceptual = losses.load_perceptual_network(config.losses)
  state = jax.jit(functools.partial(step_lib.create_train_state, config=config, models=models,
                                    optimizers=optimizers, batch_shape=(2, 64, 64, 3)))(
                                        jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  batch = {k: jnp.asarray(rng.uniform(-1, 1, (2, 64, 64, 3)), jnp.float32)
           for k in ("source", "driving")}
  steps = {adversarial: jax.jit(functools.partial(
      step_lib.train_step, models=models, optimizers=optimizers, features=perceptual,
      config=config, adversarial=adversarial)) for adversarial in (False, True)}
  results = {adversarial: steps[adversarial](state, batch, perceptual.params)
             for adversarial in (False, True)}
  return dict(config=config, models=models, perceptual=perceptual, state=state, batch=batch,
              results=results)


def _changed(a, b):
  return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(x - y))), a, b)))


def test_adversarial_step_changes_every_trained_group(setup):
  old = setup["state"]
  new, metrics = setup["results"][True]
  for group in ("generator", "motion_estimator", "discriminator"):
    assert _changed(old.params[group], new.params[group]) > 0, group
  assert int(new.step) == 1
  assert _changed(old.batch_stats["discriminator"], new.batch_stats["discriminator"]) > 0
  assert float(metrics["adaptive_weight"]) > 0 and float(metrics["discriminator_loss"]) > 0
  assert float(metrics["gan"]) != 0


def test_before_the_start_the_discriminator_is_untouched(setup):
  old = setup["state"]
  new, metrics = setup["results"][False]
  jax.tree.map(np.testing.assert_array_equal, old.params["discriminator"],
               new.params["discriminator"])
  jax.tree.map(np.testing.assert_array_equal, old.batch_stats["discriminator"],
               new.batch_stats["discriminator"])
  jax.tree.map(np.testing.assert_array_equal, old.opt_state["discriminator"],
               new.opt_state["discriminator"])
  assert _changed(old.params["generator"], new.params["generator"]) > 0
  assert _changed(old.params["motion_estimator"], new.params["motion_estimator"]) > 0
  assert float(metrics["gan"]) == 0 and float(metrics["discriminator_loss"]) == 0


def test_ema_follows_its_formula(setup):
  old = setup["state"]
  new, _ = setup["results"][False]
  decay = setup["config"].optimizer.ema_decay
  expected = jax.tree.map(lambda e, p: decay * np.asarray(e) + (1 - decay) * np.asarray(p),
                          old.ema_params, new.params["generator"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               new.ema_params, expected)
  # Not a copy of the new weights: 0.995 of the old EMA remains.
  assert _changed(new.ema_params, new.params["generator"]) > 0


def test_discriminator_gradient_treats_the_generated_frame_as_a_constant(setup):
  state, batch, models = setup["state"], setup["batch"], setup["models"]
  fake = jnp.tanh(batch["source"] * 1.3)

  def through_fake(x):
    grads, terms, _ = step_lib.discriminator_gradients(
        state.params["discriminator"], state.batch_stats["discriminator"], batch["driving"],
        jnp.tanh(x * 1.3), models=models, group_size=0)
    return terms["discriminator_loss"], grads

  loss_grad = jax.grad(lambda x: through_fake(x)[0])(batch["source"])
  assert float(jnp.abs(loss_grad).max()) == 0.0
  # Separate passes: the real and fake batches are normalised with their own statistics,
  # so the loss differs from one pass over both.
  grads, terms, _ = step_lib.discriminator_gradients(
      state.params["discriminator"], state.batch_stats["discriminator"], batch["driving"], fake,
      models=models, group_size=0)
  joint, _ = models.discriminator.apply(state.variables("discriminator"),
                                        jnp.concatenate([batch["driving"], fake]), train=True,
                                        mutable=["batch_stats"])
  joint_loss, _ = losses.discriminator_loss(joint[:2], joint[2:])
  assert abs(float(joint_loss) - float(terms["discriminator_loss"])) > 1e-4


def test_adaptive_weight_equals_autodiff_through_the_whole_generator(setup):
  config, models, state, batch = setup["config"], setup["models"], setup["state"], setup["batch"]
  perceptual = setup["perceptual"]
  features_fn = lambda images: perceptual.features(perceptual.params, images)
  _, metrics = setup["results"][True]

  def outputs(kernel):
    params = jax.tree.map(lambda x: x, state.params["generator"])
    params["decoder"]["conv_out"]["kernel"] = kernel
    motion = models.motion_estimator.apply(state.variables("motion_estimator"),
                                           batch["source"], batch["driving"], train=True,
                                           mutable=["batch_stats"])[0]
    out = models.generator.apply({"params": params}, batch["source"], motion.deformation,
                                 motion.occlusion, motion.driving_heatmaps, batch["driving"],
                                 train=True)
    return out.image

  def recon(kernel):
    return losses.reconstruction_loss(outputs(kernel), batch["driving"],
                                      features_fn=features_fn, config=config.losses)

  def gan(kernel):
    logits, _ = models.discriminator.apply(state.variables("discriminator"), outputs(kernel),
                                           train=True, mutable=["batch_stats"])
    return losses.hinge_generator_loss(logits)

  kernel = state.params["generator"]["decoder"]["conv_out"]["kernel"]
  g_r = jax.grad(recon)(kernel)
  g_g = jax.grad(gan)(kernel)
  expected = min(float(jnp.linalg.norm(g_r) / (jnp.linalg.norm(g_g) + 1e-4)), 1.0) * 0.8
  assert float(metrics["adaptive_weight"]) == pytest.approx(expected, rel=1e-3)


def test_motion_codebook_losses_do_not_reach_the_motion_estimator(setup):
  config, models, state, batch = setup["config"], setup["models"], setup["state"], setup["batch"]

  def codebook_only(motion_params):
    variables = {"params": motion_params, "batch_stats": state.batch_stats["motion_estimator"]}
    motion = models.motion_estimator.apply(variables, batch["source"], batch["driving"],
                                           train=True, mutable=["batch_stats"])[0]
    out = models.generator.apply({"params": state.params["generator"]}, batch["source"],
                                 motion.deformation, motion.occlusion, motion.driving_heatmaps,
                                 batch["driving"], train=True)
    code, recon = losses.motion_codebook_losses(
        out, code_weight=1.0, reconstruction_weight=config.losses.motion_reconstruction_weight)
    return code + recon

  grads = jax.grad(codebook_only)(state.params["motion_estimator"])
  assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) == 0.0


def test_metrics_are_finite_and_codebook_statistics_are_reported(setup):
  _, metrics = setup["results"][True]
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert "motion_codebook/perplexity_3" in metrics and "appearance_codebook/usage_0" in metrics
  assert float(metrics["learning_rate"]) == pytest.approx(8e-5)
  assert parity.relative_l2(float(metrics["total"]), sum(
      float(metrics[k]) for k in losses.TERMS if k not in ("total", "adaptive_weight"))) < 1e-5


def test_rematerialised_generator_computes_the_same_gradients(setup):
  config, state, batch = setup["config"], setup["state"], setup["batch"]
  remat_config = tiny.get_config()
  remat_config.batch_size = 2
  remat_config.model.batch_norm_group_size = 0
  remat_config.model.remat = True
  models = step_lib.build_models(remat_config)
  perceptual = setup["perceptual"]
  features_fn = lambda images: perceptual.features(perceptual.params, images)
  tps = step_lib.sample_transforms(jax.random.PRNGKey(5), 2, config.losses)
  grads = {}
  for name, (cfg, mdl) in {"plain": (config, setup["models"]),
                           "remat": (remat_config, models)}.items():
    grads[name] = jax.jit(lambda p, s: step_lib.generator_gradients(
        p, s, batch, features_fn, tps, models=mdl, config=cfg, adversarial=False)[0])(
            state.params, state.batch_stats)
  flat = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])
  assert parity.relative_l2(flat(grads["remat"]), flat(grads["plain"])) < 1e-5
