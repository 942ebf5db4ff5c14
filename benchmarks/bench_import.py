"""Import cost of ``altametris.sara.core`` against ``import pluggy``, and whole processes against ``python -c pass``."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys

from ._harness import Row, run_process


def cumulative_import_us(module: str) -> int:
    """The cumulative import time of ``module`` as ``python -X importtime`` reports it, in microseconds."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    for line in result.stderr.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError(f"-X importtime did not report {module!r}")


def run(quick: bool = False) -> list[Row]:
    repeat = 7 if quick else 21
    rows: list[Row] = []
    samples: dict[str, list[int]] = {"pluggy": [], "altametris.sara.core": []}
    for _ in range(repeat):  # interleaved, fresh processes
        for module, values in samples.items():
            values.append(cumulative_import_us(module))
    for module, values in samples.items():
        rows.append(
            Row(
                "import", "python -X importtime, cumulative", f"import {module}", min(values), statistics.median(values)
            )
        )
    ratio = min(samples["altametris.sara.core"]) / min(samples["pluggy"])
    rows.append(
        Row(
            "import (ratios)",
            "python -X importtime, cumulative",
            "import altametris.sara.core / import pluggy",
            min(samples["altametris.sara.core"]),
            statistics.median(samples["altametris.sara.core"]),
            baseline="import pluggy",
            ratio=ratio,
            target="<= 1.5",
            met=ratio <= 1.5,
        )
    )

    processes: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import pluggy'": [sys.executable, "-c", "import pluggy"],
        "python -c 'import altametris.sara.core'": [sys.executable, "-c", "import altametris.sara.core"],
        "sara-callbacks list": [sys.executable, "-m", "altametris.sara.core", "list"],
    }
    script: str | None = shutil.which("sara-callbacks", path=os.path.dirname(sys.executable))
    if script:
        processes["sara-callbacks list"] = [script, "list"]
    timings = {name: run_process(argv, repeat=repeat) for name, argv in processes.items()}
    base = timings["python -c pass"][0]
    for name, (low, median) in timings.items():
        rows.append(
            Row(
                "process wall time",
                "fresh process",
                name,
                low * 1e6,
                median * 1e6,
                baseline="python -c pass",
                ratio=low / base,
            )
        )
    return rows
