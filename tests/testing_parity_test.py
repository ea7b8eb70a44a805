"""The float64-aware parity criterion."""

import numpy as np
import pytest

from mcc_jax.testing import parity


def test_relative_l2_against_numpy():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
  assert parity.relative_l2(a, b) == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(b))
  assert parity.relative_l2(np.zeros(3), np.zeros(3)) == 0.0
  with pytest.raises(ValueError, match="shape mismatch"):
    parity.relative_l2(np.zeros(3), np.zeros(4))


def test_flat_bound_without_reference():
  reference = np.ones(100)
  assert parity.judge(reference * (1 + 5e-5), reference).passed
  verdict = parity.judge(reference * (1 + 5e-4), reference)
  assert not verdict.passed and verdict.reason == "mismatch"


def test_rounding_floor_accepts_ours_when_no_further_from_float64():
  rng = np.random.default_rng(1)
  exact = rng.normal(size=1000)
  reference = exact + 2e-4 * rng.normal(size=1000)   # the reference's float32 rounding
  ours = exact + 2.5e-4 * rng.normal(size=1000)        # ours: a little further, within 1.5x
  verdict = parity.judge(ours, reference, exact)
  assert verdict.rel_l2 > 1e-4
  assert verdict.passed and verdict.reason == "rounding floor"
  # A real error: far from float64 although the reference is close to it.
  wrong = exact + 1e-3 * rng.normal(size=1000)
  assert not parity.judge(wrong, reference, exact).passed


def test_reference_runs_set_the_floor_by_the_furthest_run():
  rng = np.random.default_rng(2)
  exact = rng.normal(size=1000)
  lucky = exact + 1e-5 * rng.normal(size=1000)       # one reference run close by chance
  spread = [exact + 3e-4 * rng.normal(size=1000) for _ in range(2)]
  ours = exact + 4e-4 * rng.normal(size=1000)
  assert not parity.judge(ours, lucky, exact).passed
  verdict = parity.judge(ours, lucky, exact, reference_runs=spread)
  assert verdict.passed and verdict.reason == "rounding floor"
  assert verdict.reference_vs_float64 == pytest.approx(
      max(parity.relative_l2(r, exact) for r in spread))
  # The extra runs widen the floor only to their own distance: a real error still fails.
  wrong = exact + 2e-3 * rng.normal(size=1000)
  assert not parity.judge(wrong, lucky, exact, reference_runs=spread).passed


def test_our_runs_are_judged_by_their_furthest_draw_too():
  rng = np.random.default_rng(3)
  exact = rng.normal(size=1000)
  reference = exact + 3e-4 * rng.normal(size=1000)
  ours = exact + 2e-4 * rng.normal(size=1000)
  assert parity.judge(ours, reference, exact).passed
  # One of our draws far from float64 (say, a rounding-sensitive step that is not
  # the reference's) counts against us even when the first draw was close.
  far = exact + 1e-3 * rng.normal(size=1000)
  verdict = parity.judge(ours, reference, exact, ours_runs=[ours, far])
  assert not verdict.passed
  assert verdict.ours_vs_float64 == pytest.approx(parity.relative_l2(far, exact))
  # Draws of the same spread as the reference's pass.
  alike = [exact + 3e-4 * rng.normal(size=1000) for _ in range(2)]
  assert parity.judge(ours, reference, exact, ours_runs=alike).passed
