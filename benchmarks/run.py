"""Run every benchmark family and write the tables (JSON and Markdown).

Usage: ``python -m benchmarks.run [--quick] [--only dispatch,discovery,import] [--markdown docs/benchmarks.md]``
from the repository root (``tox -e bench`` does this). The ``trackers`` family needs the ``mlflow`` and
``tensorboard`` extras and runs only when asked for (``--only trackers``, as ``tox -e bench-trackers`` does).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import bench_discovery, bench_dispatch, bench_import
from ._harness import Report, machine, write

FAMILIES = {"dispatch": bench_dispatch.run, "discovery": bench_discovery.run, "import": bench_import.run}
OPTIONAL = {"trackers": "benchmarks.bench_trackers"}
"""Families run only with ``--only``: they need optional extras (imported when asked for)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run, not figures to quote")
    parser.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families to run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for JSON and Markdown")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    report = Report(machine=machine())
    for family in args.only.split(","):
        start = time.perf_counter()
        if family in OPTIONAL:
            import importlib

            rows = importlib.import_module(OPTIONAL[family]).run(quick=args.quick)
        else:
            rows = FAMILIES[family](quick=args.quick)
        report.rows.extend(rows)
        print(f"{family}: {len(rows)} rows in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    text = write(report, args.out, args.markdown)
    print(text)
    missed = [row for row in report.rows if row.met is False]
    for row in missed:
        print(f"target missed: {row.case}: {row.contender} = {row.ratio:.2f}, target {row.target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
