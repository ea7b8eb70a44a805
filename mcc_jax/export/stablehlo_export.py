"""Writing a graph as serialized StableHLO through ``jax.export``, and reading it back.

The file holds :meth:`jax.export.Exported.serialize`'s bytes: the StableHLO module with
the weights as constants, a symbolic batch dimension ``B``, and the platforms it was
lowered for (the exporting machine's: export on a GPU machine for a CUDA artifact).
JAX reads it with :func:`jax.export.deserialize`; other runtimes through the StableHLO
module (``Exported.mlir_module()``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from mcc_jax.export.graphs import Graph
from mcc_jax.export.signatures import BATCH


def export_stablehlo_graph(graph: Graph, path: str | pathlib.Path) -> dict[str, Any]:
  """Lowers ``graph`` with a symbolic batch and writes the serialized export to ``path``.

  Args:
    graph: what to export (:func:`mcc_jax.export.graphs.model_graphs`).
    path: the file to write.

  Returns:
    ``{'platforms': [...], 'calling_convention_version': ...}`` of the export.
  """
  (batch,) = jax.export.symbolic_shape(BATCH)
  arguments = [jax.ShapeDtypeStruct(tuple(batch if d == BATCH else d for d in spec.shape),
                                    np.dtype(spec.dtype)) for spec in graph.inputs]
  exported = jax.export.export(jax.jit(graph.function))(*arguments)
  pathlib.Path(path).write_bytes(exported.serialize())
  return {"platforms": list(exported.platforms),
          "calling_convention_version": int(exported.calling_convention_version)}


def load_stablehlo_graph(path: str | pathlib.Path) -> Callable[..., tuple]:
  """The function of a file written by :func:`export_stablehlo_graph` (runs in JAX)."""
  return jax.export.deserialize(bytearray(pathlib.Path(path).read_bytes())).call
