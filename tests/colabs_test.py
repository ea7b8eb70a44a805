"""The notebooks in colabs/ run from top to bottom (shell and magic lines skipped)."""

import json
import pathlib
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colabs").glob("*.ipynb"))


def test_there_is_a_quickstart():
  assert any(path.name == "quickstart.ipynb" for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, capsys):
  notebook = json.loads(path.read_text(encoding="utf-8"))
  assert notebook["nbformat"] == 4
  monkeypatch.chdir(ROOT)
  # Notebooks display images through IPython, which a notebook runtime provides; here
  # a stand-in records what would be shown.
  shown = []
  display_module = types.ModuleType("IPython.display")
  display_module.display = shown.append
  ipython = types.ModuleType("IPython")
  ipython.display = display_module
  monkeypatch.setitem(sys.modules, "IPython", ipython)
  monkeypatch.setitem(sys.modules, "IPython.display", display_module)
  namespace = {"__name__": "__main__"}
  for index, cell in enumerate(notebook["cells"]):
    if cell["cell_type"] != "code":
      continue
    assert not cell.get("outputs"), f"{path.name} cell {index} is saved with outputs"
    lines = [line for line in "".join(cell["source"]).splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    exec(compile("\n".join(lines), f"{path.name}[{index}]", "exec"), namespace)  # pylint: disable=exec-used
  out = capsys.readouterr().out
  assert "frame (2, 64, 64, 3)" in out
  # Warped sample frame, the synthetic pair, and source | driving | generated.
  assert [image.size for image in shown] == [(256, 128), (128, 64), (192, 64)]
