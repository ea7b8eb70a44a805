"""Writing a graph as ONNX through jax2onnx (weights inside, symbolic batch)."""

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import Iterator
from typing import Any

from mcc_jax.export import jax2onnx_compat
from mcc_jax.export.graphs import Graph


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
  """Silences the converter's warnings that concern neither this model nor its result:
  plugins of libraries it does not use, and shape annotations of intermediate values
  it leaves out of the file."""
  loggers = [logging.getLogger(name) for name in ("jax2onnx", "onnx_ir")]
  levels = [logger.level for logger in loggers]
  try:
    for logger in loggers:
      logger.setLevel(logging.ERROR)
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


def _graphs(graph) -> Iterator:
  """``graph`` and every subgraph of its nodes (If, Loop and Scan bodies)."""
  yield graph
  for node in graph.node:
    for attribute in node.attribute:
      for subgraph in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
        yield from _graphs(subgraph)


def deduplicate_initializers(model) -> int:
  """Keeps one copy of identical initializers (same dtype, shape and bytes).

  A module called at several scales (the same weights each time) is traced once per
  call, and every call's weights become initializers of their own: in the generator,
  more than half of the file. Uses of a copy are renamed to the kept one.

  Args:
    model: an ``onnx.ModelProto``, changed in place.

  Returns:
    The bytes saved.
  """
  import hashlib  # pylint: disable=import-outside-toplevel

  import onnx  # pylint: disable=import-outside-toplevel

  kept, renamed, saved = {}, {}, 0
  unique = []
  for initializer in model.graph.initializer:
    nameless = onnx.TensorProto()
    nameless.CopyFrom(initializer)
    nameless.name = ""
    key = hashlib.sha256(nameless.SerializeToString(deterministic=True)).hexdigest()
    if key in kept and not initializer.external_data:
      renamed[initializer.name] = kept[key]
      saved += nameless.ByteSize()
    else:
      kept.setdefault(key, initializer.name)
      unique.append(initializer)
  if not renamed:
    return 0
  del model.graph.initializer[:]
  model.graph.initializer.extend(unique)
  for graph in _graphs(model.graph):
    for node in graph.node:
      for index, name in enumerate(node.input):
        if name in renamed:
          node.input[index] = renamed[name]
  annotations = [v for v in model.graph.value_info if v.name not in renamed]
  del model.graph.value_info[:]
  model.graph.value_info.extend(annotations)
  return saved


def export_onnx_graph(graph: Graph, path: str | pathlib.Path) -> dict[str, Any]:
  """Converts ``graph`` to ONNX and writes it to ``path``.

  Inputs and outputs carry the names of the graph's specs; the batch dimension is the
  symbolic ``B``; the weights are initializers inside the file.

  Args:
    graph: what to convert (:func:`mcc_jax.export.graphs.model_graphs`).
    path: the ``.onnx`` file to write.

  Returns:
    ``{'opset': ..., 'ir_version': ...}`` of the written model.
  """
  import onnx  # pylint: disable=import-outside-toplevel
  from jax2onnx import to_onnx  # pylint: disable=import-outside-toplevel

  with _quiet_converter(), jax2onnx_compat.patched():
    model = to_onnx(graph.function, [spec.shape for spec in graph.inputs],
                    model_name=f"mcc_jax_{graph.name}",
                    input_names=[spec.name for spec in graph.inputs],
                    output_names=[spec.name for spec in graph.outputs])
  deduplicate_initializers(model)
  model.doc_string = graph.description
  onnx.save_model(model, str(path))
  opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
  return {"opset": int(opset), "ir_version": int(model.ir_version)}
