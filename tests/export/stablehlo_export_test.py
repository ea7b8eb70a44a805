"""StableHLO export: the serialized graphs, read back with jax.export, compute what the
model computes, at any batch size."""

import json

import numpy as np

from mcc_jax.export import manifest as manifest_lib
from mcc_jax.export.stablehlo_export import load_stablehlo_graph
from mcc_jax.inference.animation import to_model_range


def test_the_graphs_read_back_compute_what_jax_computes(tiny_stablehlo, tiny_jax_graphs,
                                                       tiny_frames):
  manifest = manifest_lib.read_manifest(tiny_stablehlo, expected_format="stablehlo")
  graphs = {name: load_stablehlo_graph(tiny_stablehlo / entry.file)
            for name, entry in manifest.graphs.items()}
  # Batch 3, as the ONNX tests (one compilation of the JAX reference for both), and
  # the keypoints alone at batch 1 as well.
  single = to_model_range(tiny_frames[:1])
  np.testing.assert_allclose(np.asarray(graphs["keypoints"](single)[0]),
                             np.asarray(tiny_jax_graphs["keypoints"](single)[0]), rtol=0,
                             atol=1e-6)
  for batch in (3,):
    images = to_model_range(tiny_frames[:batch])
    driving = to_model_range(tiny_frames[3:3 + batch])
    kp_source = graphs["keypoints"](images)
    kp_driving = graphs["keypoints"](driving)
    features = graphs["source_encoder"](images)
    cases = {"keypoints": [images], "source_encoder": [images],
             "generator": [images, *features, *kp_source, *kp_driving]}
    for name, inputs in cases.items():
      found = graphs[name](*inputs)
      expected = tiny_jax_graphs[name](*inputs)
      assert len(found) == len(expected) == len(manifest.graphs[name].outputs)
      for spec, got, want in zip(manifest.graphs[name].outputs, found, expected):
        assert got.shape[0] == batch
        # The same StableHLO compiled by the same XLA: equal up to the rounding of a
        # separately compiled program.
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=1e-6,
                                   err_msg=f"{name}.{spec.name} at batch {batch}")


def test_the_manifest_names_the_format_and_platforms(tiny_stablehlo):
  content = json.loads((tiny_stablehlo / "manifest.json").read_text())
  assert content["format"] == "stablehlo"
  assert content["format_details"]["platforms"] == ["cpu"]
  assert content["format_details"]["calling_convention_version"] >= 9
  assert [entry["file"] for entry in content["graphs"].values()] == [
      "keypoints.stablehlo", "source_encoder.stablehlo", "generator.stablehlo"]
  assert "jax2onnx" not in content["versions"]
