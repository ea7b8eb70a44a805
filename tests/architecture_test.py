"""The layers of the code: which package may import which (docs/architecture.md).

Read from the source (``ast``), so nothing is imported. A module that imports upward, or
two packages that import each other, fail here with the file and the import named.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Each layer and the layers it may import (besides itself and third-party libraries).
# Read bottom-up: ops is the floor; commands and testing sit on top.
ALLOWED = {
    "mcc_jax.ops": set(),
    "mcc_jax.models": {"mcc_jax.ops"},
    "mcc_jax.losses": {"mcc_jax.models", "mcc_jax.ops"},
    "mcc_jax.checkpoints": set(),
    "mcc_jax.media": set(),
    "mcc_jax.visualization": set(),
    "mcc_jax.faces": {"mcc_jax.media"},
    "mcc_jax.convert": {"mcc_jax.models", "mcc_jax.ops"},
    "mcc_jax.data_pipelines": set(),
    "mcc_jax.configs": {"mcc_jax.data_pipelines"},
    "mcc_jax.train": {"mcc_jax.losses", "mcc_jax.models", "mcc_jax.ops", "mcc_jax.checkpoints",
                      "mcc_jax.visualization", "mcc_jax.data_pipelines"},
    "mcc_jax.inference": {"mcc_jax.models", "mcc_jax.ops", "mcc_jax.checkpoints",
                          "mcc_jax.media", "mcc_jax.faces", "mcc_jax.visualization"},
    "mcc_jax.evaluation": {"mcc_jax.inference", "mcc_jax.models", "mcc_jax.ops",
                           "mcc_jax.convert", "mcc_jax.faces", "mcc_jax.media",
                           "mcc_jax.data_pipelines"},
    # Exported graphs and the runtime that runs them (onnxruntime) with the animator's
    # interface.
    "mcc_jax.export": {"mcc_jax.inference", "mcc_jax.models", "mcc_jax.ops"},
    # The web page: the animate pipeline, media files and the procedural examples.
    "mcc_jax.demo": {"mcc_jax.inference", "mcc_jax.media", "mcc_jax.data_pipelines"},
    "mcc_jax.config_cli": {"mcc_jax.configs"},
    "mcc_jax.commands": "*",
    "mcc_jax.cli": {"mcc_jax.config_cli", "mcc_jax.commands"},
    # The optional-dependency check: a leaf every layer may call.
    "mcc_jax.extras": set(),
    "mcc_jax.testing": "*",
}


# The repository's top-level folders that install inside the package (setup.py's
# package_dir), and so import as mcc_jax.<name> in a checkout and from a wheel alike.
MAPPED_FOLDERS = ("data_pipelines", "configs")


def _layer(module: str) -> str | None:
  parts = module.split(".")
  if parts[0] == "mcc_jax":
    return "mcc_jax" if len(parts) == 1 else f"mcc_jax.{parts[1]}"
  return None


def _imports(path: pathlib.Path):
  for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield node.lineno, alias.name
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      yield node.lineno, node.module
      for alias in node.names:
        yield node.lineno, f"{node.module}.{alias.name}"


def _sources():
  for folder in ("mcc_jax", "data_pipelines", "configs"):
    yield from sorted((ROOT / folder).rglob("*.py"))


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  if parts[0] in MAPPED_FOLDERS:
    parts = ("mcc_jax", *parts)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_package_has_a_place_in_the_layers():
  layers = {_layer(_module_name(path)) for path in _sources()} - {"mcc_jax"}
  assert layers <= set(ALLOWED), sorted(layers - set(ALLOWED))


def test_no_module_imports_above_its_layer():
  violations = []
  for path in _sources():
    source = _layer(_module_name(path))
    allowed = ALLOWED.get(source, set())
    for line, name in _imports(path):
      target = _layer(name)
      if (target in (None, source, "mcc_jax", "mcc_jax.extras") or allowed == "*" or
          target in allowed):
        continue
      violations.append(f"{path.relative_to(ROOT)}:{line} ({source}) imports {name}")
  assert not violations, "\n".join(violations)


def test_nothing_imports_the_top_level_folders_by_their_uninstalled_names():
  # data_pipelines/ and configs/ install as mcc_jax.data_pipelines and mcc_jax.configs
  # (nothing generic in site-packages); "import data_pipelines" would work in a checkout
  # only, and load a second copy of every module beside the mapped one.
  offenders = []
  for folder in ("mcc_jax", *MAPPED_FOLDERS, "tests", "benchmarks", "tools"):
    for path in sorted((ROOT / folder).rglob("*.py")):
      offenders += [f"{path.relative_to(ROOT)}:{line} imports {name}"
                    for line, name in _imports(path) if name.split(".")[0] in MAPPED_FOLDERS]
  assert not offenders, "\n".join(offenders)


def test_the_allowed_imports_have_no_cycle():
  graph = {layer: (set() if targets == "*" else set(targets)) for layer, targets in
           ALLOWED.items()}

  def reaches(start, goal, seen):
    for nxt in graph.get(start, ()):
      if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
        return True
    return False

  cycles = [layer for layer in graph if reaches(layer, layer, {layer})]
  assert not cycles, cycles


@pytest.mark.parametrize("name", ["folder", "tfds", "sample", "synthetic"])
def test_only_the_dataset_kinds_know_their_names(name):
  # A dataset kind is found by name in data_pipelines/sources/; nothing else branches on
  # it (adding a kind is one new file there).
  needles = (f'== "{name}"', f"== '{name}'", f'!= "{name}"', f"!= '{name}'")
  offenders = []
  for folder in ("mcc_jax", "data_pipelines", "benchmarks", "tools"):
    for path in sorted((ROOT / folder).rglob("*.py")):
      if "sources" in path.relative_to(ROOT).parts:
        continue
      text = path.read_text(encoding="utf-8")
      offenders += [f"{path.relative_to(ROOT)}: {n}" for n in needles if n in text]
  assert not offenders, offenders


# Inside data_pipelines: the readers sit below the dataset kinds, which sit below the
# pipelines; a folder may import the modules named here and itself.
DATA_LAYERS = {
    "readers": {"bad_files", "pair_sampling"},
    "sources": {"bad_files", "pair_sampling", "readers"},
}


@pytest.mark.parametrize("folder", sorted(DATA_LAYERS))
def test_data_readers_and_sources_import_nothing_above_them(folder):
  violations = []
  for path in sorted((ROOT / "data_pipelines" / folder).rglob("*.py")):
    for line, name in _imports(path):
      parts = name.split(".")
      if parts[:2] != ["mcc_jax", "data_pipelines"] or len(parts) == 2:
        continue
      if parts[2] != folder and parts[2] not in DATA_LAYERS[folder]:
        violations.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
  assert not violations, "\n".join(violations)
