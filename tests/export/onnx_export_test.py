"""ONNX export: onnxruntime computes what JAX computes, graph by graph and end to end.

Tolerances: the graphs are the same float32 computation, but XLA and onnxruntime order
and fuse the operations differently (convolution algorithms, reduction order, fused
multiply-adds), so results differ in the last bits and the differences grow through the
~100 layers of the generator. Largest differences measured on the tiny model (random
weights): keypoint positions 1.8e-7, jacobians 3.6e-7, encoder features 7.6e-6 (values
up to 3), generated image 1.1e-5, flow 2.4e-7, occlusion 1.2e-7; on vox256 (random
weights) flow 5.2e-6 and occlusion 2.9e-5, frames one level of 255 at most (a value
near a rounding boundary; 0.3% of them). The tolerances below are about ten times the
measured differences, far below what a swapped keypoint set, a wrong anchor or a
transposed jacobian produces (each of which fails these tests).
"""

import json

import numpy as np
import onnxruntime
import pytest

from mcc_jax import inference
from mcc_jax.export import manifest as manifest_lib
from mcc_jax.export.graphs import model_graphs
from mcc_jax.export.onnx_animator import OnnxAnimator
from mcc_jax.inference.animation import to_model_range

TOLERANCE = {"value": 2e-6, "jacobian": 4e-6, "encoder": 1e-4, "image": 1e-4, "flow": 3e-6,
             "occlusion": 2e-6}
VOX256_TOLERANCE = {"flow": 5e-5, "occlusion": 3e-4}


def _session(directory, name):
  return onnxruntime.InferenceSession(str(directory / f"{name}.onnx"),
                                      providers=["CPUExecutionProvider"])


def _run(session, inputs):
  return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})


def _tolerance(name):
  return TOLERANCE["encoder"] if name.startswith("encoder") else TOLERANCE[name]


def _generator_inputs(jax_graphs, frames):
  """Generator inputs of three rows: three sources, each moved to another frame's
  keypoints (from the JAX graphs)."""
  sources, driving = to_model_range(frames[:3]), to_model_range(frames[3:6])
  kp_source = [np.asarray(x) for x in jax_graphs["keypoints"](sources)]
  kp_driving = [np.asarray(x) for x in jax_graphs["keypoints"](driving)]
  features = [np.asarray(x) for x in jax_graphs["source_encoder"](sources)]
  return [sources, *features, *kp_source, *kp_driving]


def test_every_graph_matches_jax_at_a_batch_size_other_than_exported(tiny_onnx, tiny_model,
                                                                    tiny_jax_graphs,
                                                                    tiny_frames):
  graphs = model_graphs(tiny_model)
  images = to_model_range(tiny_frames[:3])
  cases = {"keypoints": [images], "source_encoder": [images],
           "generator": _generator_inputs(tiny_jax_graphs, tiny_frames)}
  for name, inputs in cases.items():
    expected = [np.asarray(x) for x in tiny_jax_graphs[name](*inputs)]
    found = _run(_session(tiny_onnx, name), inputs)
    assert len(found) == len(expected) == len(graphs[name].outputs), name
    for spec, got, want in zip(graphs[name].outputs, found, expected):
      assert got.shape == want.shape and got.dtype == np.float32, (name, spec.name)
      np.testing.assert_allclose(got, want, rtol=0, atol=_tolerance(spec.name),
                                 err_msg=f"{name}.{spec.name}")


def test_the_manifest_describes_the_files(tiny_onnx, tiny_jacobian_checkpoint):
  path, config = tiny_jacobian_checkpoint
  content = json.loads((tiny_onnx / "manifest.json").read_text())
  assert content["format"] == "onnx" and content["image_size"] == 64
  assert content["num_keypoints"] == 10 and content["batch_dimension"] == "B"
  assert content["model_config"] == json.loads(config.to_json_best_effort())
  assert content["weights"] == str(path)
  from importlib import metadata
  for package in ("jax", "jax2onnx", "onnx"):
    assert content["versions"][package] == metadata.version(package)
  assert content["format_details"]["opset"] >= 17
  assert sorted(p.name for p in tiny_onnx.iterdir()) == [
      "generator.onnx", "keypoints.onnx", "manifest.json", "source_encoder.onnx"]

  graphs = content["graphs"]
  assert list(graphs) == ["keypoints", "source_encoder", "generator"]
  image = {"name": "image", "shape": ["B", 64, 64, 3], "dtype": "float32", "range": [-1.0, 1.0]}
  assert {k: graphs["keypoints"]["inputs"][0][k] for k in image} == image
  assert [(o["name"], o["shape"]) for o in graphs["keypoints"]["outputs"]] == [
      ("value", ["B", 10, 2]), ("jacobian", ["B", 10, 2, 2])]
  assert [(o["name"], o["shape"]) for o in graphs["source_encoder"]["outputs"]] == [
      ("encoder_output", ["B", 8, 8, 64]), ("encoder_level_0", ["B", 64, 64, 32]),
      ("encoder_level_1", ["B", 32, 32, 32]), ("encoder_level_2", ["B", 16, 16, 64])]
  generator = graphs["generator"]
  assert [i["name"] for i in generator["inputs"]] == [
      "source", "encoder_output", "encoder_level_0", "encoder_level_1", "encoder_level_2",
      "source_value", "source_jacobian", "driving_value", "driving_jacobian"]
  assert [(o["name"], o["shape"], o["range"]) for o in generator["outputs"]] == [
      ("image", ["B", 64, 64, 3], [-1.0, 1.0]), ("flow", ["B", 16, 16, 2], None),
      ("occlusion", ["B", 16, 16, 1], [0.0, 1.0])]
  # The files say the same: names, the symbolic batch, the other dimensions.
  for name, entry in graphs.items():
    session = _session(tiny_onnx, name)
    for specs, found in ((entry["inputs"], session.get_inputs()),
                         (entry["outputs"], session.get_outputs())):
      assert [(s["name"], s["shape"]) for s in specs] == [(f.name, f.shape) for f in found]
      assert {f.type for f in found} == {"tensor(float)"}
  assert manifest_lib.read_manifest(tiny_onnx).graphs["generator"].file == "generator.onnx"


def _frames_of(batches):
  batches = list(batches)
  return batches, np.concatenate([b.frames for b in batches])


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_onnx_animator_generates_the_jax_animators_frames(relative, tiny_onnx, tiny_model,
                                                          tiny_frames):
  jax_animator, onnx_animator = inference.Animator(tiny_model), OnnxAnimator(tiny_onnx)
  assert onnx_animator.image_size == jax_animator.image_size == 64
  assert str(tiny_onnx) in onnx_animator.description
  source = tiny_frames[7]
  # Batches of 3 over 7 frames: a short last batch; an anchor other than the first frame.
  options = {"relative": relative, "adapt_scale": True, "anchor_index": 2, "batch_size": 3,
             "with_flow": True}
  expected_batches, expected = _frames_of(jax_animator.animate(source, tiny_frames[:7],
                                                               **options))
  found_batches, found = _frames_of(onnx_animator.animate(source, tiny_frames[:7], **options))
  assert [b.start for b in found_batches] == [b.start for b in expected_batches] == [0, 3, 6]
  assert found.dtype == np.uint8 and found.shape == expected.shape == (7, 64, 64, 3)
  difference = np.abs(found.astype(int) - expected)
  assert difference.max() <= 1 and difference.mean() < 0.01
  for field in ("flow", "occlusion"):
    np.testing.assert_allclose(np.concatenate([getattr(b, field) for b in found_batches]),
                               np.concatenate([getattr(b, field) for b in expected_batches]),
                               rtol=0, atol=TOLERANCE[field], err_msg=field)
  for got, want in zip(found_batches, expected_batches):
    np.testing.assert_array_equal(got.driving, want.driving)


def test_precomputed_keypoints_and_streamed_frames_give_the_same_frames(tiny_onnx,
                                                                        tiny_frames):
  animator = OnnxAnimator(tiny_onnx)
  keypoints = animator.keypoints(iter(tiny_frames), batch_size=3)
  assert keypoints.value.shape == (8, 10, 2) and keypoints.jacobian.shape == (8, 10, 2, 2)
  one_by_one = animator.keypoints(tiny_frames, batch_size=1)
  np.testing.assert_allclose(keypoints.value, one_by_one.value, rtol=0, atol=1e-6)
  source = tiny_frames[0]
  _, from_array = _frames_of(animator.animate(source, tiny_frames, anchor_index=4,
                                              batch_size=4))
  _, from_keypoints = _frames_of(animator.animate(source, iter(tiny_frames), anchor_index=4,
                                                  batch_size=5, driving_keypoints=keypoints))
  assert np.abs(from_array.astype(int) - from_keypoints).max() <= 1
  batches = list(animator.animate(source, iter(tiny_frames), batch_size=4))
  assert [b.flow for b in batches] == [None, None]


def test_onnx_animator_refuses_what_the_jax_animator_refuses(tiny_onnx, tiny_frames):
  animator = OnnxAnimator(tiny_onnx)
  with pytest.raises(ValueError, match=r"expected \(T, 64, 64, 3\) frames"):
    next(animator.animate(tiny_frames[0, :32], tiny_frames))
  with pytest.raises(ValueError, match="anchor_index 9 is outside the 8 driving frames"):
    next(animator.animate(tiny_frames[0], tiny_frames, anchor_index=9))
  with pytest.raises(ValueError, match="streamed driving frames can only be anchored"):
    next(animator.animate(tiny_frames[0], iter(tiny_frames), anchor_index=1))
  with pytest.raises(ValueError, match="no driving frames"):
    list(animator.animate(tiny_frames[0], iter([])))


def test_a_directory_that_is_not_an_onnx_export_is_named(tmp_path, tiny_stablehlo):
  with pytest.raises(manifest_lib.ExportedModelError, match="no such directory"):
    OnnxAnimator(tmp_path / "absent")
  with pytest.raises(manifest_lib.ExportedModelError,
                     match=f"^{tmp_path}: no manifest.json "):
    OnnxAnimator(tmp_path)
  with pytest.raises(manifest_lib.ExportedModelError,
                     match=r"holds a stablehlo export; expected onnx \(export with --format "
                     "onnx\\)"):
    OnnxAnimator(tiny_stablehlo)


def test_a_graph_file_missing_is_named(tiny_onnx, tmp_path):
  for path in tiny_onnx.iterdir():
    if path.name != "generator.onnx":
      (tmp_path / path.name).symlink_to(path)
  with pytest.raises(manifest_lib.ExportedModelError,
                     match="generator.onnx: missing \\(the generator graph's file named in "
                     "manifest.json\\)"):
    OnnxAnimator(tmp_path)


@pytest.mark.slow
def test_vox256_onnx_animator_generates_the_jax_animators_frames(vox256_onnx, vox256_model):
  from mcc_jax.data_pipelines.sources import sample as sample_clip
  from mcc_jax import media

  clip = sample_clip.decode_clip()
  driving = media.crop_and_resize(clip[20], None, 256)[None]
  source = media.crop_and_resize(clip[90], None, 256)
  # One frame, absolute motion: the smallest run in which the source and driving
  # keypoints differ (relative motion at its anchor moves nothing).
  options = {"relative": False, "batch_size": 1, "with_flow": True}
  (expected,) = inference.Animator(vox256_model).animate(source, driving, **options)
  (found,) = OnnxAnimator(vox256_onnx).animate(source, driving, **options)
  difference = np.abs(found.frames.astype(int) - expected.frames)
  assert difference.max() <= 1 and difference.mean() < 0.01
  assert expected.frames.std() > 10  # A picture, not a constant.
  for field in ("flow", "occlusion"):
    np.testing.assert_allclose(getattr(found, field), getattr(expected, field), rtol=0,
                               atol=VOX256_TOLERANCE[field], err_msg=field)
  manifest = manifest_lib.read_manifest(vox256_onnx, expected_format="onnx")
  assert manifest.image_size == 256 and manifest.num_keypoints == 15
  assert manifest.weights == "random weights (seed 0)"
