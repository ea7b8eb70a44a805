"""Exporting a loaded model: its three graphs in one format, and the manifest.

The output directory appears only when complete: everything is written to a sibling
``<name>.partial`` directory first, renamed at the end, removed on failure.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import time
from collections.abc import Callable
from importlib import metadata

import mcc_jax
from mcc_jax.export.graphs import model_graphs
from mcc_jax.export.manifest import FORMATS
from mcc_jax.export.manifest import GraphEntry
from mcc_jax.export.manifest import Manifest
from mcc_jax.export.manifest import write_manifest
from mcc_jax.inference.model_loading import LoadedModel

_REPORTED_PACKAGES = {"onnx": ("jax", "jaxlib", "flax", "jax2onnx", "onnx"),
                      "stablehlo": ("jax", "jaxlib", "flax")}


def _versions(fmt: str) -> dict[str, str]:
  versions = {"mcc_jax": mcc_jax.__version__}
  for package in _REPORTED_PACKAGES[fmt]:
    try:
      versions[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      versions[package] = "not installed"
  return versions


def _graph_writer(fmt: str):
  if fmt == "onnx":
    from mcc_jax.export.onnx_export import export_onnx_graph  # pylint: disable=import-outside-toplevel
    return export_onnx_graph
  from mcc_jax.export.stablehlo_export import export_stablehlo_graph  # pylint: disable=import-outside-toplevel
  return export_stablehlo_graph


def export_model(model: LoadedModel, directory: str | pathlib.Path, fmt: str, *,
                 log: Callable[[str], None] = print) -> Manifest:
  """Writes the model's graphs (:mod:`mcc_jax.export.graphs`) and ``manifest.json``.

  Args:
    model: the networks and weights (:func:`mcc_jax.inference.load_model`).
    directory: the directory to create; it must not exist, or be empty.
    fmt: ``'onnx'`` or ``'stablehlo'``.
    log: receives one line per graph written (file, size, seconds).

  Returns:
    The :class:`~mcc_jax.export.manifest.Manifest` written.

  Raises:
    ValueError: an unknown format.
    FileExistsError: ``directory`` exists and is not empty.
  """
  if fmt not in FORMATS:
    raise ValueError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
  directory = pathlib.Path(directory)
  if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
    raise FileExistsError(f"{directory}: already exists and is not an empty directory "
                          f"(choose a new output directory)")
  partial = directory.with_name(directory.name + ".partial")
  if partial.exists():
    shutil.rmtree(partial)
  partial.mkdir(parents=True)
  try:
    write_graph = _graph_writer(fmt)
    entries, details = {}, {}
    for graph in model_graphs(model).values():
      filename = graph.name + FORMATS[fmt]
      start = time.perf_counter()
      details = write_graph(graph, partial / filename)
      seconds = time.perf_counter() - start
      size = (partial / filename).stat().st_size
      log(f"{graph.name}: {filename}, {size / 2**20:.1f} MiB, {seconds:.1f} s")
      entries[graph.name] = GraphEntry(file=filename, description=graph.description,
                                       inputs=graph.inputs, outputs=graph.outputs)
    manifest = Manifest(format=fmt, image_size=model.image_size,
                        num_keypoints=int(model.estimator.num_keypoints), graphs=entries,
                        model_config=json.loads(model.config.to_json_best_effort()),
                        weights=model.description, versions=_versions(fmt),
                        format_details=details)
    write_manifest(partial, manifest)
    if directory.exists():
      directory.rmdir()
    partial.rename(directory)
  except BaseException:
    shutil.rmtree(partial, ignore_errors=True)
    raise
  return manifest
