"""Run every benchmark family and write the tables (JSON and Markdown).

Usage: ``python -m benchmarks.run [--quick] [--only dispatch,discovery,import] [--markdown docs/benchmarks.md]``
from the repository root (``tox -e bench`` does this). The ``bridges`` family needs the frameworks and is run on
its own: ``python -m benchmarks.run --only bridges`` (``tox -e bench-bridges``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import bench_discovery, bench_dispatch, bench_import
from ._harness import Report, Row, machine, write

FAMILIES = {"dispatch": bench_dispatch.run, "discovery": bench_discovery.run, "import": bench_import.run}
DEFAULT = ",".join(FAMILIES)


def _bridges(*, quick: bool) -> list[Row]:
    from . import bench_bridges  # imports torch and the frameworks: only when asked for

    return bench_bridges.run(quick=quick)


FAMILIES["bridges"] = _bridges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run, not figures to quote")
    parser.add_argument("--only", default=DEFAULT, help=f"comma-separated families to run, of {', '.join(FAMILIES)}")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="folder for JSON and Markdown")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    report = Report(machine=machine())
    for family in args.only.split(","):
        start = time.perf_counter()
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
