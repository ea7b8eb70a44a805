"""A machine-independent judgement of float32 agreement with a reference implementation.

Two float32 implementations of the same function differ by rounding, and how much
depends on the machine (AVX2 and AVX-512 kernels sum in different orders). A flat
relative bound such as 1e-4 then passes on one machine and fails on another although
neither implementation is wrong. A float64 run of the reference implementation settles
it: an output is judged correct when it is within the flat bound of the reference's
float32 output, or when it is no further from the float64 run than ``slack`` times the
reference's own float32 output is (both are then at the machine's rounding floor).

Where the function has discontinuities that rounding can cross (a nearest-code choice, a
bilinear sample's cell, a ReLU's kink), the reference's distance to float64 is one
draw of a heavy-tailed quantity, and one draw can be small by luck. Further float32 runs
of the reference on inputs moved by one ulp (``reference_runs``) are equally valid
draws; the floor is then the largest of their distances to float64.

Only numpy is needed, so the parity tools, the golden-output tests and users' own
ports can share the criterion.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

DEFAULT_RTOL = 1e-4
DEFAULT_SLACK = 1.5


def relative_l2(value, reference) -> float:
  """``|value - reference|_2 / |reference|_2`` in float64 (0 when both are zero).

  Raises:
    ValueError: when the shapes differ.
  """
  value = np.asarray(value, np.float64)
  reference = np.asarray(reference, np.float64)
  if value.shape != reference.shape:
    raise ValueError(f"shape mismatch: {value.shape} against the reference's {reference.shape}")
  norm = np.linalg.norm(reference)
  difference = np.linalg.norm(value - reference)
  if norm == 0:
    return 0.0 if difference == 0 else float("inf")
  return float(difference / norm)


def max_abs_error(value, reference) -> float:
  """Largest absolute elementwise difference, in float64."""
  value = np.asarray(value, np.float64)
  reference = np.asarray(reference, np.float64)
  if value.shape != reference.shape:
    raise ValueError(f"shape mismatch: {value.shape} against the reference's {reference.shape}")
  return float(np.max(np.abs(value - reference))) if value.size else 0.0


@dataclasses.dataclass(frozen=True)
class Verdict:
  """How one output compares.

  Attributes:
    rel_l2: relative L2 error of ours against the reference's float32 output.
    max_abs: largest absolute error against the reference's float32 output.
    ours_vs_float64: relative L2 error of ours against the float64 run (None without one;
      the largest over our runs when there are several).
    reference_vs_float64: the same for the reference's float32 output (the largest over
      the reference's runs when there are several).
    passed: the judgement (see :func:`judge`).
    reason: ``'flat bound'``, ``'rounding floor'`` or ``'mismatch'``.
  """

  rel_l2: float
  max_abs: float
  ours_vs_float64: float | None
  reference_vs_float64: float | None
  passed: bool
  reason: str


def judge(ours, reference, float64=None, *, reference_runs: Sequence = (),
          ours_runs: Sequence = (), rtol: float = DEFAULT_RTOL,
          slack: float = DEFAULT_SLACK) -> Verdict:
  """Judges one output of ours against the reference implementation.

  Args:
    ours: our float32 output.
    reference: the reference implementation's float32 output, same shape.
    float64: optionally, the reference implementation's output computed in float64.
    rtol: the flat relative L2 bound.
    reference_runs: further float32 outputs of the reference implementation on inputs
      perturbed at the rounding level (one ulp); used only with ``float64``.
    ours_runs: our float32 outputs on the same perturbed inputs as ``reference_runs``;
      used only with ``float64``. Then each side's distance to float64 is the furthest
      of its draws, so the two rounding distributions are sampled alike.
    slack: with ``float64``, ours may be this many times further from it than the
      reference's float32 outputs are (the furthest of them).

  Returns:
    A :class:`Verdict`; ``passed`` when ``rel_l2 <= rtol``, or when ``float64`` is given
    and ``ours_vs_float64 <= slack * reference_vs_float64``.
  """
  rel = relative_l2(ours, reference)
  max_abs = max_abs_error(ours, reference)
  if float64 is None:
    passed = rel <= rtol
    return Verdict(rel, max_abs, None, None, passed, "flat bound" if passed else "mismatch")
  ours_vs = max(relative_l2(run, float64) for run in (ours, *ours_runs))
  reference_vs = max(relative_l2(run, float64) for run in (reference, *reference_runs))
  if rel <= rtol:
    return Verdict(rel, max_abs, ours_vs, reference_vs, True, "flat bound")
  if ours_vs <= slack * reference_vs:
    return Verdict(rel, max_abs, ours_vs, reference_vs, True, "rounding floor")
  return Verdict(rel, max_abs, ours_vs, reference_vs, False, "mismatch")
