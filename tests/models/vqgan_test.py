"""VQGAN encoder taps, decoder fusion, and the building blocks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mcc_jax.models import vqgan_blocks
from mcc_jax.models.vqgan_decoder import Decoder
from mcc_jax.models.vqgan_encoder import Encoder
from tests.models import torch_reference as ref

KW = dict(nf=32, ch_mult=(1, 1, 2), num_res_blocks=2, attention_levels=(2,))
# float32 against a float64 re-computation (relative L2 over a whole map).
REL_TOL = 1e-5


@pytest.fixture(scope="module")
def encoded():
  encoder = Encoder(out_channels=64, **KW)
  image = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3), minval=-1, maxval=1)
  variables = jax.jit(encoder.init)(jax.random.PRNGKey(1), image)
  return encoder, image, variables, encoder.apply(variables, image)


def _torch_encoder(params, image, num_levels=3, num_res_blocks=2, attention_levels=(2,)):
  """The VQGAN encoder in float64 PyTorch: per level residual blocks (each followed by
  attention at the attention levels) and a downsampling step, then a middle section and
  norm + conv. Returns the level taps, the coarsest level's first block and the output."""
  x = ref.conv(params["conv_in"], ref.nchw(image), padding=1)
  levels, coarsest_first = [], None
  for level in range(num_levels):
    for block in range(num_res_blocks):
      x = ref.vqgan_res_block(params[f"down_{level}_block_{block}"], x)
      if level in attention_levels:
        x = ref.vqgan_attn_block(params[f"down_{level}_attn_{block}"], x)
      if level == num_levels - 1 and block == 0:
        coarsest_first = x
    if level != num_levels - 1:
      levels.append(ref.nhwc(x))
      x = ref.vqgan_downsample(params[f"downsample_{level}"], x)
  x = ref.vqgan_res_block(params["mid_block_1"], x)
  x = ref.vqgan_attn_block(params["mid_attn"], x)
  x = ref.vqgan_res_block(params["mid_block_2"], x)
  x = ref.conv(params["conv_out"], ref.group_norm(params["norm_out"], x), padding=1)
  return levels, ref.nhwc(coarsest_first), ref.nhwc(x)


def test_encoder_taps_match_a_torch_recomputation(encoded):
  """Each tap is taken at the right place (the finer levels before their downsampling, the
  coarsest after its first block) and holds the right values."""
  _, image, variables, features = encoded
  assert [None if f is None else f.shape for f in features.levels] == [
      (2, 32, 32, 32), (2, 16, 16, 32), None]
  assert features.coarsest_first_block.shape == (2, 8, 8, 64)
  assert features.output.shape == (2, 8, 8, 64)
  params = ref.randomise_norms(variables["params"], np.random.default_rng(0))
  encoder = Encoder(out_channels=64, **KW)
  features = encoder.apply({"params": params}, image)
  levels, coarsest_first, output = _torch_encoder(params, image)
  for mine, theirs in zip(features.levels[:-1], levels):
    assert ref.relative_error(mine, theirs) < REL_TOL
  assert ref.relative_error(features.coarsest_first_block, coarsest_first) < REL_TOL
  assert ref.relative_error(features.output, output) < REL_TOL


def test_early_stop_returns_the_same_taps(encoded):
  encoder, image, variables, full = encoded
  early = encoder.apply(variables, image, stop_after_coarsest_first_block=True)
  assert early.output is None
  for a, b in zip(early.levels[:-1], full.levels[:-1]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(np.asarray(early.coarsest_first_block),
                                np.asarray(full.coarsest_first_block))


def _torch_decoder(params, x, skips, num_levels=3, num_res_blocks=2, attention_levels=(2,)):
  """The VQGAN decoder with fusion in float64 PyTorch: conv, middle section, then per
  level from the coarsest residual blocks, the skip of a finer level fused right after
  its first block (before attention), upsampling; norm + conv to RGB."""
  x = ref.conv(params["conv_in"], ref.nchw(x), padding=1)
  x = ref.vqgan_res_block(params["mid_block_1"], x)
  x = ref.vqgan_attn_block(params["mid_attn"], x)
  x = ref.vqgan_res_block(params["mid_block_2"], x)
  for step, level in enumerate(reversed(range(num_levels))):
    for block in range(num_res_blocks):
      x = ref.vqgan_res_block(params[f"up_{level}_block_{block}"], x)
      if block == 0 and step > 0 and skips is not None:
        x = ref.sft_fusion(params[f"fusion_{level}"], ref.nchw(skips[step - 1]), x)
      if level in attention_levels:
        x = ref.vqgan_attn_block(params[f"up_{level}_attn_{block}"], x)
    if level != 0:
      x = ref.vqgan_upsample(params[f"upsample_{level}"], x)
  return ref.nhwc(ref.conv(params["conv_out"], ref.group_norm(params["norm_out"], x), padding=1))


def test_decoder_fuses_every_finer_skip():
  decoder = Decoder(out_channels=3, **KW)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 8, 64))
  skips = [jax.random.normal(jax.random.PRNGKey(i), (1, 8 * 2**i, 8 * 2**i, c))
           for i, c in ((1, 32), (2, 32))]
  variables = decoder.init(jax.random.PRNGKey(3), x, skips)
  assert set(variables["params"]) >= {"fusion_1", "fusion_0"}
  params = ref.randomise_norms(variables["params"], np.random.default_rng(1))
  plain = decoder.apply({"params": params}, x, None)
  fused = decoder.apply({"params": params}, x, skips)
  assert plain.shape == fused.shape == (1, 32, 32, 3)
  # Against the re-computation, with and without the skips: the fusion blocks sit where
  # the official model fuses, and the low-resolution branch skips them.
  assert ref.relative_error(fused, _torch_decoder(params, x, skips)) < REL_TOL
  assert ref.relative_error(plain, _torch_decoder(params, x, None)) < REL_TOL
  assert ref.relative_error(plain, fused) > 0.01
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
