"""The benchmark runner judges every target from its own numbers, says why one is missed, and fails the run then.

The cases here are synthetic (an empty statement against a loop of a few thousand additions), so that the verdicts
are certain on any machine; the real cases live in ``benchmarks/`` and run under ``tox -e bench`` and
``tox -e bench-quick``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # ``benchmarks`` is a folder of the repository, not part of the distribution

from benchmarks import run  # noqa: E402
from benchmarks._harness import QUICK, Budget, Case, Measured, Samples, Target, timed  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

TINY = Budget(rounds=3, sample_seconds=0.002, repeats=2)
STATEMENTS = {"cheap": "pass", "dear": "for i in range(3000): i + i"}


def _case(ratio: float, explain: Callable[[Measured, Target], str] | None = None) -> Case:
    def measure(budget: Budget) -> Samples:
        return timed(STATEMENTS, {}, budget)

    return Case("synthetic", f"dear within {ratio}x cheap", measure, (Target("dear", "cheap", ratio),), explain)


def _family(*cases: Case) -> Callable[[Budget], list[Case]]:
    return lambda budget: list(cases)


def test_a_missed_target_fails_the_run_and_the_summary_names_it_with_its_computed_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def explain(measured: Measured, target: Target) -> str:
        return f"dear costs {measured.ratio('dear', 'cheap'):.0f}x cheap in this run"

    monkeypatch.setattr(run, "FAMILIES", {"synthetic": _family(_case(1e9), _case(1.5, explain))})
    monkeypatch.setattr(run, "FULL", TINY)
    assert run.main(["--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "2 targets (full run): 1 met, 1 missed" in out
    assert "MISSED dear within 1.5x cheap: dear / cheap = " in out
    assert "why: dear costs " in out
    assert "in this run" in out
    page = (tmp_path / "benchmarks.md").read_text()
    assert "**1 of 2 targets met, 1 missed**" in page
    assert "| dear within 1.5x cheap | dear / cheap |" in page


def test_every_target_met_exits_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(run, "FAMILIES", {"synthetic": _family(_case(1e9))})
    monkeypatch.setattr(run, "FULL", TINY)
    assert run.main(["--out", str(tmp_path)]) == 0


def test_a_miss_without_a_measured_cause_still_says_what_it_measured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run, "FAMILIES", {"synthetic": _family(_case(1.0))})
    monkeypatch.setattr(run, "FULL", TINY)
    assert run.main(["--out", str(tmp_path)]) == 1
    assert "the ratio of medians is" in capsys.readouterr().out


def test_the_quick_pass_bounds_each_ratio_at_twice_its_target() -> None:
    from benchmarks._harness import judge

    case = _case(10.0)
    verdict = judge(case, {"dear": [25.0, 30.0], "cheap": [1.0, 1.2]}, QUICK)[0]
    assert (verdict.ratio, verdict.bound, verdict.met) == (25.0, 20.0, False)
    verdict = judge(case, {"dear": [19.0], "cheap": [1.0]}, QUICK)[0]
    assert verdict.met is True


def test_a_target_whose_contender_is_not_installed_is_neither_met_nor_missed() -> None:
    from benchmarks._harness import FULL, judge

    verdict = judge(_case(1.0), {"cheap": [1.0]}, FULL)[0]
    assert (verdict.met, verdict.ratio) == (None, None)
