"""The graphs' names and the description of their inputs and outputs.

Shared by the exporter (:mod:`mcc_jax.export.graphs`), the manifest and the runtime;
imports nothing but the standard library, so that a runtime reads manifests without JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# The name of the symbolic batch dimension in every graph's shapes.
BATCH = "B"
KEYPOINTS = "keypoints"
SOURCE_ENCODER = "source_encoder"
GENERATOR = "generator"
GRAPH_NAMES = (KEYPOINTS, SOURCE_ENCODER, GENERATOR)
MODEL_RANGE = (-1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class TensorSpec:
  """One input or output of a graph.

  Attributes:
    name: the name the runtime feeds or reads it by.
    shape: dimensions, :data:`BATCH` for the symbolic batch and ints for the rest.
    dtype: numpy dtype name (every tensor is ``float32``).
    value_range: the range its values lie in, or None where they are unbounded.
    description: what it holds, for people writing a runtime.
  """

  name: str
  shape: tuple
  dtype: str
  value_range: tuple[float, float] | None
  description: str

  def to_json(self) -> dict[str, Any]:
    return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
            "range": None if self.value_range is None else list(self.value_range),
            "description": self.description}

  @classmethod
  def from_json(cls, entry: dict[str, Any]) -> TensorSpec:
    value_range = entry.get("range")
    return cls(name=entry["name"], shape=tuple(entry["shape"]), dtype=entry["dtype"],
               value_range=None if value_range is None else tuple(value_range),
               description=entry.get("description", ""))
