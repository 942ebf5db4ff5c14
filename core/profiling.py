"""What each callback costs: calls, total, mean and max time per callback and hook, and its share of the training.

Timing is opt-in: ``CallbackManager(callbacks, profile=True)``, ``manager.profile()``, ``profile = true`` at the top
of a config (:meth:`~altametris.sara.core.base_callback.CallbackManager.from_config`), the environment variable
``SARA_PROFILE=1`` for a training that is already written, or ``sara-callbacks demo --profile``. Off, the manager
dispatches as usual and pays nothing; on, each callback's call goes through a timing wrapper, one more call each.

The manager then keeps, per callback and hook, the number of calls, their total, mean and longest time, and their
share of the training's wall time (from ``on_train_start`` to ``on_train_end``): :attr:`CallbackManager.timings
<altametris.sara.core.base_callback.CallbackManager.timings>` gives them as :class:`Timings`. At ``on_train_end``
(or ``on_exception``) the table is logged (logger ``altametris.sara.core.profiling``, rank 0 only; printed on stderr
when that logger would not show it, logging never set up) and, when the
trainer passes an ``output_dir``, written as ``timings.json`` there (``timings.rank<N>.json`` on rank N > 0), through
a temporary file: complete or absent.

A callback whose batch hooks take more than :data:`SLOW_SHARE` of the batch time (measured from one ``on_batch_end``
to the next) is named once, in a warning on that logger, with its slowest hook and that hook's mean time: the
warning TensorFlow prints, saying which callback it is.

Example:
    >>> import time
    >>> from altametris.sara.core.base_callback import BaseCallback, CallbackManager
    >>> class Sleepy(BaseCallback):
    ...     def on_batch_end(self, batch, metrics):
    ...         time.sleep(0.001)
    >>> manager = CallbackManager([Sleepy()], profile=True)
    >>> manager.on_train_start()
    >>> for batch in range(3):
    ...     manager.on_batch_end(batch, {})
    >>> row = manager.timings.rows[0]
    >>> row.callback, row.hook, row.calls, row.mean >= 0.001
    ('Sleepy', 'on_batch_end', 3, True)
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from ._calling import Entry, taking_everything
from .distributed import rank_info
from .files import write_atomic
from .hookspecs import HOOKS
from .messages import class_name
from .order import names_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path


__all__ = ["ENVIRONMENT_VARIABLE", "SLOW_SHARE", "HookTiming", "Timings", "profiling_requested"]

ENVIRONMENT_VARIABLE = "SARA_PROFILE"
"""Set to ``1`` (or ``true``, ``yes``, ``on``) to time every manager built without ``profile=``."""

SLOW_SHARE = 0.2
"""The share of the batch time above which a callback's batch hooks are named in a warning."""

LOGGER_NAME = "altametris.sara.core.profiling"


def profiling_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether :data:`ENVIRONMENT_VARIABLE` asks for timings."""
    value = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


class HookTiming(NamedTuple):
    """The timings of one callback's hook (seconds)."""

    callback: str
    hook: str
    calls: int
    total: float
    mean: float
    max: float
    share: float
    """``total`` over the training's wall time (from ``on_train_start`` to ``on_train_end``, or until now)."""


class Timings(NamedTuple):
    """A snapshot of what the manager measured.

    Attributes:
        rows: one :class:`HookTiming` per callback and hook called at least once, the longest total first.
        wall: the training's wall time so far, in seconds (0 before ``on_train_start``).
        batch: the mean time from one ``on_batch_end`` to the next within an epoch, or ``None`` before two batches.
        rank: the process's rank.
    """

    rows: tuple[HookTiming, ...]
    wall: float
    batch: float | None
    rank: int

    def as_dict(self) -> dict[str, Any]:
        """The timings as JSON-ready data (what ``timings.json`` holds)."""
        return {
            "rank": self.rank,
            "wall_seconds": self.wall,
            "batch_seconds": self.batch,
            "hooks": [row._asdict() for row in self.rows],
        }

    def table(self) -> str:
        """The timings as a text table, slowest total first."""
        header = ("callback", "hook", "calls", "total s", "mean ms", "max ms", "share")
        lines = [
            (
                row.callback,
                row.hook,
                str(row.calls),
                f"{row.total:.4f}",
                f"{row.mean * 1e3:.3f}",
                f"{row.max * 1e3:.3f}",
                f"{row.share:.1%}",
            )
            for row in self.rows
        ]
        widths = [max(len(cells[index]) for cells in (header, *lines)) for index in range(len(header))]
        rendered = [
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() for cells in (header, *lines)
        ]
        batch = f", batch {self.batch * 1e3:.3f} ms" if self.batch is not None else ""
        return "\n".join([f"callback timings (rank {self.rank}): wall {self.wall:.3f} s{batch}", *rendered])


class HookRecord:
    """What one callback's hook cost so far: its calls, and their total and longest time (seconds)."""

    __slots__ = ("callback", "calls", "hook", "max", "total")

    def __init__(self, callback: object, hook: str) -> None:
        self.callback = callback
        self.hook = hook
        self.calls = 0
        self.total = 0.0
        self.max = 0.0


class Profiler:
    """The measurements of one manager (internal): a timing wrapper around each callback's entries, and observers.

    The manager puts :meth:`timed` around every entry, and the :attr:`before` and :attr:`after` entries around the
    callbacks' own: the run's start (the clock starts), each batch's end (the batch time), each epoch's end (slow
    callbacks named) and the run's end (the table logged, ``timings.json`` written).
    """

    def __init__(self) -> None:
        self.records: dict[tuple[int, str], HookRecord] = {}
        self.started: float | None = None
        self.ended: float | None = None
        self.output_dir: Path | None = None
        self.last_batch: float | None = None
        self.batch_total = 0.0
        self.batch_count = 0
        self.warned: set[int] = set()
        ends = {"run": self.train_ends, "epoch": self.epoch_ends, "batch": self.batch_ends}
        self.before = {
            name: Entry(None, name, self.train_starts, True) for name, hook in HOOKS.items() if hook.starts("run")
        }
        self.after = {
            name: Entry(None, name, ends[hook.scope], False) for name, hook in HOOKS.items() if hook.ends(hook.scope)
        }

    def timed(self, entry: Entry) -> Entry:
        """``entry``, its calls counted and timed into its callback's record for the hook."""
        key = (id(entry.callback), entry.hook)
        record = self.records.get(key)
        if record is None or record.callback is not entry.callback:
            record = self.records[key] = HookRecord(entry.callback, entry.hook)
        call, clock = taking_everything(entry), time.perf_counter

        def timed(*args: object, **kwargs: object) -> object:
            start = clock()
            try:
                return call(*args, **kwargs)
            finally:
                elapsed = clock() - start
                record.calls += 1
                record.total += elapsed
                if elapsed > record.max:  # noqa: PLR1730 - a comparison costs less than a call of max()
                    record.max = elapsed

        return entry._replace(call=timed, context=True, arity=None)

    def forget(self, callback: object) -> None:
        """Drop the records of ``callback``, which left the manager."""
        for key in [key for key, record in self.records.items() if record.callback is callback]:
            del self.records[key]

    # -- the observers -------------------------------------------------------------------------------------------

    def train_starts(self, *args: object, **context: object) -> None:
        """A run starts: measure from now, and keep where to write ``timings.json``."""
        self.started, self.ended, self.last_batch = time.perf_counter(), None, None
        self.batch_total, self.batch_count = 0.0, 0
        for record in self.records.values():
            record.calls, record.total, record.max = 0, 0.0, 0.0
        output_dir = context.get("output_dir")
        self.output_dir = None
        if isinstance(output_dir, (str, os.PathLike)):
            from pathlib import Path  # pathlib only when a run writes its timings

            self.output_dir = Path(output_dir)

    def batch_ends(self, *args: object) -> None:
        """After the callbacks of a batch's end: the time from the previous batch's end."""
        now = time.perf_counter()
        if self.last_batch is not None:
            self.batch_total += now - self.last_batch
            self.batch_count += 1
        self.last_batch = now

    def epoch_ends(self, *args: object) -> None:
        """After the callbacks of an epoch's end: warn about slow callbacks; the next batch time starts afresh."""
        self.last_batch = None
        self.warn_slow()

    def train_ends(self, *args: object) -> None:
        """After the callbacks of the run's end (or failure): log the table, write ``timings.json``."""
        self.ended = time.perf_counter()
        self.warn_slow()
        timings = self.timings()
        if timings.rank == 0:
            _report(timings.table())
        if self.output_dir is not None:
            name = "timings.json" if timings.rank == 0 else f"timings.rank{timings.rank}.json"
            try:
                _write_json(self.output_dir / name, timings.as_dict())
            except OSError as error:
                _logger().warning("could not write the callback timings to %s: %s", self.output_dir / name, error)

    def warn_slow(self) -> None:
        """Name, once each, the callbacks whose batch hooks take more than :data:`SLOW_SHARE` of the batch time."""
        if not self.batch_count:
            return
        batch = self.batch_total / self.batch_count
        by_callback: dict[int, list[HookRecord]] = {}
        for (key, hook), record in self.records.items():
            if HOOKS[hook].scope == "batch" and record.calls:
                by_callback.setdefault(key, []).append(record)
        for key, records in by_callback.items():
            spent = sum(record.total / record.calls for record in records)
            if key in self.warned or spent <= SLOW_SHARE * batch:
                continue
            self.warned.add(key)
            slowest = max(records, key=lambda record: record.total / record.calls)
            _logger().warning(
                "callback %r takes %.0f%% of the batch time: %s takes %.3f ms per call on average (a batch takes "
                '%.3f ms); give it a trigger (when = "100ba" in its config item) or make it cheaper',
                class_name(slowest.callback),
                100 * spent / batch,
                slowest.hook,
                slowest.total / slowest.calls * 1e3,
                batch * 1e3,
            )

    def timings(self) -> Timings:
        """A snapshot of the records."""
        end = self.ended if self.ended is not None else time.perf_counter()
        wall = end - self.started if self.started is not None else 0.0
        names = _names([record.callback for record in self.records.values()])
        rows = sorted(
            (
                HookTiming(
                    names[id(record.callback)],
                    record.hook,
                    record.calls,
                    record.total,
                    record.total / record.calls,
                    record.max,
                    record.total / wall if wall else 0.0,
                )
                for record in self.records.values()
                if record.calls
            ),
            key=lambda row: -row.total,
        )
        batch = self.batch_total / self.batch_count if self.batch_count else None
        return Timings(tuple(rows), wall, batch, rank_info().rank)


def _report(table: str) -> None:
    """Log the table at INFO; print it on stderr when logging would not show it (never configured, say)."""
    import logging

    logger = _logger()
    if logger.isEnabledFor(logging.INFO) and logger.hasHandlers():
        logger.info("%s", table)
    else:  # timings were asked for: they are seen without a logging set-up
        import sys

        print(table, file=sys.stderr, flush=True)


def _names(callbacks: Sequence[object]) -> dict[int, str]:
    """A name per callback: its plugin name (a config item's), else its class; numbered when several share it."""
    names: dict[int, str] = {}
    seen: dict[str, int] = {}
    for callback, plugin in zip(callbacks, names_of(callbacks)):  # type: ignore[arg-type]  # registered callbacks
        if id(callback) in names:
            continue
        name = plugin or class_name(callback)
        seen[name] = seen.get(name, 0) + 1
        names[id(callback)] = name if seen[name] == 1 else f"{name}#{seen[name]}"
    return names


def _logger() -> Any:
    import logging  # logging only when timings are reported

    return logging.getLogger(LOGGER_NAME)


def _write_json(path: Path, value: object) -> None:
    """Write ``value`` as JSON through a temporary sibling and :func:`os.replace`: complete, or no file."""
    import json  # only when a run writes its timings

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(value, indent=2) + "\n")
