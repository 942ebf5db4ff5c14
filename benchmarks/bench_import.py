"""Import cost of ``altametris.sara.core`` against ``import pluggy``, and whole processes against each other.

Targets: ``import altametris.sara.core`` within 1.5x ``import pluggy`` (which it imports), by the instructions that
callgrind counts for the import statement in a fresh process (all the quick pass judges of it), by ``-X importtime``
and by process wall time; ``sara-callbacks list`` (reads metadata, imports no plugin) within 1.5x a process that only
imports the package, by wall time and by the instructions of the whole process (all the quick pass judges of it). A
missed import target names, from the same run, the modules that the package loads beyond pluggy's and what they cost.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from ._callgrind import Scripts
from ._harness import Budget, Case, Measured, Samples, Target

CORE, PLUGGY = "altametris.sara.core", "pluggy"


def importtime(module: str) -> dict[str, tuple[int, int, int]]:
    """``python -X importtime -c 'import module'``: (self us, cumulative us, depth) of each module it imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    modules: dict[str, tuple[int, int, int]] = {}
    for line in result.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        modules[name.strip()] = (int(parts[0]), int(parts[1]), depth)
    if module not in modules:
        raise RuntimeError(f"-X importtime did not report {module!r}")
    return modules


def _importtime_case() -> Case:
    fastest: dict[str, tuple[int, dict[str, tuple[int, int, int]]]] = {}

    def measure(budget: Budget) -> Samples:
        samples: Samples = {f"import {PLUGGY}": [], f"import {CORE}": []}
        for _ in range(5 if budget.quick else 21):  # interleaved, each in a fresh process
            for module in (PLUGGY, CORE):
                modules = importtime(module)
                cumulative = modules[module][1]
                samples[f"import {module}"].append(cumulative)
                if module not in fastest or cumulative < fastest[module][0]:
                    fastest[module] = (cumulative, modules)
        return samples

    def explain(measured: Measured, target: Target) -> str:
        core, pluggy = fastest[CORE][1], fastest[PLUGGY][1]
        extra = {name: times[0] for name, times in core.items() if name not in pluggy}
        largest = sorted(extra.items(), key=lambda item: -item[1])[:6]
        return (
            f"in the fastest run, `import {PLUGGY}` took {fastest[PLUGGY][0]} us and `import {CORE}` "
            f"{fastest[CORE][0]} us; the {len(extra)} modules that the package loads beyond pluggy's own cost "
            f"{sum(extra.values())} us of their own, the largest: "
            + ", ".join(f"{name} {self_us} us" for name, self_us in largest)
        )

    def explain_counts(measured: Measured, target: Target) -> str:
        if measured.unit == "us":
            return explain(measured, target)
        return (
            f"`import {PLUGGY}` executes {measured.show(measured.best(target.baseline))} and `import {CORE}` "
            f"{measured.show(measured.best(target.contender))}; the full run's -X importtime rows name the modules"
        )

    return Case(
        "import",
        "import in a fresh process (-X importtime, cumulative; instructions)",
        measure,
        (Target(f"import {CORE}", f"import {PLUGGY}", 1.5),),
        explain_counts,
        counted=Scripts({f"import {module}": ("", f"import {module}") for module in (PLUGGY, CORE)}),
    )


def _processes_case() -> Case:
    processes: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        f"python -c 'import {PLUGGY}'": [sys.executable, "-c", f"import {PLUGGY}"],
        f"python -c 'import {CORE}'": [sys.executable, "-c", f"import {CORE}"],
        "sara-callbacks list": [sys.executable, "-m", CORE, "list"],
    }
    script = shutil.which("sara-callbacks", path=os.path.dirname(sys.executable))
    if script:
        processes["sara-callbacks list"] = [script, "list"]

    def measure(budget: Budget) -> Samples:
        samples: Samples = {name: [] for name in processes}
        for _ in range(5 if budget.quick else 21):
            for name, argv in processes.items():
                start = time.perf_counter()
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
                samples[name].append((time.perf_counter() - start) * 1e6)
        return samples

    def explain(measured: Measured, target: Target) -> str:
        bare = measured.best("python -c pass")
        return (
            f"a bare interpreter takes {measured.show(bare)} of it; beyond that, {target.contender} takes "
            f"{measured.show(measured.best(target.contender) - bare)} and {target.baseline} "
            f"{measured.show(measured.best(target.baseline) - bare)}"
        )

    # what the console script runs, up to its exit (a non-zero status fails the count: the second marker is missed)
    list_command = "import sys; from altametris.sara.core.cli import main; sys.argv[1:] = ['list']; status = main()"
    list_command += "\nif status:\n    raise SystemExit(status)"
    counted = {
        "python -c pass": "pass",
        f"python -c 'import {PLUGGY}'": f"import {PLUGGY}",
        f"python -c 'import {CORE}'": f"import {CORE}",
        "sara-callbacks list": list_command,
    }
    return Case(
        "import",
        "fresh process (wall time; instructions of the whole process)",
        measure,
        (
            Target(f"python -c 'import {CORE}'", f"python -c 'import {PLUGGY}'", 1.5),
            Target("sara-callbacks list", f"python -c 'import {CORE}'", 1.5),
        ),
        explain,
        counted=Scripts({name: ("", operation) for name, operation in counted.items()}, whole=True),
    )


def cases(budget: Budget) -> list[Case]:
    return [_importtime_case(), _processes_case()]
