"""Official generator (``AppMotionCompFormer``) and discriminator weights -> Flax variables.

The official autoencoder keeps its layers in flat ``blocks`` lists; the index of each
layer follows from the same construction rule as :class:`~mcc_jax.models.vqgan_encoder.
Encoder` and :class:`~mcc_jax.models.vqgan_decoder.Decoder`, which is replayed here to
name them. Everything else maps by name. Multi-head attention keeps q, k and v in one
packed ``in_proj_weight`` that is split here.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mcc_jax.convert.state_dict import StateDictMapper, Tree
from mcc_jax.models.generator import Generator


def _res_block(m: StateDictMapper, name: str) -> Tree:
  out = {"norm1": m.norm(f"{name}.norm1"), "conv1": m.conv(f"{name}.conv1"),
         "norm2": m.norm(f"{name}.norm2"), "conv2": m.conv(f"{name}.conv2")}
  if m.has(f"{name}.conv_out.weight"):
    out["shortcut"] = m.conv(f"{name}.conv_out")
  return out


def _attn_block(m: StateDictMapper, name: str) -> Tree:
  return {"norm": m.norm(f"{name}.norm"), "q": m.conv(f"{name}.q"), "k": m.conv(f"{name}.k"),
          "v": m.conv(f"{name}.v"), "proj_out": m.conv(f"{name}.proj_out")}


class _FlatBlocks:
  """Names the layers of an official flat ``blocks`` list in construction order."""

  def __init__(self, mapper: StateDictMapper, prefix: str):
    self._mapper, self._prefix, self._index = mapper, prefix, 0
    self.tree: Tree = {}

  def take(self, our_name: str, build) -> None:
    """Maps the next block with ``build(mapper, torch_name)`` onto ``our_name``."""
    self.tree[our_name] = build(self._mapper, f"{self._prefix}.{self._index}")
    self._index += 1


_conv = lambda m, n: m.conv(n)
_norm = lambda m, n: m.norm(n)
_resample = lambda m, n: {"conv": m.conv(f"{n}.conv")}


def _encoder(m: StateDictMapper, g: Generator) -> Tree:
  blocks = _FlatBlocks(m, "encoder.blocks")
  blocks.take("conv_in", _conv)
  for level in range(len(g.ch_mult)):
    for block in range(g.num_res_blocks):
      blocks.take(f"down_{level}_block_{block}", _res_block)
      if level in g.attention_levels:
        blocks.take(f"down_{level}_attn_{block}", _attn_block)
    if level != len(g.ch_mult) - 1:
      blocks.take(f"downsample_{level}", _resample)
  blocks.take("mid_block_1", _res_block)
  blocks.take("mid_attn", _attn_block)
  blocks.take("mid_block_2", _res_block)
  blocks.take("norm_out", _norm)
  blocks.take("conv_out", _conv)
  return blocks.tree


def _sft(m: StateDictMapper, resolution: int) -> Tree:
  sft = f"fuse_convs_dict.{resolution}"
  branch = lambda n: {"conv1": m.conv(f"{sft}.{n}.0"), "conv2": m.conv(f"{sft}.{n}.2")}
  return {"encode": _res_block(m, f"{sft}.encode_enc"), "scale": branch("scale"),
          "shift": branch("shift"), "feature_conv": m.conv(f"fuse_ms_dict.{resolution}")}


def _decoder(m: StateDictMapper, g: Generator) -> Tree:
  blocks = _FlatBlocks(m, "generator.blocks")
  blocks.take("conv_in", _conv)
  blocks.take("mid_block_1", _res_block)
  blocks.take("mid_attn", _attn_block)
  blocks.take("mid_block_2", _res_block)
  for step, level in enumerate(reversed(range(len(g.ch_mult)))):
    for block in range(g.num_res_blocks):
      blocks.take(f"up_{level}_block_{block}", _res_block)
      if level in g.attention_levels:
        blocks.take(f"up_{level}_attn_{block}", _attn_block)
    if level != 0:
      blocks.take(f"upsample_{level}", _resample)
    if step > 0:
      blocks.tree[f"fusion_{level}"] = _sft(m, g.image_size // 2**level)
  blocks.take("norm_out", _norm)
  blocks.take("conv_out", _conv)
  return blocks.tree


def _attention(m: StateDictMapper, name: str, width: int) -> Tree:
  packed = m.take(f"{name}.in_proj_weight", (3 * width, width))
  packed_bias = m.take(f"{name}.in_proj_bias", (3 * width,))
  out = {}
  for part, proj in enumerate(("q_proj", "k_proj", "v_proj")):
    rows = slice(part * width, (part + 1) * width)
    out[proj] = {"kernel": packed[rows].T, "bias": packed_bias[rows]}
  out["out_proj"] = m.dense(f"{name}.out_proj")
  return out


def _transformer_layer(m: StateDictMapper, name: str, width: int) -> Tree:
  return {"self_attn": _attention(m, f"{name}.self_attn", width),
          "cross_attn": _attention(m, f"{name}.cross_attn", width),
          "norm1": m.norm(f"{name}.norm1"), "norm2": m.norm(f"{name}.norm2"),
          "norm3": m.norm(f"{name}.norm3"), "ffn_conv1": m.conv(f"{name}.conv1"),
          "ffn_conv2": m.conv(f"{name}.conv2")}


def _motion_compensation(m: StateDictMapper, g: Generator) -> Tree:
  d = g.motion_code_dim
  resolutions = [g.image_size // 2**(g.num_scales - 1 - s) for s in range(g.num_scales)]
  out = {
      "codebook": {"codebook": m.take("quantize_motion.embedding.weight")},
      "position_embedding": m.take("position_emb_motion"),
      "flow_encoder": {"conv": m.conv("motion_emb.0"),
                       "downsample": {"conv": m.conv("motion_emb.1.conv")},
                       "block": _res_block(m, "motion_emb.2")},
      "flow_decoder": {"upsample": {"conv": m.conv("to_motion.0.conv")},
                       "block": _res_block(m, "to_motion.1"),
                       "norm": m.norm("to_motion.2"), "conv": m.conv("to_motion.3")},
      "keypoint_query_conv": m.conv("driving_kp_enc"),
      "query_fuse_conv": m.conv("motion_query_enc_1"),
      "query_with_flow_conv": m.conv("motion_query_enc_2"),
      "motion_encoder": {"motion_conv1": m.conv("BasicMotionEncoder.convc1"),
                         "motion_conv2": m.conv("BasicMotionEncoder.convc2"),
                         "flow_conv1": m.conv("BasicMotionEncoder.convf1"),
                         "flow_conv2": m.conv("BasicMotionEncoder.convf2"),
                         "fuse_conv": m.conv("BasicMotionEncoder.conv")},
      "flow_refiner": {"context_conv": m.conv("refine.convc1"),
                       "flow_conv1": m.conv("refine.conv1"), "flow_conv2": m.conv("refine.conv2"),
                       "occlusion_conv1": m.conv("refine.convo1"),
                       "occlusion_conv2": m.conv("refine.convo2")},
  }
  for j in range(g.motion_layers):
    out[f"layers_{j}"] = _transformer_layer(m, f"motion_block.{j}", d)
  for scale in g.motion_scales:
    out[f"source_query_convs_{scale}"] = m.conv(f"warped_source_enc_{resolutions[scale]}")
    out[f"context_convs_{scale}"] = m.conv(f"to_context.{scale}")
  return out


def _appearance_compensation(m: StateDictMapper, g: Generator) -> Tree:
  d = g.appearance_code_dim
  resolutions = [g.image_size // 2**(g.num_scales - 1 - s) for s in range(g.num_scales)]
  out = {"codebook": {"codebook": m.take("quantize_app.embedding.weight")},
         "position_embedding": m.take("position_emb_app")}
  for j in range(g.appearance_layers):
    out[f"layers_{j}"] = _transformer_layer(m, f"app_block.{j}", d)
  for scale in g.appearance_scales:
    res = resolutions[scale]
    if scale == 0:  # a 1x1 convolution on the full map: the p = 1 window projection
      out["embeddings_0"] = m.conv1x1_as_dense(f"app_feat_emb_{res}")
      out["unembeddings_0"] = m.conv1x1_as_dense(f"to_app_feat_{res}")
    else:
      out[f"embeddings_{scale}"] = m.dense(f"app_feat_emb_{res}.1")
      out[f"unembeddings_{scale}"] = m.dense(f"to_app_feat_{res}.0")
  return out


def convert_generator(state_dict: Mapping[str, Any], generator: Generator) -> Tree:
  """Maps an official ``AppMotionCompFormer`` state dict onto ``generator``'s params.

  Args:
    state_dict: tensor name -> array (a ``module.`` prefix from DataParallel is removed).
    generator: the Flax generator the weights are for (its configuration decides the
      layer indices).

  Returns:
    ``{'params': ...}`` for ``generator.apply``.

  Raises:
    ConversionError: a tensor is missing, has the wrong shape, or is left unmapped.
  """
  state = {k[len("module."):] if k.startswith("module.") else k: np.asarray(v)
           for k, v in state_dict.items()}
  m = StateDictMapper(state)
  params = {"encoder": _encoder(m, generator), "decoder": _decoder(m, generator)}
  if generator.motion_scales:
    params["motion_compensation"] = _motion_compensation(m, generator)
  if generator.appearance_scales:
    params["appearance_compensation"] = _appearance_compensation(m, generator)
  m.finish()
  return {"params": params}


def convert_discriminator(state_dict: Mapping[str, Any], num_layers: int = 4) -> Tree:
  """Maps an official ``VQGANDiscriminator`` state dict onto
  :class:`~mcc_jax.models.discriminator.PatchDiscriminator` variables.

  Args:
    state_dict: tensor name -> array (``main.<i>.*`` names; ``module.`` prefix removed).
    num_layers: the discriminator's ``num_layers``.

  Returns:
    ``{'params': ..., 'batch_stats': ...}``.
  """
  state = {k[len("module."):] if k.startswith("module.") else k: np.asarray(v)
           for k, v in state_dict.items()}
  m = StateDictMapper(state)
  params = {"conv_0": m.conv("main.0")}
  stats = {}
  index = 2  # main.0 conv, main.1 LeakyReLU
  for n in range(1, num_layers + 1):
    params[f"conv_{n}"] = m.conv(f"main.{index}", bias=False)
    params[f"norm_{n}"], stats[f"norm_{n}"] = m.batch_norm(f"main.{index + 1}")
    index += 3  # conv, BatchNorm, LeakyReLU
  params[f"conv_{num_layers + 1}"] = m.conv(f"main.{index}")
  m.finish()
  return {"params": params, "batch_stats": stats}
