"""Appearance compensation: window layout and the out-of-range key mask."""

import einops
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.models.appearance_compensation import AppearanceCodebookCompensation
from mcc_jax.models.codebook_transformer import CodebookTransformerLayer
from tests.models.model_testing import identity_grid

GRID = 6


@pytest.fixture(scope="module")
def module_and_variables():
  module = AppearanceCodebookCompensation(feature_channels=(32, 16), grid_size=GRID, code_dim=32,
                                          codebook_size=16, num_layers=1, num_heads=4,
                                          num_code_scales=2)
  feature = jnp.zeros((1, GRID, GRID, 32))
  flow = jnp.asarray(identity_grid(2 * GRID))[None]
  variables = module.init(jax.random.PRNGKey(0), 0, 0, feature, flow)
  variables = jax.tree.map(lambda x: x, variables)
  # Non-zero position embeddings, as after training.
  params = dict(variables["params"])
  params["position_embedding"] = 0.3 * jax.random.normal(jax.random.PRNGKey(1),
                                                         params["position_embedding"].shape)
  return module, {"params": params}


def _apply(module, variables, feature, flow):
  return module.apply(variables, 0, 0, feature, flow)


def test_tokens_outside_the_source_are_ignored_as_self_attention_keys(module_and_variables):
  module, variables = module_and_variables
  flow = identity_grid(2 * GRID)
  flow[:2, :2] = 2.0  # the top-left token samples outside the source image
  feature = jax.random.normal(jax.random.PRNGKey(2), (1, GRID, GRID, 32))
  changed = feature.at[0, 0, 0].add(5.0)
  for masked, expect_far_change in ((True, False), (False, True)):
    f = jnp.asarray(flow if masked else identity_grid(2 * GRID))[None]
    a, b = _apply(module, variables, feature, f), _apply(module, variables, changed, f)
    # Beyond the 3x3 feed-forward neighbourhood, only self-attention can carry the change.
    far = np.abs(np.asarray(a[0, 3:, 3:] - b[0, 3:, 3:])).max()
    assert (far > 1e-4) == expect_far_change, (masked, far)


def test_finer_scales_use_larger_windows(module_and_variables):
  """At scale 1 (2x2 windows): the official '(p1 p2 c)' window tokens, scale 1's own
  projections, the transformer over code scale 0's prefix (8 of 16 codes), the window
  reverse -- recomposed here from the parts and compared with the module."""
  module, variables = module_and_variables
  feature = jax.random.normal(jax.random.PRNGKey(3), (1, 2 * GRID, 2 * GRID, 16))
  flow = jnp.asarray(identity_grid(2 * GRID))[None]
  full = module.init(jax.random.PRNGKey(0), 1, 0, feature, flow)
  params = dict(full["params"])
  params["position_embedding"] = variables["params"]["position_embedding"]
  assert params["embeddings_1"]["kernel"].shape == (2 * 2 * 16, 32)
  out = module.apply({"params": params}, 1, 0, feature, flow)
  assert out.shape == feature.shape

  p = jax.tree.map(np.asarray, params)
  windows = einops.rearrange(np.asarray(feature), "b (h p1) (w p2) c -> b h w (p1 p2 c)",
                             p1=2, p2=2)
  tokens = windows @ p["embeddings_1"]["kernel"] + p["embeddings_1"]["bias"]
  codes = p["codebook"]["codebook"][:8]
  # The identity flow samples inside the source everywhere: no key is masked.
  tokens = CodebookTransformerLayer(4).apply({"params": p["layers_0"]}, tokens, codes,
                                             p["position_embedding"], jnp.zeros((1, GRID**2), bool))
  back = np.asarray(tokens) @ p["unembeddings_1"]["kernel"] + p["unembeddings_1"]["bias"]
  expected = einops.rearrange(back, "b h w (p1 p2 c) -> b (h p1) (w p2) c", p1=2, p2=2)
  np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match=r"expects \(12, 12, 16\) features, got \(6, 6, 16\)"):
    module.apply(full, 1, 1, feature[:, :6, :6], flow)
