"""Exporting a trained model as ONNX or StableHLO graphs, and running the ONNX ones.

* :mod:`~mcc_jax.export.graphs`: the model split into the graphs a runtime calls
  (keypoints, source encoder, generator), each a function of arrays with the weights
  inside; :mod:`~mcc_jax.export.signatures`: their names, inputs and outputs.
* :mod:`~mcc_jax.export.onnx_export` (jax2onnx, with the fixes of
  :mod:`~mcc_jax.export.jax2onnx_compat`) and :mod:`~mcc_jax.export.stablehlo_export`
  (``jax.export``): one graph to one file.
* :mod:`~mcc_jax.export.manifest`: ``manifest.json``, what a runtime needs besides the
  graphs; :mod:`~mcc_jax.export.exporter`: :func:`export_model`, all of it at once.
* :mod:`~mcc_jax.export.onnx_animator`: :class:`OnnxAnimator`, the interface of
  :class:`mcc_jax.inference.Animator` over onnxruntime, with the relative motion in
  numpy (:mod:`~mcc_jax.export.keypoint_motion`).

Submodules import what they need when imported: reading a manifest imports neither JAX
nor jax2onnx; animating with onnxruntime imports neither jax2onnx nor the exporting code
(it imports JAX for two result types, ``Keypoints`` and ``AnimatedBatch``, and runs
none of it).
"""
