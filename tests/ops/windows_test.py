"""Window partition / reverse: layout of the official patch embedding, exact inverse."""

import einops
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from mcc_jax import ops


@pytest.mark.parametrize("patch", [1, 2, 4, 8])
def test_reverse_inverts_partition_exactly(patch):
  x = jax.random.normal(jax.random.PRNGKey(patch), (2, 8 * patch, 4 * patch, 3))
  tokens = ops.window_partition(x, patch)
  assert tokens.shape == (2, 8, 4, patch * patch * 3)
  np.testing.assert_array_equal(np.asarray(ops.window_reverse(tokens, patch)), np.asarray(x))


def test_token_layout_matches_the_nchw_patch_embedding_order():
  x = np.random.default_rng(0).normal(size=(2, 8, 12, 5)).astype(np.float32)
  # The official embedding flattens NCHW maps with 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'.
  reference = einops.rearrange(torch.from_numpy(x).permute(0, 3, 1, 2),
                               "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=4, p2=4).numpy()
  tokens = np.asarray(ops.window_partition(jnp.asarray(x), 4))
  np.testing.assert_array_equal(tokens.reshape(2, -1, 80), reference)


def test_partition_rejects_sizes_that_do_not_divide():
  with pytest.raises(ValueError, match="multiple of the patch 4"):
    ops.window_partition(jnp.zeros((1, 10, 8, 3)), 4)
  with pytest.raises(ValueError, match="not a multiple of patch"):
    ops.window_reverse(jnp.zeros((1, 2, 2, 10)), 2)
