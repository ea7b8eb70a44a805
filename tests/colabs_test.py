"""The notebooks in colabs/ run from top to bottom (shell and magic lines skipped).

Every notebook has its own expectations in `EXPECTATIONS`: a function that receives
what the notebook printed and the images it displayed, and asserts on them. A notebook
without registered expectations fails, so that a new notebook cannot go unchecked.
"""

import json
import pathlib
import re
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colabs").glob("*.ipynb"))


def _printed_number(out, label):
  """The number printed right after ``label`` (e.g. ``'final loss'``)."""
  match = re.search(re.escape(label) + r"\s*([-+0-9.eE]+)", out)
  assert match, f"the notebook did not print {label!r}"
  return float(match.group(1))


# Sizes (width, height) of the images quickstart.ipynb displays, in order; a new cell
# that shows something adds its size here.
QUICKSTART_SHOWN_SIZES = [
    (256, 128),  # the sample frame and its rotation
    (128, 64),   # the synthetic source and driving frames
    (192, 64),   # source | driving | generated
    (256, 64),   # held-out frame | reconstruction | other face | other face animated
    "video",     # held-out | reconstruction | cross-identity, inline mp4
    (320, 64),   # flows M^0..M^4
    (256, 64),   # residuals M^i - M^(i-1)
]
# Lines (or parts of lines) quickstart.ipynb must print.
QUICKSTART_PRINTED = [
    "frame (2, 64, 64, 3)",
    "reconstruction (24, 64, 64, 3)",
    "flows M^0..M^4 (5, 16, 16, 2)",
    "motion codebook, scale 3: usage",
    "appearance codebook, scale 3: usage",
]


def check_quickstart(out, shown):
  for text in QUICKSTART_PRINTED:
    assert text in out
  sizes = [item if isinstance(item, _Video) else item.size for item in shown]
  assert [s if not isinstance(s, _Video) else "video" for s in sizes] == QUICKSTART_SHOWN_SIZES
  video = next(item for item in shown if isinstance(item, _Video))
  from mcc_jax import media  # pylint: disable=import-outside-toplevel
  clip = media.read_video(video.path)
  # Every held-out frame, three panels wide.
  assert clip.frames.shape == (24, 64, 192, 3)
  # The refinement changes the flow at some scale (a residual is not all zero).
  residuals = re.search(r"largest residual per scale \[([^\]]*)\]", out).group(1)
  assert max(float(v) for v in residuals.split(",")) > 0


def check_ops_tour(out, shown):
  # The identity grid with align_corners=True gives back the frame up to float32
  # rounding of the coordinates (about 6e-6 on the sample frame); a half-pixel
  # convention mistake costs about 0.5.
  assert _printed_number(out, "identity warp max abs difference:") < 1e-5
  assert _printed_number(out, "align_corners=False, max abs difference:") > 0.1
  assert "straight-through gradient is all ones: True" in out
  assert "forward value is the nearest code: True" in out
  # Multi-scale allocation of 64 codes over 4 scales.
  assert "prefix scale 1: codes [0, 32)" in out
  assert "equal scale 2: codes [32, 48)" in out
  assert "shared scale 0: codes [0, 64)" in out
  assert _printed_number(out, "maps driving keypoint k to source keypoint k, max error") < 1e-5
  assert "adapt_movement_scale=True: source keypoints move by [0.2 0. ]" in out
  assert "window round trip is exact: True" in out
  first = _printed_number(out, "first loss")
  final = _printed_number(out, "final loss")
  assert final < 0.1 * first, (first, final)
  assert [image.size for image in shown] == [
      (384, 128),  # frame | rotated | flow colours
      (384, 128),  # zeros | border | reflection padding
      (384, 128),  # frame | keypoint overlay | heatmaps
      (384, 128),  # background motion | two keypoint motions
      (384, 128),  # frame | two random TPS transforms
      (192, 64),   # identity | fitted | target affine warps
  ]


class _Video:
  """Stands in for IPython.display.Video: records the file it would show."""

  def __init__(self, path, **unused_options):
    self.path = path


EXPECTATIONS = {
    "quickstart.ipynb": check_quickstart,
    "ops_tour.ipynb": check_ops_tour,
}


def test_there_is_a_quickstart():
  assert any(path.name == "quickstart.ipynb" for path in NOTEBOOKS)


def test_every_notebook_has_expectations():
  names = {path.name for path in NOTEBOOKS}
  assert not names - EXPECTATIONS.keys(), (
      f"notebooks without expectations in EXPECTATIONS: {sorted(names - EXPECTATIONS.keys())}")
  assert not EXPECTATIONS.keys() - names, (
      f"expectations for missing notebooks: {sorted(EXPECTATIONS.keys() - names)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch, capsys):
  assert path.name in EXPECTATIONS, f"{path.name} has no expectations in EXPECTATIONS"
  check = EXPECTATIONS[path.name]
  notebook = json.loads(path.read_text(encoding="utf-8"))
  assert notebook["nbformat"] == 4
  monkeypatch.chdir(ROOT)
  # Notebooks display images through IPython, which a notebook runtime provides; here
  # a stand-in records what would be shown.
  shown = []
  display_module = types.ModuleType("IPython.display")
  display_module.display = shown.append
  display_module.Video = _Video
  # The quickstart trains for minutes unless told to use random weights.
  monkeypatch.setenv("MCC_QUICKSTART_SHORT_RUN", "1")
  ipython = types.ModuleType("IPython")
  ipython.display = display_module
  monkeypatch.setitem(sys.modules, "IPython", ipython)
  monkeypatch.setitem(sys.modules, "IPython.display", display_module)
  namespace = {"__name__": "__main__"}
  for index, cell in enumerate(notebook["cells"]):
    if cell["cell_type"] != "code":
      continue
    assert cell.get("execution_count") is None, (
        f"{path.name} cell {index} is saved with an execution count")
    assert not cell.get("outputs"), f"{path.name} cell {index} is saved with outputs"
    lines = [line for line in "".join(cell["source"]).splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    exec(compile("\n".join(lines), f"{path.name}[{index}]", "exec"), namespace)  # pylint: disable=exec-used
  check(capsys.readouterr().out, shown)
