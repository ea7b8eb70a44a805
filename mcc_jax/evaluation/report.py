"""Writing an evaluation: ``metrics.json``, ``metrics.md`` and ``per_video.json``."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any, Sequence

from mcc_jax.evaluation.metric_catalog import METRICS
from mcc_jax.evaluation.protocol import EvaluationResult

# Decimals shown in the markdown table.
_DECIMALS = {"psnr": 2, "l1": 4, "l1_255": 2, "lpips": 4, "akd": 3, "aed": 4, "csim": 4,
             "fid": 2}


def _format(name: str, value: float) -> str:
  if value is None or math.isnan(value):
    return "n/a"
  return f"{value:.{_DECIMALS.get(name, 4)}f}"


def summary(result: EvaluationResult, *, model_description: str,
            notes: Sequence[str] = ()) -> dict[str, Any]:
  """The content of ``metrics.json``.

  Args:
    result: the evaluation.
    model_description: where the weights came from.
    notes: remarks to keep with the numbers (e.g. a skipped metric).

  Returns:
    A JSON-ready dict.
  """
  return {
      "mode": result.mode,
      "checkpoint": model_description,
      "dataset": result.settings["dataset"],
      "motion": result.settings["motion"],
      "videos": {"evaluated": len(result.per_video),
                 "skipped_unreadable": len(result.skipped_videos),
                 "skipped": [{"path": p, "reason": r} for p, r in result.skipped_videos]},
      "frames": result.frames,
      "settings": {k: v for k, v in result.settings.items()
                   if k not in ("dataset", "motion")},
      "metrics": {name: metric.to_json() for name, metric in result.metrics.items()},
      "notes": list(notes),
  }


def markdown(result: EvaluationResult, *, model_description: str,
             notes: Sequence[str] = ()) -> str:
  """The content of ``metrics.md``: a one-row table of the values, then the details.

  Args:
    result: the evaluation.
    model_description: where the weights came from.
    notes: remarks printed under the tables.

  Returns:
    Markdown text.
  """
  dataset = result.settings["dataset"]
  names = [name for name in result.metrics if name != "l1_255"]
  titles = [METRICS[name].title + (" ↑" if METRICS[name].higher_is_better else " ↓")
            for name in names]
  lines = [f"# Evaluation ({result.mode})", "",
           f"- model: {model_description}",
           f"- dataset: {dataset['name']!r}, split {dataset['split']!r}, "
           f"{len(result.per_video)} videos, {result.frames} frames "
           f"({len(result.skipped_videos)} unreadable videos skipped)",
           f"- motion: {result.settings['motion']}", "",
           "| " + " | ".join(titles) + " |",
           "|" + "---|" * len(names),
           "| " + " | ".join(_format(n, result.metrics[n].value) for n in names) + " |", "",
           "| metric | value | frames | missed | definition |",
           "|---|---|---|---|---|"]
  for name, metric in result.metrics.items():
    missed = "" if metric.missed_fraction is None else f"{metric.missed_fraction:.1%}"
    definition = metric.definition.replace("|", "\\|")  # A bare | would end the cell.
    lines.append(f"| {name} | {_format(name, metric.value)} | {metric.frames} | {missed} | "
                 f"{definition} |")
  if notes:
    lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
  return "\n".join(lines) + "\n"


def write(result: EvaluationResult, output: str | pathlib.Path, *, model_description: str,
          notes: Sequence[str] = (), per_video: bool = False) -> list[pathlib.Path]:
  """Writes ``metrics.json``, ``metrics.md`` and, if asked, ``per_video.json``.

  Args:
    result: the evaluation.
    output: the directory (created if needed).
    model_description: where the weights came from.
    notes: remarks kept with the numbers.
    per_video: also write the per-video results.

  Returns:
    The paths written.
  """
  output = pathlib.Path(output)
  output.mkdir(parents=True, exist_ok=True)
  paths = [output / "metrics.json", output / "metrics.md"]
  paths[0].write_text(json.dumps(summary(result, model_description=model_description,
                                         notes=notes), indent=2) + "\n")
  paths[1].write_text(markdown(result, model_description=model_description, notes=notes))
  if per_video:
    paths.append(output / "per_video.json")
    paths[-1].write_text(json.dumps(result.per_video, indent=2) + "\n")
  return paths
