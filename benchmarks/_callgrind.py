"""Instructions per execution of Python statements, counted by valgrind's callgrind: numbers that load cannot move.

A wall-clock ratio measured on a shared machine moves with the rest of the machine's work; the instructions that a
statement executes do not. :func:`count` runs a batch of :class:`Counted` jobs in one process under
``valgrind --tool=callgrind`` (two batches side by side on a machine of two cores or more). In that process, each job
builds its namespace (``builder(*args)``, a function importable there), then runs each statement in timeit's loop
(``loops`` iterations, the garbage collector off) between two calls of ``os.getppid``, the marker at which callgrind
dumps its counters (``--dump-before=getppid``); right after, the same loop over ``pass`` runs between two markers too.
One sample of a statement is ``(its loop - the empty loop) / loops``: instructions per execution, with the loop's and
the markers' own cost subtracted. Each statement is measured in ``rounds`` rounds.

``loops`` is chosen in the measuring process, for each statement, so that one loop lasts about ``seconds`` of that
process's CPU time (under callgrind, about 20 million instructions a second; CPU time, not wall time, so the load of
the machine changes nothing): a loop of a million instructions or more, against which what a part adds or loses
around its loop (a few thousand instructions, depending on where memory lies) is below a third of a percent. Choosing
it runs the statement a few times, 1, then 4, 16... executions: that also warms it up (CPython specialises its
bytecode during the first executions).

The counts repeat within a fraction of a percent from run to run: a ratio of them needs no slack for noise, only a
small stated margin.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

MARKER = "getppid"
"""The C function at whose entry callgrind dumps a part; Python reaches it through ``os.getppid()``, and nothing in
the measured process calls it otherwise (:func:`count` checks that the parts and the markers agree)."""
ROOT = Path(__file__).resolve().parent.parent
"""The folder that holds ``benchmarks``: put on the child's ``PYTHONPATH``, so the builders import from anywhere."""

Samples = dict[str, list[float]]


class ValgrindMissing(RuntimeError):
    """valgrind is not on ``PATH``: instruction counts cannot be measured."""

    def __init__(self) -> None:
        super().__init__(
            "valgrind is not installed (no `valgrind` on PATH): the benchmarks count instructions with "
            "`valgrind --tool=callgrind`, which the quick pass judges; install it (`apt-get install valgrind`) "
            "and run again"
        )


@dataclass(frozen=True)
class Counted:
    """Statements whose instructions per execution are counted, in a namespace built in the measuring process."""

    builder: str
    """``"module:function"``; ``function(*args)`` returns the namespace the statements run in."""
    path: str
    """The folder that ``module`` is imported from (put first on the measuring process's ``sys.path``); empty for a
    built-in module."""
    args: tuple[Any, ...]
    """JSON values (numbers, strings, booleans)."""
    statements: dict[str, str]
    """Contender -> a Python statement."""
    loops: int | None = None
    """Executions of each statement between two markers; ``None``: as many as last ``seconds`` (see :func:`count`)."""

    @classmethod
    def of(
        cls,
        builder: Callable[..., dict[str, Any]],
        args: tuple[Any, ...],
        statements: dict[str, str],
        loops: int | None = None,
    ) -> Counted:
        """The job for ``builder``, a module-level function (or a built-in such as ``dict``), found where this process
        imported it from."""
        module = builder.__module__
        if "<" in builder.__qualname__:
            raise ValueError(f"{builder!r} is not defined at the top of its module: no other process can import it")
        file = getattr(sys.modules[module], "__file__", None)
        path = "" if file is None else str(Path(file).resolve().parents[module.count(".")])
        return cls(f"{module}:{builder.__qualname__}", path, tuple(args), dict(statements), loops)


def valgrind() -> str:
    """The path of ``valgrind``, or :class:`ValgrindMissing`."""
    found = shutil.which("valgrind")
    if found is None:
        raise ValgrindMissing
    return found


def parse(text: str) -> dict[int, int]:
    """``{part: instructions}`` from callgrind's output (one file, or the parts of ``--combine-dumps=yes``).

    Each part's ``summary:`` (or, failing that, ``totals:``) line holds its cost of every event named by ``events:``;
    the instructions are the ``Ir`` column.
    """
    parts: dict[int, int] = {}
    column, part = 0, 1
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "events":
            names = value.split()
            if "Ir" not in names:
                raise ValueError(f"callgrind counted {names}, not instructions (Ir)")
            column = names.index("Ir")
        elif key == "part":
            part = int(value)
        elif key in ("summary", "totals") and part not in parts:
            parts[part] = int(value.split()[column])
    if not parts:
        raise ValueError("no part with a summary in callgrind's output")
    return parts


def count(jobs: list[Counted], rounds: int, *, seconds: float = 0.05, workers: int | None = None) -> list[Samples]:
    """The instructions per execution of every statement of ``jobs``, ``rounds`` samples each, in job order.

    Each loop lasts about ``seconds`` of CPU time in the measuring process (unless its job fixes ``loops``). The jobs
    are dealt to ``workers`` valgrind processes (``min(2, cores)`` by default) that run side by side.
    """
    if not jobs:
        return []
    path = valgrind()
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(jobs)))
    batches = [list(range(index, len(jobs), workers)) for index in range(workers)]
    with tempfile.TemporaryDirectory(prefix="sara-callgrind-") as directory:
        running = [
            _start(path, [jobs[index] for index in batch], rounds, seconds, Path(directory) / f"batch{number}")
            for number, batch in enumerate(batches)
        ]
        results: list[Samples] = [{} for _ in jobs]
        for batch, (process, folder) in zip(batches, running):
            for index, samples in zip(batch, _finish(process, folder)):
                results[index] = samples
    return results


@dataclass(frozen=True)
class Scripts:
    """Operations whose instructions are counted in a fresh process each: ``{contender: (setup, operation)}``."""

    scripts: dict[str, tuple[str, str]]
    whole: bool = False
    """Count the whole process (the interpreter's start and exit included), not the operation alone."""


_SCRIPT = """\
import os
{setup}
os.getppid()
{operation}
os.getppid()
"""


def count_scripts(job: Scripts, *, workers: int | None = None) -> Samples:
    """The instructions of each ``operation`` of ``job``, in a fresh process after its ``setup`` (one sample each:
    a whole process repeats its count), ``workers`` processes at a time (``min(2, cores)`` by default)."""
    path = valgrind()
    workers = max(1, workers or min(2, os.cpu_count() or 1))
    names = list(job.scripts)
    samples: Samples = {}
    with tempfile.TemporaryDirectory(prefix="sara-callgrind-") as directory:
        for start in range(0, len(names), workers):
            running: dict[str, tuple[subprocess.Popen[str], Path]] = {}
            for name in names[start : start + workers]:
                setup, operation = job.scripts[name]
                out = Path(directory) / f"{len(samples) + len(running)}.out"
                argv = [path, *_OPTIONS, f"--callgrind-out-file={out}", sys.executable, "-c"]
                argv.append(_SCRIPT.format(setup=setup, operation=operation))
                process = subprocess.Popen(
                    argv, env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                )
                running[name] = (process, out)
            for name, (process, out) in running.items():
                _, stderr = process.communicate()
                if process.returncode != 0:
                    raise RuntimeError(f"counting {name!r} failed (exit {process.returncode}):\n{stderr}")
                parts = parse(out.read_text())
                if sorted(parts) != [1, 2, 3]:
                    raise RuntimeError(f"counting {name!r}: {len(parts)} parts where 2 markers make 3")
                samples[name] = [float(sum(parts.values()) if job.whole else parts[2])]
    return samples


_OPTIONS = (
    "--tool=callgrind",
    f"--dump-before={MARKER}",
    "--combine-dumps=yes",
    "--dump-instr=no",
    "--dump-line=no",
)


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PYTHONHASHSEED": "0",  # the same hashes, so the same dict probes, in every run
    }


def _start(
    path: str, jobs: list[Counted], rounds: int, seconds: float, folder: Path
) -> tuple[subprocess.Popen[str], Path]:
    folder.mkdir()
    spec = {"jobs": [asdict(job) for job in jobs], "rounds": rounds, "seconds": seconds}
    (folder / "spec.json").write_text(json.dumps(spec))
    argv = [path, *_OPTIONS, f"--callgrind-out-file={folder / 'callgrind.out'}", sys.executable]
    argv += ["-m", "benchmarks._callgrind", str(folder)]
    process = subprocess.Popen(argv, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, folder


def _finish(process: subprocess.Popen[str], folder: Path) -> list[Samples]:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the process counting instructions failed (exit {process.returncode}):\n{stderr}")
    spec = json.loads((folder / "spec.json").read_text())
    labels = json.loads((folder / "labels.json").read_text())
    parts = parse((folder / "callgrind.out").read_text())
    if sorted(parts) != list(range(1, len(labels) + 2)):
        raise RuntimeError(
            f"callgrind dumped {len(parts)} parts where {len(labels)} markers make {len(labels) + 1}: something "
            f"else in the measured process calls {MARKER}()"
        )
    results: list[Samples] = [{name: [] for name in job["statements"]} for job in spec["jobs"]]
    loop: dict[tuple[int, str, int], int] = {}
    for number, label in enumerate(labels, start=1):
        if label is None:
            continue
        job, name, round_, kind, loops = label
        if kind == "statement":
            loop[job, name, round_] = parts[number]
        else:
            results[job][name].append((loop.pop((job, name, round_)) - parts[number]) / loops)
    return results


# -- in the measured process ---------------------------------------------------------------------------------------


def _measure(folder: Path) -> None:
    """Run the jobs of ``folder/spec.json`` between markers; write what each part was to ``folder/labels.json``."""
    spec = json.loads((folder / "spec.json").read_text())
    labels: list[list[Any] | None] = []

    def mark(label: list[Any] | None) -> None:
        labels.append(label)
        os.getppid()

    empty = timeit.Timer("pass")
    empty.timeit(50)
    for index, job in enumerate(spec["jobs"]):
        module, _, function = job["builder"].partition(":")
        if job["path"] and job["path"] not in sys.path:
            sys.path.insert(0, job["path"])
        namespace = getattr(importlib.import_module(module), function)(*job["args"])
        timers = {name: timeit.Timer(statement, globals=namespace) for name, statement in job["statements"].items()}
        loops = {name: job["loops"] or _calibrate(timer, spec["seconds"]) for name, timer in timers.items()}
        mark(None)  # the import, the build and the warm-up: not measured
        for round_ in range(spec["rounds"]):
            for name, timer in timers.items():
                timer.timeit(loops[name])
                mark([index, name, round_, "statement", loops[name]])
                empty.timeit(loops[name])
                mark([index, name, round_, "empty", loops[name]])
        del timers, namespace
        gc.collect()
        mark(None)
    (folder / "labels.json").write_text(json.dumps(labels))


def _calibrate(timer: timeit.Timer, seconds: float) -> int:
    """How many executions of ``timer``'s statement last about ``seconds`` of this process's CPU time."""
    number = 1
    while True:
        start = time.process_time()
        timer.timeit(number)
        elapsed = time.process_time() - start
        if elapsed >= seconds / 4 or number >= 10**6:
            return max(1, round(number * seconds / max(elapsed, 1e-9)))
        number *= 4


if __name__ == "__main__":
    _measure(Path(sys.argv[1]))
