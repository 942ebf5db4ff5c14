"""Run a workload that SIGKILLs itself right after its k-th change to a file: the child of test_write_boundaries.py
and test_kill_resume.py.

Usage: ``python kill_at_write.py ROOT K EVENTS WORKLOAD [ARGS...]``

Before anything of the library is imported, every way the library changes a file under ``ROOT`` is wrapped: each
``open()`` for writing (which creates or truncates a file), each write that reaches the operating system (the raw
file's ``write``, under the usual buffered and text layers), each ``truncate()``, and each ``os.replace``,
``os.rename``, ``os.remove`` and ``os.unlink``. Each one is an *event*; right after the K-th event the process
sends itself SIGKILL, so nothing else runs: no ``finally``, no flush, no close. With ``K = 0`` it runs to the end and
writes the list of its events to ``EVENTS`` (one per line), so that the parent knows how many there are.

Two environment variables choose another point and another signal: with ``KILL_AT_WRITE_MATCHING=TEXT``, K counts
only the events that start with ``TEXT`` (``replace .state.json.`` counts the demo's snapshots, ``open
checkpoints/.`` its checkpoints being written), so that the parent names the point without a first run to count;
``KILL_AT_WRITE_SIGNAL=SIGINT`` (any signal's name; SIGKILL by default) sends that signal instead, which Python turns
into ``KeyboardInterrupt`` right there, in the workload's own thread, as a Ctrl-C at that moment would.

Workloads:

* ``demo CONFIG OUTPUT``: ``sara-callbacks demo --config CONFIG --output OUTPUT``;
* ``loggers FOLDER EPOCHS``: ``fit()`` with ``csv_logger`` and ``jsonl_logger`` (per batch, ``append=True``) writing
  ``FOLDER/m.csv`` and ``FOLDER/m.jsonl``, a new metric appearing at each epoch (each adds a CSV column).
"""

from __future__ import annotations

import builtins
import io
import os
import signal
import sys
from typing import Any

ROOT = os.path.realpath(sys.argv[1])
KILL_AT = int(sys.argv[2])
EVENTS_FILE = sys.argv[3]
MATCHING = os.environ.get("KILL_AT_WRITE_MATCHING", "")
SIGNAL = signal.Signals[os.environ.get("KILL_AT_WRITE_SIGNAL", "SIGKILL")]
_events: list[str] = []
_matched = 0
_real_open = io.open


def _relative(path: Any) -> str | None:
    """``path`` relative to ROOT, or ``None`` when it lies elsewhere (or is a file descriptor)."""
    if isinstance(path, int):
        return None
    try:
        real = os.path.realpath(os.fspath(path))
    except TypeError:
        return None
    return os.path.relpath(real, ROOT) if real.startswith(ROOT + os.sep) else None


def _event(what: str) -> None:
    global _matched  # noqa: PLW0603 - one counter for the whole process
    _events.append(what)
    if what.startswith(MATCHING):
        _matched += 1
        if _matched == KILL_AT:
            os.kill(os.getpid(), SIGNAL)


class _CountedFileIO(io.FileIO):
    """A raw file whose writes and truncations are events (the buffered layers above it call these methods)."""

    def write(self, data: Any) -> int:
        written = super().write(data)
        if written:
            _event(f"write {_relative(self.name)}")
        return written  # type: ignore[no-any-return]

    def truncate(self, size: int | None = None) -> int:
        result = super().truncate(size)
        _event(f"truncate {_relative(self.name)}")
        return result


def counted_open(
    file: Any,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Any = None,
) -> Any:
    """``open()``, with the layers built over a :class:`_CountedFileIO` when it writes a file under ROOT."""
    relative = _relative(file)
    if relative is None or not set(mode) & set("wax+"):
        return _real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
    raw = _CountedFileIO(file, mode.replace("b", "").replace("t", ""), closefd, opener=opener)
    _event(f"open {relative} {mode}")  # creating or truncating a file is a change of its own
    if buffering == 0:
        return raw
    size = buffering if buffering > 1 else io.DEFAULT_BUFFER_SIZE
    buffer = io.BufferedRandom(raw, size) if "+" in mode or "r" in mode else io.BufferedWriter(raw, size)
    if "b" in mode:
        return buffer
    text = io.TextIOWrapper(buffer, encoding, errors, newline, line_buffering=buffering == 1)
    text.mode = mode  # type: ignore[misc]  # as io.open sets it
    return text


def _counted(name: str) -> Any:
    real = getattr(os, name)

    def operation(path: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(path, *args, **kwargs)
        relative = _relative(path)
        target = _relative(args[0]) if args and not isinstance(args[0], int) else None
        if relative is not None or target is not None:
            _event(f"{name} {relative} {target or ''}".rstrip())
        return result

    return operation


def install() -> None:
    builtins.open = io.open = counted_open  # type: ignore[assignment]
    for name in ("replace", "rename", "remove", "unlink"):
        setattr(os, name, _counted(name))
    import pathlib

    # Python < 3.11 keeps its own references in pathlib's accessor: 3.10's open is io.open (the real one, or the
    # counted one when pathlib is first imported just above, then a plain function that would bind as a method), 3.9's
    # is the low-level os.open that io.open's opener calls (it stays the real one).
    accessor = getattr(pathlib, "_NormalAccessor", None)
    if accessor is not None:
        if accessor.open in (_real_open, counted_open):
            accessor.open = staticmethod(counted_open)
        for name in ("replace", "rename", "unlink"):
            setattr(accessor, name, staticmethod(getattr(os, name)))


def run_demo(config: str, output: str) -> None:
    from altametris.sara.core.cli import main

    code = main(["demo", "--config", config, "--output", output])
    if code:
        raise SystemExit(code)


def run_loggers(folder: str, epochs: str) -> None:
    from altametris.sara.core.base_callback import CallbackManager
    from altametris.sara.core.loop import fit
    from altametris.sara.plugins.csv_logger import CSVLogger
    from altametris.sara.plugins.jsonl_logger import JSONLLogger

    manager = CallbackManager(
        [
            CSVLogger(path=os.path.join(folder, "m.csv"), per_batch=True, append=True),
            JSONLLogger(path=os.path.join(folder, "m.jsonl"), per_batch=True, append=True),
        ]
    )

    def step(item: tuple[int, int]) -> dict[str, float]:
        epoch, batch = item
        return {"loss": 1.0 / (batch + 1), f"metric_{epoch}": epoch + batch / 10}

    fit(
        manager,
        epochs=int(epochs),
        data=lambda epoch: [(epoch, batch) for batch in range(2)],
        train_step=step,
        validate=lambda: {"val_loss": 0.5},
    )


def main() -> None:
    install()
    workload, arguments = sys.argv[4], sys.argv[5:]
    try:
        {"demo": run_demo, "loggers": run_loggers}[workload](*arguments)
    finally:
        with _real_open(EVENTS_FILE, "w", encoding="utf-8") as file:
            file.write("".join(f"{event}\n" for event in _events))


if __name__ == "__main__":
    main()
