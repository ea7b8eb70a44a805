"""Motion codebook compensation, its flow refiner, and the SFT fusion block."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.models.codebook_transformer import CodebookTransformerLayer
from mcc_jax.models.flow_refiner import FlowRefiner, MotionEncoder
from mcc_jax.models.motion_compensation import FlowDecoder, FlowEncoder
from mcc_jax.models.motion_compensation import MotionCodebookCompensation
from mcc_jax.models.sft_fusion import SFTFusion
from tests.models.model_testing import identity_grid

F, G = 16, 8  # flow side, motion token grid


@pytest.fixture(scope="module")
def setup():
  module = MotionCodebookCompensation(num_scales=2, grid_size=G, code_dim=32, codebook_size=32,
                                      num_layers=1, num_heads=4, num_code_scales=2)
  rng = np.random.default_rng(0)
  flow = jnp.asarray(identity_grid(F)[None] + 0.05 * rng.normal(size=(2, F, F, 2)), jnp.float32)
  occlusion = jnp.full((2, F, F, 1), 0.8)
  feature = jnp.asarray(rng.normal(size=(2, 2 * G, 2 * G, 32)), jnp.float32)
  heatmaps = jnp.asarray(rng.uniform(size=(2, F, F, 5)), jnp.float32)

  def run(variables, flow, feature, train, code_scale=1):
    query = module.apply(variables, heatmaps, method=MotionCodebookCompensation.keypoint_query)
    return module.apply(variables, 1, code_scale, flow, occlusion, feature, query, train=train)

  def init(key):
    query = jnp.zeros((2, G, G, 32))
    return module.init(key, 1, 1, flow, occlusion, feature, query, train=True)

  variables = jax.jit(init)(jax.random.PRNGKey(0))
  # The keypoint query convolution is created by its own method.
  query_vars = module.init(jax.random.PRNGKey(1), heatmaps,
                           method=MotionCodebookCompensation.keypoint_query)
  params = dict(variables["params"])
  params["keypoint_query_conv"] = query_vars["params"]["keypoint_query_conv"]
  variables = {"params": params}
  return run, variables, flow, feature, occlusion


def _run_recording(run, variables, flow, feature, code_scale):
  """A training step, with the motion feature (the flow encoder's output) and the codes
  each transformer layer cross-attends to, as seen inside the module."""
  seen = {"codes": []}

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__":
      if isinstance(context.module, FlowEncoder):
        seen["motion_feature"] = np.asarray(out)
      elif isinstance(context.module, CodebookTransformerLayer):
        seen["codes"].append(np.asarray(args[1]))
    return out

  with nn.intercept_methods(record):
    step = run(variables, flow, feature, True, code_scale)
  return step, seen


def _nearest(vectors, codes):
  distances = ((vectors[:, None, :].astype(np.float64) - codes[None].astype(np.float64))**2).sum(-1)
  return distances.argmin(-1), distances


def test_step_shapes_ranges_and_target(setup):
  run, variables, flow, feature, occlusion = setup
  step = run(variables, flow, feature, True)
  assert step.flow.shape == (2, F, F, 2) and step.occlusion.shape == (2, F, F, 1)
  assert np.all((np.asarray(step.occlusion) > 0) & (np.asarray(step.occlusion) < 1))
  np.testing.assert_allclose(np.asarray(step.target),
                             np.asarray(flow) - identity_grid(F)[None], atol=1e-6)
  inference = run(variables, flow, feature, False)
  assert inference.reconstruction is None
  np.testing.assert_allclose(np.asarray(inference.flow), np.asarray(step.flow), atol=1e-6)


@pytest.mark.parametrize("code_scale,allocated", [(0, 16), (1, 32)])
def test_each_scale_quantises_and_attends_to_its_prefix_of_the_codebook(setup, code_scale,
                                                                        allocated):
  """Prefix allocation over 2 scales of a 32-code book: scale 0 may use codes [0, 16),
  scale 1 codes [0, 32). The quantiser must pick the nearest *allocated* code and the
  transformer must cross-attend to exactly those rows."""
  run, variables, flow, feature, _ = setup
  step, seen = _run_recording(run, variables, flow, feature, code_scale)
  codebook = np.asarray(variables["params"]["codebook"]["codebook"])
  vectors = seen["motion_feature"].reshape(-1, 32)
  indices = np.asarray(step.quantizer.indices).reshape(-1)
  assert step.quantizer.indices.shape == (2, G, G)
  expected, distances = _nearest(vectors, codebook[:allocated])
  # Equal up to float32 near-ties: the chosen code is at the minimal allocated distance.
  assert indices.max() < allocated
  chosen = distances[np.arange(indices.size), indices]
  np.testing.assert_allclose(chosen, distances[np.arange(indices.size), expected], rtol=1e-5)
  assert [c.shape[0] for c in seen["codes"]] == [allocated]
  np.testing.assert_array_equal(seen["codes"][0], codebook[:allocated])
  if code_scale == 0:
    # Not vacuous: over the whole codebook some vectors would pick codes beyond the
    # prefix, so 'shared' allocation at scale 0 fails the bound above.
    assert _nearest(vectors, codebook)[0].max() >= allocated


def test_reconstruction_decodes_the_quantised_feature_in_normalised_units(setup):
  """D_M decodes the *quantised* motion feature (the allocated codes at the chosen indices),
  and the displacement in pixels is converted back to normalised units by (F - 1) / 2."""
  run, variables, flow, feature, _ = setup
  step = run(variables, flow, feature, True, 0)
  codebook = np.asarray(variables["params"]["codebook"]["codebook"])
  quantised = codebook[np.asarray(step.quantizer.indices)]
  decoded = FlowDecoder().apply({"params": variables["params"]["flow_decoder"]}, quantised)
  np.testing.assert_allclose(np.asarray(step.reconstruction),
                             np.asarray(decoded) / ((F - 1) / 2), rtol=1e-5, atol=1e-6)


def test_codebook_learning_is_cut_from_the_flow_but_refinement_is_not(setup):
  run, variables, flow, feature, _ = setup

  def codebook_loss(flow):
    step = run(variables, flow, feature, True)
    return 32.0 * jnp.mean(jnp.abs(step.reconstruction - step.target)) + step.quantizer.loss

  def refined(flow):
    return jnp.sum(run(variables, flow, feature, False).flow ** 2)

  assert float(jnp.abs(jax.grad(codebook_loss)(flow)).sum()) == 0.0
  assert float(jnp.abs(jax.grad(refined)(flow)).sum()) > 0.0


def test_flow_refiner_outputs_and_motion_encoder_passes_the_flow_through():
  flow = jax.random.normal(jax.random.PRNGKey(0), (1, F, F, 2))
  feature = jax.random.normal(jax.random.PRNGKey(1), (1, F, F, 32))
  encoder = MotionEncoder()
  encoded, _ = encoder.init_with_output(jax.random.PRNGKey(2), flow, feature)
  assert encoded.shape == (1, F, F, 128)
  np.testing.assert_array_equal(np.asarray(encoded[..., 126:]), np.asarray(flow))
  refiner = FlowRefiner()
  (residual, occlusion), _ = refiner.init_with_output(
      jax.random.PRNGKey(3), encoded, jnp.ones((1, F, F, 192)))
  assert residual.shape == (1, F, F, 2) and occlusion.shape == (1, F, F, 1)


def test_sft_fusion_is_dec_times_one_plus_scale_plus_shift_plus_feature_conv():
  enc = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 8, 32))
  dec = jax.random.normal(jax.random.PRNGKey(1), (1, 8, 8, 32))
  block = SFTFusion()
  variables = block.init(jax.random.PRNGKey(2), enc, dec)
  params = jax.tree.map(np.asarray, variables["params"])
  # With the last scale convolution zero and the last shift convolution's bias set to
  # b, the block must add exactly b + feature_conv(enc).
  params["scale"]["conv2"] = jax.tree.map(np.zeros_like, params["scale"]["conv2"])
  params["shift"]["conv2"] = {"kernel": np.zeros_like(params["shift"]["conv2"]["kernel"]),
                              "bias": np.full(32, 0.5, np.float32)}
  out = block.apply({"params": params}, enc, dec)
  conv = params["feature_conv"]
  expected_conv = jax.lax.conv_general_dilated(
      enc, jnp.asarray(conv["kernel"]), (1, 1), ((1, 1), (1, 1)),
      dimension_numbers=("NHWC", "HWIO", "NHWC")) + conv["bias"]
  np.testing.assert_allclose(np.asarray(out), np.asarray(dec + 0.5 + expected_conv), atol=1e-5)


def test_displacement_subtracts_the_official_float32_linspace_grid(setup):
  # The official generator subtracts torch.linspace(-1, 1, F) (float32, meshed 'xy'),
  # not the correctly rounded grid; the reconstruction target shows which one was used.
  import torch  # pylint: disable=import-outside-toplevel
  from mcc_jax import ops  # pylint: disable=import-outside-toplevel
  run, variables, _, feature, _ = setup
  # A flow exactly on the correctly rounded identity: its displacement is then the
  # difference between the two grids, non-zero wherever torch.linspace rounds otherwise.
  flow = jnp.broadcast_to(ops.coordinate_grid(F, F), (2, F, F, 2))
  target = np.asarray(run(variables, flow, feature, train=True).target)
  grid_x, grid_y = torch.meshgrid(torch.linspace(-1.0, 1.0, F), torch.linspace(-1.0, 1.0, F),
                                  indexing="xy")
  official = torch.stack((grid_x, grid_y), dim=-1).numpy()
  np.testing.assert_array_equal(target, np.asarray(flow) - official[None])
  assert np.count_nonzero(target) > 0
