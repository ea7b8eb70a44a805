"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Mapping


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
  """Median wall time of ``fn()`` over ``repeats`` runs, after ``warmup`` untimed runs.

  ``fn`` must wait for its own result (e.g. ``jax.block_until_ready``).
  """
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def interleaved_seconds(fns: Mapping[str, Callable[[], object]], repeats: int,
                        warmup: int = 1) -> dict[str, list[float]]:
  """Wall times of each of ``fns``, the functions taking turns run by run.

  Every function runs ``warmup`` untimed times, then ``repeats`` rounds call each
  function once (round ``r`` starts with function ``r`` and goes round). On a shared machine whose load changes over seconds, every
  function thus sees the same mix of quiet and busy moments, which makes ratios between
  them far steadier than timing one function after the other.

  Args:
    fns: name -> function that waits for its own result.
    repeats: timed rounds.
    warmup: untimed calls of each function first.

  Returns:
    name -> the ``repeats`` times in seconds, in round order.
  """
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in fns}
  order = list(fns)
  for round_index in range(repeats):
    # Each round starts one function later, so that no function always runs first.
    shift = round_index % len(order)
    for name in order[shift:] + order[:shift]:
      start = time.perf_counter()
      fns[name]()
      times[name].append(time.perf_counter() - start)
  return times


def interleaved_median_seconds(fns: Mapping[str, Callable[[], object]], repeats: int,
                               warmup: int = 1) -> dict[str, float]:
  """Median of :func:`interleaved_seconds` for each function: name -> seconds."""
  return {name: statistics.median(values)
          for name, values in interleaved_seconds(fns, repeats, warmup).items()}
