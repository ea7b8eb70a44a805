"""MultiHeadAttention and the codebook transformer layer against PyTorch references."""

import contextlib
import io
import re

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from jax.ad_checkpoint import print_saved_residuals

from mcc_jax.models.attention import MultiHeadAttention
from mcc_jax.models.codebook_transformer import CodebookTransformerLayer


def _torch_mha_params(mha: torch.nn.MultiheadAttention, width: int):
  w, b = mha.in_proj_weight.detach().numpy(), mha.in_proj_bias.detach().numpy()
  params = {}
  for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
    params[name] = {"kernel": w[i * width:(i + 1) * width].T, "bias": b[i * width:(i + 1) * width]}
  params["out_proj"] = {"kernel": mha.out_proj.weight.detach().numpy().T,
                        "bias": mha.out_proj.bias.detach().numpy()}
  return params


def test_attention_matches_torch_multihead_attention_with_key_mask():
  torch.manual_seed(0)
  width, heads = 32, 8
  mha = torch.nn.MultiheadAttention(width, heads)
  rng = np.random.default_rng(0)
  query = rng.normal(size=(2, 10, width)).astype(np.float32)
  key = rng.normal(size=(2, 7, width)).astype(np.float32)
  value = rng.normal(size=(2, 7, width)).astype(np.float32)
  mask = np.zeros((2, 7), bool)
  mask[0, [1, 4]] = True
  expected = mha(torch.from_numpy(query).transpose(0, 1), torch.from_numpy(key).transpose(0, 1),
                 torch.from_numpy(value).transpose(0, 1),
                 key_padding_mask=torch.from_numpy(mask))[0].transpose(0, 1).detach().numpy()
  got = MultiHeadAttention(heads).apply({"params": _torch_mha_params(mha, width)},
                                        jnp.asarray(query), jnp.asarray(key), jnp.asarray(value),
                                        jnp.asarray(mask))
  np.testing.assert_allclose(np.asarray(got), expected, atol=2e-5)

  # Keys shared by the batch (codebook rows) give the same result as repeating them.
  shared = MultiHeadAttention(heads).apply({"params": _torch_mha_params(mha, width)},
                                           jnp.asarray(query), jnp.asarray(key[0]),
                                           jnp.asarray(value[0]))
  repeated = MultiHeadAttention(heads).apply({"params": _torch_mha_params(mha, width)},
                                             jnp.asarray(query), jnp.asarray(key[[0, 0]]),
                                             jnp.asarray(value[[0, 0]]))
  np.testing.assert_allclose(np.asarray(shared), np.asarray(repeated), atol=1e-6)


def test_fully_masked_rows_attend_uniformly():
  """Where PyTorch returns NaN, every query of a fully masked row gets the plain mean of
  the projected values (then the output projection); the other batch row is unaffected."""
  module = MultiHeadAttention(2)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 8))
  variables = module.init(jax.random.PRNGKey(0), x, x, x)
  mask = jnp.zeros((2, 4), bool).at[0].set(True)
  out = np.asarray(module.apply(variables, x, x, x, mask))
  p = jax.tree.map(np.asarray, variables["params"])
  values = np.asarray(x[0]) @ p["v_proj"]["kernel"] + p["v_proj"]["bias"]
  uniform = values.mean(axis=0) @ p["out_proj"]["kernel"] + p["out_proj"]["bias"]
  np.testing.assert_allclose(out[0], np.broadcast_to(uniform, (4, 8)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out[1], np.asarray(module.apply(variables, x[1:], x[1:], x[1:]))[0],
                             rtol=1e-5, atol=1e-6)


def _torch_layer_reference(params, tokens, codes, position, key_mask, heads):
  """The layer written with torch primitives: pre-norm self-attn, cross-attn, conv FFN."""
  width = tokens.shape[-1]
  b, g = tokens.shape[0], tokens.shape[1]

  def mha(p, q, k, v, mask=None):
    module = torch.nn.MultiheadAttention(width, heads)
    with torch.no_grad():
      module.in_proj_weight.copy_(torch.from_numpy(np.concatenate(
          [p[n]["kernel"].T for n in ("q_proj", "k_proj", "v_proj")])))
      module.in_proj_bias.copy_(torch.from_numpy(np.concatenate(
          [p[n]["bias"] for n in ("q_proj", "k_proj", "v_proj")])))
      module.out_proj.weight.copy_(torch.from_numpy(p["out_proj"]["kernel"].T))
      module.out_proj.bias.copy_(torch.from_numpy(p["out_proj"]["bias"]))
    return module(q, k, v, key_padding_mask=mask)[0]

  def norm(p, x):
    return F.layer_norm(x, (width,), torch.from_numpy(p["scale"]), torch.from_numpy(p["bias"]))

  def conv(p, x):
    return F.conv2d(x, torch.from_numpy(p["kernel"]).permute(3, 2, 0, 1),
                    torch.from_numpy(p["bias"]), padding=1)

  x = torch.from_numpy(tokens).reshape(b, g * g, width).transpose(0, 1)  # (T, B, D)
  pos = torch.from_numpy(position)[:, None, :]
  c = torch.from_numpy(codes)[:, None, :].repeat(1, b, 1)
  with torch.no_grad():
    h = norm(params["norm1"], x)
    x = x + mha(params["self_attn"], h + pos, h + pos, h, torch.from_numpy(key_mask))
    h = norm(params["norm2"], x)
    x = x + mha(params["cross_attn"], h + pos, c, c)
    h = norm(params["norm3"], x).permute(1, 2, 0).reshape(b, width, g, g)
    h = conv(params["ffn_conv2"], F.gelu(conv(params["ffn_conv1"], h)))
    x = x + h.reshape(b, width, g * g).permute(2, 0, 1)
  return x.transpose(0, 1).reshape(b, g, g, width).numpy()


def test_codebook_transformer_layer_matches_torch_reference():
  rng = np.random.default_rng(1)
  width, heads, g = 32, 4, 6
  tokens = rng.normal(size=(2, g, g, width)).astype(np.float32)
  codes = rng.normal(size=(20, width)).astype(np.float32)
  position = rng.normal(size=(g * g, width)).astype(np.float32)
  key_mask = rng.uniform(size=(2, g * g)) < 0.3
  layer = CodebookTransformerLayer(heads)
  variables = layer.init(jax.random.PRNGKey(0), tokens, codes, position, key_mask)
  params = jax.tree.map(np.asarray, variables["params"])
  # Non-trivial norm parameters so that scale/bias mix-ups would show.
  for name in ("norm1", "norm2", "norm3"):
    params[name] = {"scale": rng.uniform(0.5, 1.5, width).astype(np.float32),
                    "bias": rng.normal(size=width).astype(np.float32)}
  got = layer.apply({"params": params}, tokens, codes, position, key_mask)
  expected = _torch_layer_reference(params, tokens, codes, position, key_mask, heads)
  np.testing.assert_allclose(np.asarray(got), expected, atol=5e-5)


def _saved_residual_shapes(fn, *args):
  """The shapes of the arrays reverse-mode differentiation of ``fn`` keeps, read from
  jax's own report (one line per residual, e.g. ``f32[2,4,8,6] output of exp ...``)."""
  report = io.StringIO()
  with contextlib.redirect_stdout(report):
    print_saved_residuals(fn, *args)
  shapes = [tuple(int(n) for n in m.split(",") if n)
            for m in re.findall(r"^\w+\[([\d,]*)\]", report.getvalue(), re.M)]
  assert shapes, report.getvalue()
  return shapes


def test_attention_gradient_matches_torch_and_keeps_no_weights():
  """The gradient with respect to inputs and parameters matches PyTorch autograd, with
  and without query chunks; with recompute_weights the backward pass keeps no
  (B, H, Tq, Tk) weights, without it it does."""
  torch.manual_seed(1)
  width, heads, tq, tk = 16, 4, 8, 6
  mha = torch.nn.MultiheadAttention(width, heads)
  rng = np.random.default_rng(1)
  query = rng.normal(size=(2, tq, width)).astype(np.float32)
  key = rng.normal(size=(2, tk, width)).astype(np.float32)
  weights_out = rng.normal(size=(2, tq, width)).astype(np.float32)
  tq_, tk_ = torch.from_numpy(query).requires_grad_(), torch.from_numpy(key).requires_grad_()
  out = mha(tq_.transpose(0, 1), tk_.transpose(0, 1), tk_.transpose(0, 1))[0].transpose(0, 1)
  (out * torch.from_numpy(weights_out)).sum().backward()
  params = _torch_mha_params(mha, width)

  for chunk in (0, 4):
    for recompute in (True, False):
      module = MultiHeadAttention(heads, query_chunk_size=chunk, recompute_weights=recompute)

      def loss(p, q, k):
        return jnp.sum(module.apply({"params": p}, q, k, k) * weights_out)

      grads = jax.grad(loss, argnums=(0, 1, 2))(params, jnp.asarray(query), jnp.asarray(key))
      np.testing.assert_allclose(np.asarray(grads[1]), tq_.grad.numpy(), atol=2e-5)
      np.testing.assert_allclose(np.asarray(grads[2]), tk_.grad.numpy(), atol=2e-5)
      np.testing.assert_allclose(np.asarray(grads[0]["q_proj"]["kernel"]).T,
                                 mha.in_proj_weight.grad.numpy()[:width], atol=2e-5)
      np.testing.assert_allclose(np.asarray(grads[0]["out_proj"]["kernel"]).T,
                                 mha.out_proj.weight.grad.numpy(), atol=2e-5)

      weights_shape = (2, heads, chunk or tq, tk)
      shapes = _saved_residual_shapes(loss, params, jnp.asarray(query), jnp.asarray(key))
      kept = [s for s in shapes if s[-len(weights_shape):] == weights_shape]
      assert bool(kept) != recompute, (chunk, recompute, shapes)
