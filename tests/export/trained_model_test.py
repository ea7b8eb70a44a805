"""The ONNX export of a trained model: onnxruntime gives JAX's frames.

Random weights (the other tests) leave parts of a network in ranges training never
visits, and training moves others (BatchNorm statistics, used codebook entries, sharp
occlusion maps) where rounding could matter more. This test exports a model that was
trained: the one named by ``MCC_JAX_TRAINED_MODEL`` (a training run's workdir, or a
model checkpoint). ``bash .ci/run`` sets it to the workdir of the README's main job,
which trains the sample configuration before the tests run; elsewhere the test is
skipped unless it is set, and says so.
"""

import os
import pathlib

import numpy as np
import pytest

from mcc_jax import inference
from mcc_jax import media
from mcc_jax.data_pipelines.sources import sample as sample_clip
from mcc_jax.export.exporter import export_model
from mcc_jax.export.onnx_animator import OnnxAnimator

TRAINED = os.environ.get("MCC_JAX_TRAINED_MODEL")


def _load(path: pathlib.Path):
  if (path / "checkpoints").is_dir():
    return inference.load_model(workdir=path)
  return inference.load_model(checkpoint=path)


def _frames(batches):
  batches = list(batches)
  return (np.concatenate([b.frames for b in batches]),
          np.concatenate([b.flow for b in batches]),
          np.concatenate([b.occlusion for b in batches]))


@pytest.mark.skipif(not TRAINED, reason="set MCC_JAX_TRAINED_MODEL to a trained workdir or "
                    "checkpoint (bash .ci/run: the README's main job)")
def test_a_trained_models_onnx_frames_equal_jaxs(tmp_path):
  model = _load(pathlib.Path(TRAINED))
  export_model(model, tmp_path / "export", "onnx")
  size = model.image_size
  # Frames the model was not trained on at these positions: the clip's second half.
  clip = sample_clip.decode_clip()
  frames = np.stack([media.crop_and_resize(f, None, size) for f in clip[60::8][:7]])
  source = media.crop_and_resize(clip[5], None, size)
  jax_animator, onnx_animator = inference.Animator(model), OnnxAnimator(tmp_path / "export")
  for relative in (True, False):
    options = {"relative": relative, "anchor_index": 2, "batch_size": 4, "with_flow": True}
    expected = _frames(jax_animator.animate(source, frames, **options))
    found = _frames(onnx_animator.animate(source, frames, **options))
    difference = np.abs(found[0].astype(int) - expected[0])
    # Measured: mean 0.00002-0.00013 levels of 255, max 1 (the sample run of the main
    # job, 60 steps; a 64x64 model trained 1,369 steps on the procedural heads); flow
    # 4.6e-6 and occlusion 1.1e-6 at most.
    print(f"relative={relative}: mean {difference.mean():.5f} max {difference.max()} levels, "
          f"flow {np.abs(found[1] - expected[1]).max():.2e}, occlusion "
          f"{np.abs(found[2] - expected[2]).max():.2e}")
    assert difference.mean() < 0.01 and difference.max() <= 1, (relative, difference.max())
    # Flow and occlusion to float32 rounding through the network (random-weight
    # tolerances of tests/export/onnx_export_test.py, times ten for trained ranges).
    np.testing.assert_allclose(found[1], expected[1], rtol=0, atol=3e-5)
    np.testing.assert_allclose(found[2], expected[2], rtol=0, atol=2e-5)
