"""The generator on the tiny configuration: outputs, call modes, gradients, variants."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from mcc_jax.models import factory
from tests.models.model_testing import identity_grid


def _inputs(config, batch=2, seed=0):
  rng = np.random.default_rng(seed)
  s, f = config.image_size, factory.flow_size(config.model)
  deformation = identity_grid(f)[None] + 0.05 * rng.normal(size=(batch, f, f, 2))
  deformation[:, :2, :2] += 1.5  # a corner that samples outside the source
  return dict(
      source=jnp.asarray(rng.uniform(-1, 1, (batch, s, s, 3)), jnp.float32),
      deformation=jnp.asarray(deformation, jnp.float32),
      occlusion=jnp.asarray(rng.uniform(0.2, 1, (batch, f, f, 1)), jnp.float32),
      driving_heatmaps=jnp.asarray(rng.uniform(0, 1, (batch, f, f, config.model.num_keypoints)),
                                   jnp.float32),
      driving=jnp.asarray(rng.uniform(-1, 1, (batch, s, s, 3)), jnp.float32))


@pytest.fixture(scope="module")
def setup():
  config = tiny.get_config()
  generator = factory.build_generator(config.model)
  inputs = _inputs(config)
  variables = jax.jit(lambda: generator.init(jax.random.PRNGKey(0), **inputs, train=True))()
  train_out = jax.jit(lambda v: generator.apply(v, **inputs, train=True))(variables)
  return config, generator, inputs, variables, train_out


def test_training_outputs(setup):
  config, generator, inputs, _, out = setup
  s, f = config.image_size, factory.flow_size(config.model)
  assert out.image.shape == out.low_resolution_image.shape == (2, s, s, 3)
  assert len(out.flows) == 5 and all(flow.shape == (2, f, f, 2) for flow in out.flows)
  np.testing.assert_array_equal(np.asarray(out.flows[0]), np.asarray(inputs["deformation"]))
  assert len(out.occlusions) == 4
  for occ in out.occlusions:
    assert occ.shape == (2, f, f, 1)
    assert np.all((np.asarray(occ) > 0) & (np.asarray(occ) < 1))
  assert len(out.motion_reconstructions) == len(out.motion_targets) == 4
  for reconstruction, target, flow in zip(out.motion_reconstructions, out.motion_targets,
                                          out.flows):
    assert reconstruction.shape == (2, f, f, 2)
    np.testing.assert_allclose(np.asarray(target), np.asarray(flow) - identity_grid(f)[None],
                               atol=1e-6)
  assert len(out.motion_quantizers) == len(out.appearance_quantizers) == 4
  for q in out.motion_quantizers + out.appearance_quantizers:
    assert np.isfinite(float(q.loss)) and float(q.loss) > 0
  # Prefix allocation: scale i uses the first (i + 1) * K / 4 codes.
  for i, q in enumerate(out.appearance_quantizers):
    assert int(np.max(np.asarray(q.indices))) < (i + 1) * 16


def test_inference_computes_the_same_frame_without_training_extras(setup):
  _, generator, inputs, variables, train_out = setup
  out = jax.jit(lambda v: generator.apply(v, **inputs, train=False))(variables)
  assert out.low_resolution_image is None
  assert out.motion_quantizers == () and out.appearance_quantizers == ()
  np.testing.assert_allclose(np.asarray(out.image), np.asarray(train_out.image), atol=1e-5)
  for a, b in zip(out.flows, train_out.flows):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def _norm(tree):
  return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(tree)))


def test_motion_codebook_losses_do_not_reach_the_flow(setup):
  _, generator, inputs, variables, _ = setup

  def codebook_losses(deformation, params):
    out = generator.apply({"params": params}, **dict(inputs, deformation=deformation),
                          train=True)
    recon = sum(jnp.mean(jnp.abs(r - t))
                for r, t in zip(out.motion_reconstructions, out.motion_targets))
    return 32.0 * recon + sum(q.loss for q in out.motion_quantizers)

  grad_flow, grad_params = jax.jit(jax.grad(codebook_losses, argnums=(0, 1)))(
      inputs["deformation"], variables["params"])
  # The paper's stop-gradient: nothing flows back into the flow estimator ...
  assert _norm(grad_flow) == 0.0
  # ... while the codebook, flow encoder and flow decoder do learn.
  motion = grad_params["motion_compensation"]
  for part in ("codebook", "flow_encoder", "flow_decoder"):
    assert _norm(motion[part]) > 0, part

  def image_mean(deformation):
    return jnp.mean(generator.apply(variables, **dict(inputs, deformation=deformation),
                                    train=False).image)

  assert _norm(jax.jit(jax.grad(image_mean))(inputs["deformation"])) > 0


def test_appearance_code_loss_trains_codebook_and_encoder_only(setup):
  _, generator, inputs, variables, _ = setup

  def loss(params):
    out = generator.apply({"params": params}, **inputs, train=True)
    return sum(q.loss for q in out.appearance_quantizers)

  grads = jax.jit(jax.grad(loss))(variables["params"])
  assert _norm(grads["appearance_compensation"]["codebook"]) > 0
  assert _norm(grads["appearance_compensation"]["embeddings_2"]) > 0
  assert _norm(grads["encoder"]["down_0_block_0"]) > 0
  assert _norm(grads["decoder"]) == 0
  assert _norm(grads["motion_compensation"]) == 0


def _prune(full, shapes):
  """The sub-tree of ``full`` with the paths of ``shapes`` (variants share parameters)."""
  flat_full = flax.traverse_util.flatten_dict(full)
  flat_shapes = flax.traverse_util.flatten_dict(shapes)
  for path, shape in flat_shapes.items():
    assert flat_full[path].shape == shape.shape, path
  return flax.traverse_util.unflatten_dict({p: flat_full[p] for p in flat_shapes})


@pytest.mark.parametrize("variant,has_motion,has_appearance", [
    ("baseline", False, False), ("smc", True, False), ("mmc", True, False),
    ("mmc_sac", True, True), ("full", True, True)])
def test_each_ablation_variant_builds_and_runs(setup, variant, has_motion, has_appearance):
  config, _, inputs, variables, _ = setup
  model = config.model.copy_and_resolve_references()
  model.variant = variant
  generator = factory.build_generator(model)
  shapes = jax.eval_shape(lambda: generator.init(jax.random.PRNGKey(0), **inputs, train=True))
  params = shapes["params"]
  assert ("motion_compensation" in params) == has_motion
  assert ("appearance_compensation" in params) == has_appearance
  if variant == "mmc_sac":
    assert "embeddings_1" not in params["appearance_compensation"]
  out = generator.apply(_prune(variables, shapes), **inputs, train=True)
  assert out.image.shape == inputs["source"].shape
  assert len(out.motion_quantizers) == {"baseline": 0, "smc": 1}.get(variant, 4)
  assert len(out.appearance_quantizers) == {"mmc_sac": 1, "full": 4}.get(variant, 0)
  if variant == "smc":  # one refinement, then the same flow at every scale
    assert not np.allclose(np.asarray(out.flows[1]), np.asarray(out.flows[0]))
    for later in out.flows[2:]:
      np.testing.assert_array_equal(np.asarray(later), np.asarray(out.flows[1]))
  if variant == "baseline":
    for flow in out.flows:
      np.testing.assert_array_equal(np.asarray(flow), np.asarray(inputs["deformation"]))


def test_bfloat16_computation_keeps_float32_parameters_and_flows(setup):
  config, _, inputs, variables, train_out = setup
  model = config.model.copy_and_resolve_references()
  model.dtype = "bfloat16"
  generator = factory.build_generator(model)
  out = jax.jit(lambda v: generator.apply(v, **inputs, train=False))(variables)
  assert out.image.dtype == jnp.bfloat16
  assert out.flows[-1].dtype == jnp.float32 and out.occlusions[-1].dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  # Same function, coarser arithmetic.
  error = np.abs(np.asarray(out.image, np.float32) - np.asarray(train_out.image))
  assert np.all(np.isfinite(error)) and float(np.mean(error)) < 0.05
