"""VQGAN encoder taps, decoder fusion, and the building blocks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.models import vqgan_blocks
from mcc_jax.models.vqgan_decoder import Decoder
from mcc_jax.models.vqgan_encoder import Encoder

KW = dict(nf=32, ch_mult=(1, 1, 2), num_res_blocks=2, attention_levels=(2,))


@pytest.fixture(scope="module")
def encoded():
  encoder = Encoder(out_channels=64, **KW)
  image = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3), minval=-1, maxval=1)
  variables = jax.jit(encoder.init)(jax.random.PRNGKey(1), image)
  return encoder, image, variables, encoder.apply(variables, image)


def test_encoder_taps_have_the_level_shapes(encoded):
  _, _, _, features = encoded
  assert [None if f is None else f.shape for f in features.levels] == [
      (2, 32, 32, 32), (2, 16, 16, 32), None]
  assert features.coarsest_first_block.shape == (2, 8, 8, 64)
  assert features.output.shape == (2, 8, 8, 64)


def test_early_stop_returns_the_same_taps(encoded):
  encoder, image, variables, full = encoded
  early = encoder.apply(variables, image, stop_after_coarsest_first_block=True)
  assert early.output is None
  for a, b in zip(early.levels[:-1], full.levels[:-1]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(np.asarray(early.coarsest_first_block),
                                np.asarray(full.coarsest_first_block))


def test_decoder_fuses_every_finer_skip():
  decoder = Decoder(out_channels=3, **KW)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 8, 64))
  skips = [jax.random.normal(jax.random.PRNGKey(i), (1, 8 * 2**i, 8 * 2**i, c))
           for i, c in ((1, 32), (2, 32))]
  variables = decoder.init(jax.random.PRNGKey(3), x, skips)
  assert set(variables["params"]) >= {"fusion_1", "fusion_0"}
  plain = decoder.apply(variables, x, None)
  fused = decoder.apply(variables, x, skips)
  assert plain.shape == fused.shape == (1, 32, 32, 3)
  assert not np.allclose(np.asarray(plain), np.asarray(fused))
  grads = jax.grad(lambda s: jnp.sum(decoder.apply(variables, x, s) ** 2))(skips)
  assert all(float(jnp.abs(g).sum()) > 0 for g in grads)
  with pytest.raises(ValueError, match="expected 2 skip features, got 1"):
    decoder.apply(variables, x, skips[:1])


def test_downsample_pads_right_and_bottom_only():
  block = vqgan_blocks.Downsample()
  x = jnp.zeros((1, 4, 4, 1)).at[0, 3, 3, 0].set(1.0)
  kernel = jnp.zeros((3, 3, 1, 1)).at[:, :, 0, 0].set(jnp.arange(9.0).reshape(3, 3))
  out = block.apply({"params": {"conv": {"kernel": kernel, "bias": jnp.zeros(1)}}}, x)
  # Output (1, 1) reads input rows/cols 2..4 (4 is padding): the 1 sits at kernel (1, 1).
  assert out.shape == (1, 2, 2, 1)
  np.testing.assert_allclose(np.asarray(out[0, :, :, 0]), [[0, 0], [0, 4.0]])


def test_res_block_shortcut_only_when_width_changes():
  x = jnp.ones((1, 4, 4, 32))
  same = vqgan_blocks.ResBlock(32).init(jax.random.PRNGKey(0), x)["params"]
  wider = vqgan_blocks.ResBlock(64).init(jax.random.PRNGKey(0), x)["params"]
  assert "shortcut" not in same and "shortcut" in wider
