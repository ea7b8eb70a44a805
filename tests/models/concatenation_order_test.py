"""Every fused channel concatenation keeps the official order.

A concatenation feeding a convolution can be written in either order and still run:
the halves often have equal widths, and the convolution learns whichever layout it is
given. But the checkpoint converter copies the official kernels, whose input channels
follow the official ``torch.cat`` order, so a swapped concatenation silently ruins a
converted model. Each test below recomputes a module's output a second way in which
the order is explicit -- a float64 PyTorch re-computation with the official
``torch.cat`` order, or the fused kernel split into its two input halves and applied
to the two halves separately -- and fails if the module's halves are swapped.

| module (line)                              | official order          |
| MotionEncoder fuse_conv input               | [cor, flo]              |
| MotionEncoder output                        | [out, flow]             |
| FlowRefiner joint input                     | [motion, context]       |
| SFTFusion encode input                      | [enc, dec]              |
| MCC query_fuse_conv input                   | [warped source, kp]     |
| MCC query_with_flow_conv input              | [motion feature, query] |
| DenseMotionNetwork hourglass input          | per motion [heatmap, warped source] |
|   (tested in dense_motion_test.py, test_hourglass_sees_heatmap_then_warped_source_per_motion) |
| Hourglass decoder outputs                   | [up block output, skip] |
"""

import functools

import flax.linen as nn
import jax
import numpy as np
import torch
import torch.nn.functional as F

from mcc_jax.models.flow_refiner import FlowRefiner, MotionEncoder
from mcc_jax.models.hourglass import Hourglass
from mcc_jax.models.motion_compensation import MotionCodebookCompensation
from mcc_jax.models.sft_fusion import SFTFusion
from tests.models import torch_reference as ref
from tests.models.model_testing import identity_grid

# float32 against a float64 reference: measured relative L2 errors are below 1e-6; a
# swapped concatenation gives errors of 0.2 to 4.
REL_TOL = 1e-5


def _params(module, *args, seed=0, **kwargs):
  return jax.tree.map(np.asarray, module.init(jax.random.PRNGKey(seed), *args, **kwargs)["params"])


def _normal(seed, shape, scale=1.0):
  return (scale * np.random.default_rng(seed).normal(size=shape)).astype(np.float32)


def _torch_motion_encoder(params, flow, motion_feature):
  """MRFA's motion encoder with the official concatenation order."""
  relu = F.relu
  cor = relu(ref.conv(params["motion_conv1"], ref.nchw(motion_feature)))
  cor = relu(ref.conv(params["motion_conv2"], cor, padding=1))
  flo = relu(ref.conv(params["flow_conv1"], ref.nchw(flow), padding=3))
  flo = relu(ref.conv(params["flow_conv2"], flo, padding=1))
  out = relu(ref.conv(params["fuse_conv"], torch.cat([cor, flo], dim=1), padding=1))
  return out, torch.cat([out, ref.nchw(flow)], dim=1)


def test_motion_encoder_fuses_the_motion_feature_before_the_flow():
  """flow_refiner.py: ``fuse_conv`` must read [cor (96), flo (64)], not [flo, cor]."""
  flow, feature = _normal(0, (1, 12, 12, 2), 3.0), _normal(1, (1, 12, 12, 32))
  encoder = MotionEncoder()
  params = _params(encoder, flow, feature)
  got = np.asarray(encoder.apply({"params": params}, flow, feature))
  out, _ = _torch_motion_encoder(params, flow, feature)
  assert ref.relative_error(got[..., :126], ref.nhwc(out)) < REL_TOL


def test_motion_encoder_appends_the_flow_after_the_encoded_channels():
  """flow_refiner.py: the output is [out (126), flow (2)], the 128 channels the flow
  refiner's first convolutions were trained on."""
  flow, feature = _normal(2, (1, 12, 12, 2), 3.0), _normal(3, (1, 12, 12, 32))
  encoder = MotionEncoder()
  params = _params(encoder, flow, feature)
  got = np.asarray(encoder.apply({"params": params}, flow, feature))
  _, expected = _torch_motion_encoder(params, flow, feature)
  assert got.shape == (1, 12, 12, 128)
  assert ref.relative_error(got, ref.nhwc(expected)) < REL_TOL


def test_flow_refiner_reads_the_motion_before_the_context():
  """flow_refiner.py: both heads read [motion (128), relu(context_conv(context)) (128)]."""
  motion, context = _normal(4, (1, 12, 12, 128)), _normal(5, (1, 12, 12, 192))
  refiner = FlowRefiner()
  params = _params(refiner, motion, context)
  flow, occlusion = refiner.apply({"params": params}, motion, context)

  c = F.relu(ref.conv(params["context_conv"], ref.nchw(context), padding=1))
  joint = torch.cat([ref.nchw(motion), c], dim=1)
  head = lambda first, second: ref.conv(
      params[second], F.relu(ref.conv(params[first], joint, padding=1)), padding=1)
  assert ref.relative_error(flow, ref.nhwc(head("flow_conv1", "flow_conv2"))) < REL_TOL
  assert ref.relative_error(occlusion,
                            ref.nhwc(head("occlusion_conv1", "occlusion_conv2"))) < REL_TOL


def test_sft_fusion_encodes_the_encoder_feature_before_the_decoder_activation():
  """sft_fusion.py: the SFT residual block reads [enc, dec] (official Fuse_sft_block)."""
  enc, dec = _normal(6, (1, 8, 8, 32)), _normal(7, (1, 8, 8, 32))
  block = SFTFusion()
  # Random norm parameters: the first GroupNorm then treats the two halves differently.
  params = ref.randomise_norms(_params(block, enc, dec), np.random.default_rng(8))
  got = block.apply({"params": params}, enc, dec)
  expected = ref.sft_fusion(params, ref.nchw(enc), ref.nchw(dec))  # torch.cat([enc, dec])
  assert ref.relative_error(got, ref.nhwc(expected)) < REL_TOL


def _split_kernel_conv1x1(params, first, second):
  """A 1x1 convolution of [first, second] computed as the sum of two partial convolutions,
  one per input half of the kernel: no concatenation in which to get the order wrong."""
  kernel = np.asarray(params["kernel"], np.float64)[0, 0]  # (C_in, C_out)
  n = first.shape[-1]
  return (np.asarray(first, np.float64) @ kernel[:n] + np.asarray(second, np.float64) @ kernel[n:]
          + params["bias"])


@functools.lru_cache(maxsize=None)
def _motion_compensation_intermediates():
  """Runs one motion-compensation step and records the inputs and outputs of its 1x1
  query convolutions, as computed inside the module."""
  g, f, scale = 4, 8, 1
  module = MotionCodebookCompensation(num_scales=2, grid_size=g, code_dim=32, codebook_size=8,
                                      num_layers=1, num_heads=4, num_code_scales=2)
  rng = np.random.default_rng(9)
  flow = (identity_grid(f)[None] + 0.05 * rng.normal(size=(2, f, f, 2))).astype(np.float32)
  occlusion = np.full((2, f, f, 1), 0.8, np.float32)
  feature = rng.normal(size=(2, 2 * g, 2 * g, 16)).astype(np.float32)
  keypoint_query = rng.uniform(size=(2, g, g, 32)).astype(np.float32)
  args = (scale, scale, flow, occlusion, feature, keypoint_query)
  # Compiled as whole programs: much cheaper than compiling each primitive eagerly.
  variables = jax.jit(lambda key: module.init(key, *args, train=False))(jax.random.PRNGKey(0))

  @jax.jit
  def run(variables):
    recorded = {}

    def record(next_fun, call_args, kwargs, context):
      out = next_fun(*call_args, **kwargs)
      if context.method_name == "__call__" and context.module.name in (
          "flow_encoder", f"source_query_convs_{scale}", "query_fuse_conv",
          "query_with_flow_conv"):
        recorded[context.module.name] = out
      return out

    with nn.intercept_methods(record):
      module.apply(variables, *args, train=False)
    return recorded

  recorded = jax.tree.map(np.asarray, run(variables))
  params = jax.tree.map(np.asarray, variables["params"])
  return params, keypoint_query, recorded, scale


def test_motion_query_fuses_the_warped_source_before_the_keypoints():
  """motion_compensation.py: ``query_fuse_conv`` reads [relu(source query), keypoint query]
  (official ``motion_query_enc_1(cat(warp_source_feat, driving_kp_feat))``)."""
  params, keypoint_query, recorded, scale = _motion_compensation_intermediates()
  source_query = np.maximum(recorded[f"source_query_convs_{scale}"], 0.0)
  expected = _split_kernel_conv1x1(params["query_fuse_conv"], source_query, keypoint_query)
  assert ref.relative_error(recorded["query_fuse_conv"], expected) < REL_TOL


def test_motion_tokens_fuse_the_flow_feature_before_the_query():
  """motion_compensation.py: ``query_with_flow_conv`` reads [motion feature, query]
  (official ``motion_query_enc_2(cat(m_feat, query_feat))``)."""
  params, _, recorded, _ = _motion_compensation_intermediates()
  expected = _split_kernel_conv1x1(params["query_with_flow_conv"], recorded["flow_encoder"],
                                   recorded["query_fuse_conv"])
  assert ref.relative_error(recorded["query_with_flow_conv"], expected) < REL_TOL


def test_hourglass_decoder_concatenates_its_output_before_the_skip():
  """hourglass.py: every decoder output is [up block output, encoder skip] (FOMM's
  ``torch.cat([out, skip], dim=1)``); checked against a float64 re-computation in eval
  mode with non-trivial BatchNorm statistics."""
  model = Hourglass(block_expansion=4, max_features=8, num_blocks=2)
  rng = np.random.default_rng(11)
  x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
  variables = jax.tree.map(np.asarray, model.init(jax.random.PRNGKey(0), x, train=False))
  params = ref.randomise_norms(variables["params"], rng)
  stats = jax.tree.map(lambda s: rng.uniform(0.5, 1.5, s.shape).astype(np.float32),
                       variables["batch_stats"])
  got = model.apply({"params": params, "batch_stats": stats}, x, train=False, all_outputs=True)

  def block(name, y):
    y = ref.conv(params[name]["conv"], y, padding=1)
    return F.relu(ref.batch_norm_eval(params[name]["norm"], stats[name]["norm"], y))

  skips = [ref.nchw(x)]
  for i in range(2):
    skips.append(F.avg_pool2d(block(f"down_{i}", skips[-1]), 2))
  out = skips.pop()
  expected = []
  for i in range(2):
    out = block(f"up_{i}", F.interpolate(out, scale_factor=2, mode="nearest"))
    out = torch.cat([out, skips.pop()], dim=1)
    expected.append(ref.nhwc(out))
  for mine, theirs in zip(got, expected):
    assert ref.relative_error(mine, theirs) < REL_TOL
