"""The generator on the tiny configuration: outputs, call modes, gradients, variants."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.configs import tiny
from mcc_jax.models import factory
from mcc_jax.models.codebook_transformer import CodebookTransformerLayer
from mcc_jax.ops.quantize import VectorQuantizer
from tests.models.model_testing import identity_grid
from tests.models.torch_reference import relative_error

# Relative L2 errors of the bfloat16 model against the float32 one (same weights). One
# bfloat16 rounding is 2^-9 ~ 2e-3 relative; the random tiny generator amplifies it:
# rounding only its parameters to bfloat16 (float32 arithmetic) already moves the image
# by 0.019. Measured on CPU: image 0.050, flow refinement 0.0037 (about one rounding:
# the refinement is summed in float32); the bounds leave a margin of 2x to 2.7x for
# other backends' accumulation orders.
BF16_IMAGE_REL_L2 = 0.1
BF16_FLOW_REL_L2 = 0.01


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


def _apply_recording(generator, variables, inputs):
  """A training forward pass that also returns what the codebooks see inside the model:
  per codebook ('motion_compensation' / 'appearance_compensation'), the vectors each
  quantiser call receives and the number of codes each transformer layer attends to."""
  quantised, attended = {}, {}

  def record(next_fun, args, kwargs, context):
    if context.method_name == "__call__":
      owner = context.module.scope.path[0] if context.module.scope.path else ""
      if isinstance(context.module, VectorQuantizer):
        quantised.setdefault(owner, []).append(args[0])
      elif isinstance(context.module, CodebookTransformerLayer):
        attended.setdefault(owner, []).append(args[1].shape[0])
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    out = generator.apply(variables, **inputs, train=True)
  return out, quantised, attended


@pytest.fixture(scope="module")
def setup():
  config = tiny.get_config()
  generator = factory.build_generator(config.model)
  inputs = _inputs(config)
  variables = jax.jit(lambda: generator.init(jax.random.PRNGKey(0), **inputs, train=True))()
  recorded = {}

  def forward(v):
    out, quantised, attended = _apply_recording(generator, v, inputs)
    recorded["attended"] = attended  # static shapes, known while tracing
    return out, quantised

  train_out, quantised = jax.jit(forward)(variables)
  recorded["quantised"] = jax.tree.map(np.asarray, quantised)
  return config, generator, inputs, variables, train_out, recorded


def test_training_outputs(setup):
  config, generator, inputs, _, out, _ = setup
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


def _nearest(vectors, codes):
  vectors, codes = np.asarray(vectors, np.float64), np.asarray(codes, np.float64)
  distances = ((vectors[:, None, :] - codes[None]) ** 2).sum(-1)
  return distances.argmin(-1), distances


@pytest.mark.parametrize("part,outputs", [("motion_compensation", "motion_quantizers"),
                                          ("appearance_compensation", "appearance_quantizers")])
def test_each_scale_uses_its_prefix_of_the_codebook(setup, part, outputs):
  """Prefix allocation (paper Sec. 3.2.1, official ``weight[:K // 4 * (i + 1)]``): at
  scale i of 4 both the quantiser and the transformer's cross-attention use exactly the
  first (i + 1) K / 4 codes, for the motion and the appearance codebook alike. With
  'shared' allocation the coarse scales would reach codes beyond their prefix (checked
  below to really happen for these inputs), with 'equal' they would skip the prefix's
  start; either fails here. The code-level loss is checked against its formula too."""
  config, _, _, variables, out, recorded = setup
  quantizers = getattr(out, outputs)
  codebook = np.asarray(variables["params"][part]["codebook"]["codebook"])
  size = codebook.shape[0]
  allocated = [(i + 1) * size // 4 for i in range(4)]
  beta = config.model.generator.beta
  for i, (q, z) in enumerate(zip(quantizers, recorded["quantised"][part])):
    vectors = z.reshape(-1, z.shape[-1])
    indices = np.asarray(q.indices).reshape(-1)
    assert indices.max() < allocated[i], (part, i)
    expected, distances = _nearest(vectors, codebook[:allocated[i]])
    rows = np.arange(indices.size)
    # The chosen code is a nearest allocated one (equal indices up to float32 near-ties).
    np.testing.assert_allclose(distances[rows, indices], distances[rows, expected], rtol=1e-5)
    # Forward value of mean((sg[z] - q)^2) + beta mean((sg[q] - z)^2).
    error = np.mean((vectors - codebook[indices].astype(np.float64)) ** 2)
    np.testing.assert_allclose(float(q.loss), (1 + beta) * error, rtol=1e-4)
    if i < 3:
      assert _nearest(vectors, codebook)[0].max() >= allocated[i], (part, i)
  layers = len(recorded["attended"][part]) // 4
  assert recorded["attended"][part] == [n for n in allocated for _ in range(layers)]


def test_inference_computes_the_same_frame_without_training_extras(setup):
  _, generator, inputs, variables, train_out, _ = setup
  out = jax.jit(lambda v: generator.apply(v, **inputs, train=False))(variables)
  assert out.low_resolution_image is None
  assert out.motion_quantizers == () and out.appearance_quantizers == ()
  np.testing.assert_allclose(np.asarray(out.image), np.asarray(train_out.image), atol=1e-5)
  for a, b in zip(out.flows, train_out.flows):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def _norm(tree):
  return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(tree)))


def test_motion_codebook_losses_do_not_reach_the_flow(setup):
  _, generator, inputs, variables, _, _ = setup

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
  _, generator, inputs, variables, _, _ = setup

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
  config, _, inputs, variables, _, _ = setup
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
  config, _, inputs, variables, train_out, _ = setup
  model = config.model.copy_and_resolve_references()
  model.dtype = "bfloat16"
  generator = factory.build_generator(model)
  out = jax.jit(lambda v: generator.apply(v, **inputs, train=False))(variables)
  assert out.image.dtype == jnp.bfloat16
  assert out.flows[-1].dtype == jnp.float32 and out.occlusions[-1].dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  # Same function, coarser arithmetic: errors relative to the float32 output's scale.
  assert relative_error(out.image, train_out.image) < BF16_IMAGE_REL_L2
  # The flow refinement (M^N - M^0) comes from bfloat16 networks but is accumulated in
  # float32.
  refinement = lambda o: np.asarray(o.flows[-1]) - np.asarray(o.flows[0])
  assert relative_error(refinement(out), refinement(train_out)) < BF16_FLOW_REL_L2
