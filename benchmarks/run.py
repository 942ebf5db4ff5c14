"""Run the benchmark cases, judge every target from this run's numbers, and write the tables (JSON and Markdown).

Usage: ``python -m benchmarks.run [--quick] [--only dispatch,manager,discovery,import] [--markdown docs/benchmarks.md]``
from the repository root (``tox -e bench`` writes docs/benchmarks.md; ``tox -e bench-quick`` is the quick pass that
CI runs). The ``trackers`` family needs the ``mlflow`` and ``tensorboard`` extras and runs only when asked for
(``--only trackers``, as ``tox -e bench-trackers`` does); the ``bridges`` family needs torch and the frameworks
(``--only bridges``, ``tox -e bench-bridges``).

Cases of Python statements are judged on the instructions that ``valgrind --tool=callgrind`` counts (bound: the
target plus a 2% margin) and, in the full run, on wall-clock time too (bound: the target); the quick pass judges
their instruction counts only, and the cases it can only time (whole processes) against twice their targets. The
quick pass needs valgrind and exits 2 without it. The exit status is 1 when a target is missed, and the summary names
each missed target with its reason.

The Markdown opens with a summary (each target once, its ratios, met or not), then plots of dispatch and discovery
(SVG, written into ``_static/benchmarks/`` beside each Markdown file: ``docs/_static/benchmarks/`` for
``--markdown docs/benchmarks.md``), then every case's table.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from . import bench_discovery, bench_dispatch, bench_import, bench_manager
from ._callgrind import ValgrindMissing, valgrind
from ._harness import FULL, QUICK, Report, machine, run_cases, summary, write

FAMILIES = {
    "dispatch": bench_dispatch.cases,
    "manager": bench_manager.cases,
    "discovery": bench_discovery.cases,
    "import": bench_import.cases,
}
OPTIONAL = {"trackers": "benchmarks.bench_trackers", "bridges": "benchmarks.bench_bridges"}
"""Families run only with ``--only``: they need optional extras (imported when asked for)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the quick pass: fewer, shorter rounds; looser bounds")
    parser.add_argument(
        "--slack", type=float, default=None, help="wall clock: bound = slack x target (1 by default, 2 in --quick)"
    )
    parser.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families to run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for JSON and Markdown")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the Markdown here (plots beside it)")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    if args.slack is not None:
        budget = dataclasses.replace(budget, slack=args.slack)
    families = args.only.split(",")
    unknown = [family for family in families if family not in FAMILIES and family not in OPTIONAL]
    if unknown:
        parser.error(f"unknown families {unknown}; the families are: {', '.join([*FAMILIES, *OPTIONAL])}")
    if budget.quick:
        try:
            valgrind()
        except ValgrindMissing as missing:
            print(f"error: {missing}", file=sys.stderr)
            return 2
    report = Report(machine=machine(), budget=budget)
    for family in families:
        start, before = time.perf_counter(), len(report.verdicts)
        if family in OPTIONAL:
            import importlib

            build = importlib.import_module(OPTIONAL[family]).cases
        else:
            build = FAMILIES[family]
        run_cases(build(budget), budget, report, log=lambda line: print(line, file=sys.stderr))
        print(
            f"{family}: {len(report.verdicts) - before} targets in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
    write(report, args.out, args.markdown)
    print(summary(report))
    return 1 if report.missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
