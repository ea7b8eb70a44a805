"""The manifest of an exported model: ``manifest.json`` beside the graphs' files.

It tells a runtime, in any language, everything the graphs do not: the format, each
graph's file and its inputs and outputs (names, shapes with the symbolic batch ``B``,
dtypes, value ranges), the image size, how pixels map to the model's range, the steps
from a source image and driving frames to generated frames, the model's configuration,
where the weights came from and the versions that exported them. docs/export.md
describes it field by field.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from mcc_jax.export.signatures import BATCH
from mcc_jax.export.signatures import GRAPH_NAMES
from mcc_jax.export.signatures import TensorSpec

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
# Format -> the suffix of its graph files.
FORMATS = {"onnx": ".onnx", "stablehlo": ".stablehlo"}

# How a runtime turns a source image and driving frames into frames, for the manifest.
PIPELINE = (
    ("Pixels: uint8 RGB frames of image_size x image_size (crop and resize first) enter "
     "as float32 p / 127.5 - 1; generated frames leave as uint8 "
     "round((clip(y, -1, 1) + 1) * 127.5), rounding halves to even."),
    ("Once per source: keypoints(source) -> kp_source; source_encoder(source) -> the "
     "encoder features."),
    "Once: the anchor's keypoints kp_anchor (by default those of the first driving frame).",
    ("Per driving frame: keypoints(frame) -> kp_driving; the keypoints to generate are "
     "kp_driving (absolute motion) or, with relative motion, "
     "kp_source + scale * (kp_driving - kp_anchor) with jacobians "
     "J_driving inv(J_anchor) J_source, where scale = sqrt(area(hull(kp_source.value)) / "
     "area(hull(kp_anchor.value))) with adapt-scale, else 1."),
    ("generator(source, features, kp_source, those keypoints) -> image, flow, occlusion; "
     "the source inputs are repeated along the batch, one row per driving frame."),
)


class ExportedModelError(ValueError):
  """An exported model's directory is missing something or holds something unexpected."""


@dataclasses.dataclass(frozen=True)
class GraphEntry:
  """One graph of an export.

  Attributes:
    file: its file name, in the export's directory.
    description: what it computes and when a runtime calls it.
    inputs: its inputs, in order.
    outputs: its outputs, in order.
  """

  file: str
  description: str
  inputs: tuple[TensorSpec, ...]
  outputs: tuple[TensorSpec, ...]

  def to_json(self) -> dict[str, Any]:
    return {"file": self.file, "description": self.description,
            "inputs": [spec.to_json() for spec in self.inputs],
            "outputs": [spec.to_json() for spec in self.outputs]}

  @classmethod
  def from_json(cls, entry: dict[str, Any]) -> GraphEntry:
    return cls(file=entry["file"], description=entry.get("description", ""),
               inputs=tuple(TensorSpec.from_json(e) for e in entry["inputs"]),
               outputs=tuple(TensorSpec.from_json(e) for e in entry["outputs"]))


@dataclasses.dataclass(frozen=True)
class Manifest:
  """What ``manifest.json`` holds.

  Attributes:
    format: ``'onnx'`` or ``'stablehlo'``.
    image_size: S, the side of the square frames the graphs read and write.
    num_keypoints: K.
    graphs: ``{name: GraphEntry}`` for every name of :data:`~mcc_jax.export.graphs.GRAPH_NAMES`.
    model_config: the configuration the networks were built from (JSON).
    weights: where the weights came from (checkpoint path, step, EMA or raw).
    versions: the versions of the packages that exported the graphs.
    format_details: what else the format needs (ONNX opset; StableHLO platforms and
      calling convention).
  """

  format: str
  image_size: int
  num_keypoints: int
  graphs: dict[str, GraphEntry]
  model_config: dict[str, Any]
  weights: str
  versions: dict[str, str]
  format_details: dict[str, Any]

  def to_json(self) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": self.format,
        "image_size": self.image_size,
        "num_keypoints": self.num_keypoints,
        "batch_dimension": BATCH,
        "graphs": {name: entry.to_json() for name, entry in self.graphs.items()},
        "pipeline": list(PIPELINE),
        "model_config": self.model_config,
        "weights": self.weights,
        "versions": self.versions,
        "format_details": self.format_details,
    }


def write_manifest(directory: str | pathlib.Path, manifest: Manifest) -> pathlib.Path:
  """Writes ``manifest.json`` into ``directory``; returns its path."""
  path = pathlib.Path(directory) / MANIFEST_FILE
  path.write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
  return path


def read_manifest(directory: str | pathlib.Path, *, expected_format: str | None = None
                  ) -> Manifest:
  """Reads and checks the manifest of an export.

  Args:
    directory: a directory written by ``mcc-jax export``.
    expected_format: the format the caller can run (None: any).

  Returns:
    The :class:`Manifest`; every graph's file exists.

  Raises:
    ExportedModelError: naming what is missing or unexpected: the directory, the
      manifest, one of its fields, a graph, a graph's file, or another format.
  """
  directory = pathlib.Path(directory)
  expected = "a directory written by `mcc-jax export`"
  if not directory.is_dir():
    raise ExportedModelError(f"{directory}: no such directory (expected {expected})")
  path = directory / MANIFEST_FILE
  if not path.is_file():
    raise ExportedModelError(f"{directory}: no {MANIFEST_FILE} (expected {expected}, which "
                             f"holds {MANIFEST_FILE} and the graphs' files)")
  try:
    content = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise ExportedModelError(f"{path}: not valid JSON ({error})") from error
  if not isinstance(content, dict):
    raise ExportedModelError(f"{path}: expected a JSON object, got {type(content).__name__}")
  fields = ("manifest_version", "format", "image_size", "num_keypoints", "graphs",
            "model_config", "weights", "versions", "format_details")
  missing = [name for name in fields if name not in content]
  if missing:
    raise ExportedModelError(f"{path}: missing field(s) {', '.join(missing)}")
  if content["manifest_version"] != MANIFEST_VERSION:
    raise ExportedModelError(f"{path}: manifest_version {content['manifest_version']!r}; this "
                             f"mcc-jax reads version {MANIFEST_VERSION} (export again)")
  fmt = content["format"]
  if fmt not in FORMATS:
    raise ExportedModelError(f"{path}: unknown format {fmt!r} (expected one of "
                             f"{', '.join(FORMATS)})")
  if expected_format is not None and fmt != expected_format:
    raise ExportedModelError(f"{directory}: holds a {fmt} export; expected {expected_format} "
                             f"(export with --format {expected_format})")
  absent = [name for name in GRAPH_NAMES if name not in content["graphs"]]
  if absent:
    raise ExportedModelError(f"{path}: no graph {', '.join(absent)} (expected "
                             f"{', '.join(GRAPH_NAMES)})")
  try:
    graphs = {name: GraphEntry.from_json(content["graphs"][name]) for name in GRAPH_NAMES}
  except (KeyError, TypeError) as error:
    raise ExportedModelError(f"{path}: a graph entry lacks the field {error}") from error
  for name, entry in graphs.items():
    if not (directory / entry.file).is_file():
      raise ExportedModelError(f"{directory / entry.file}: missing (the {name} graph's file "
                               f"named in {MANIFEST_FILE})")
  return Manifest(format=fmt, image_size=int(content["image_size"]),
                  num_keypoints=int(content["num_keypoints"]), graphs=graphs,
                  model_config=content["model_config"], weights=content["weights"],
                  versions=content["versions"], format_details=content["format_details"])
