"""``sara-callbacks demo``: a small training, driven through the manager, with callbacks enabled by name.

A logistic regression learns to separate two clouds of synthetic points, by stochastic gradient descent in pure
Python (no NumPy, no framework), through the reference loop :func:`~altametris.sara.core.loop.fit`. The callbacks come
from a config, by default ``demo.toml`` shipped inside the package: a progress bar, a metrics logger, a CSV logger,
early stopping and checkpoints. Everything the run writes goes into one run folder, ``runs/<timestamp>/`` under the
current directory unless ``output`` names another; relative paths of the config resolve inside it.

The config's ``[demo]`` table sets the training (``epochs``, ``points``, ``batch_size``, ``learning_rate``, ``seed``,
``pause_seconds``); the ``callbacks`` list is read by
:meth:`~altametris.sara.core.base_callback.CallbackManager.from_config`.

The run resumes: ``state.json`` in the run folder is the snapshot of the training, rewritten atomically after every
epoch (after every callback's ``on_epoch_end``): the run's config and settings, the model's weights, the callbacks'
state and the stop request, if any. Each checkpoint file holds the weights and the callbacks' state too.
``sara-callbacks demo --resume RUN_DIR`` continues a stopped, killed or preempted run in place from that snapshot, with
its own config: the partial epoch is redone, the loggers drop its rows, and the run ends as an uninterrupted one would.
SIGTERM stops the run after the current batch (exit status 143, with the command that resumes it); a second SIGTERM
ends it at once, with the same status (the state saved after the last whole epoch resumes it). One demo at a time
runs in a run folder: it holds the lock ``.sara-demo.lock`` there while it trains, so that a second ``--resume`` of a
folder a live demo is writing is refused, naming the other process.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import importlib.resources
import json
import logging
import math
import os
import pathlib
import random
import shlex
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from ..base_callback import BaseCallback, CallbackManager
from ..config import load_callbacks, read_config
from ..control import Preempted, TrainingControl
from ..exceptions import ConfigError
from ..files import FileLockedError, WriterLock, write_atomic
from ..loop import FitResult, fit

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from ..hookspecs import Metrics

__all__ = ["DEFAULTS", "embedded_config", "run_demo"]

DEFAULTS: Mapping[str, float] = {
    "epochs": 40,
    "points": 400,
    "batch_size": 16,
    "learning_rate": 0.05,
    "seed": 0,
    "pause_seconds": 0.0,
}
"""The training's settings when the config's ``[demo]`` table does not give them."""

_SHOWN = ("val_loss", "val_accuracy")
_LOCK = ".sara-demo.lock"
_SIGTERM_STATUS = 143  # 128 + 15, as Preempted ends the process
_INTEGERS = frozenset({"epochs", "points", "batch_size", "seed"})

Point = tuple[float, float, int]
"""Two coordinates and a label, 0 or 1."""


def run_demo(
    *,
    config: str | os.PathLike[str] | None = None,
    epochs: int | None = None,
    output: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    profile: bool | None = None,
    stream: TextIO,
) -> pathlib.Path:
    """Train the demo model with the callbacks of ``config`` and print what happened, and where it is, to ``stream``.

    Args:
        config: a config file (TOML, YAML or JSON); the embedded ``demo.toml`` by default.
        epochs: the most epochs to train, over the config's ``[demo] epochs``.
        output: the run folder, new or empty; ``runs/<timestamp>`` under the current directory by default.
        resume: a run folder to continue in place, from its ``state.json`` and with its own config (``config``,
            ``epochs`` and ``output`` are then refused).
        profile: time every callback's hooks, print the table at the end and write ``timings.json`` into the run
            folder; by default, as the config's top-level ``profile`` key or ``SARA_PROFILE`` say.
        stream: where to print (the progress bar's ``"stdout"`` goes there too while the demo runs).

    Returns:
        The run folder.

    Raises:
        ConfigError: the config is malformed (its ``[demo]`` table included), ``output`` holds another run, or
            ``resume`` is no run folder.
        PluginError: a callback of the config is unknown, broken, or refuses its parameters.
        TrainingError: a callback failed during the training.
        Preempted: SIGTERM stopped the run (after the message saying how to resume it was printed).
    """
    raw, shown, settings, snapshot = _load_run(config, epochs, output, resume)
    callbacks = load_callbacks(raw, origin=None if snapshot is None and config is None else shown)
    manager = CallbackManager(callbacks, profile=profile if profile is not None else raw.get("profile"))
    names = [
        _item_name(item) for item in raw["callbacks"] if not (isinstance(item, dict) and item.get("enabled") is False)
    ]
    train, validation = _split(_points(int(settings["points"]), int(settings["seed"])))
    model = _LogisticRegression(learning_rate=settings["learning_rate"], pause=settings["pause_seconds"])
    control = TrainingControl()
    start_epoch = 0
    run_dir = _run_folder(output) if snapshot is None else pathlib.Path(str(resume))
    with _run_lock(run_dir), _sigterm_exits_143():
        if snapshot is None:
            snapshot = {"run": {"config": raw, "source": shown, "settings": settings}, "epoch": None, "stop": None}
            snapshot["model"], snapshot["callbacks"] = model.weights_dict(), manager.state_dict()
            _write_json(run_dir / "state.json", snapshot)  # the folder is a run from now on: --resume finds it
            _print_intro(stream, shown, names, settings, train=len(train), validation=len(validation))
        else:
            snapshot, start_epoch = _restore(run_dir, manager, model, control)
            where = "the start" if start_epoch == 0 else f"epoch {start_epoch}"
            print(
                f"SARA callbacks demo: resuming {_shown_path(run_dir)} at {where}, callbacks from {shown}.", file=stream
            )
        manager.add_callback(_Snapshot(run_dir / "state.json", snapshot, manager, model, control))
        batches = _Batches(train, int(settings["batch_size"]), int(settings["seed"]), first_epoch=start_epoch)

        def save_checkpoint(path: str) -> None:
            """The trainer's ``save_checkpoint``: the weights and the callbacks' state, one consistent snapshot."""
            _write_plain_json(pathlib.Path(path), {**model.weights_dict(), "callbacks": manager.state_dict()})

        stream.flush()
        started = time.perf_counter()
        try:
            with _logging_into(run_dir / "train.log", stream), contextlib.redirect_stdout(stream):
                result = fit(
                    manager,
                    epochs=int(settings["epochs"]),
                    start_epoch=min(start_epoch, int(settings["epochs"])),
                    data=batches,
                    train_step=model.train_step,
                    validate=lambda: model.evaluate(validation, prefix="val_"),
                    model=model,
                    config=dict(settings),
                    control=control,
                    save_checkpoint=save_checkpoint,
                    output_dir=run_dir,
                )
        except (Preempted, KeyboardInterrupt) as stop:
            how = "Preempted (SIGTERM)" if isinstance(stop, Preempted) else "Interrupted"
            print(f"\n{how}: {_saved_point(run_dir)}", file=stream)
            print(f"Resume with: sara-callbacks demo --resume {shlex.quote(str(run_dir))}", file=stream)
            stream.flush()
            raise
        seconds = time.perf_counter() - started

    _print_end(stream, result=result, start_epoch=start_epoch, seconds=seconds, model=model, run_dir=run_dir)
    _print_timings(stream, manager)
    if config is None and resume is None:
        print("\nNext: write this config to a file of your own, change its callbacks", file=stream)
        print("(sara-callbacks list shows them all), and run it:", file=stream)
        print("  sara-callbacks demo --print-config > my.toml", file=stream)
        print("  sara-callbacks demo --config my.toml", file=stream)
    stream.flush()
    return run_dir


def _load_run(
    config: str | os.PathLike[str] | None,
    epochs: int | None,
    output: str | os.PathLike[str] | None,
    resume: str | os.PathLike[str] | None,
) -> tuple[dict[str, Any], str, dict[str, float], dict[str, Any] | None]:
    """The config, its name in messages, the settings, and the snapshot of a resumed run (``None`` for a new one)."""
    if resume is not None:
        if config is not None or epochs is not None or output is not None:
            raise ConfigError(
                "demo --resume continues a run with its own config: --config, --epochs and --output cannot be given"
            )
        snapshot = _read_snapshot(pathlib.Path(resume))
        run = snapshot["run"]
        return dict(run["config"]), str(run["source"]), dict(run["settings"]), snapshot
    with contextlib.ExitStack() as stack:
        if config is None:
            source = stack.enter_context(importlib.resources.as_file(_embedded()))
            shown = "the embedded demo.toml"
        else:
            source = pathlib.Path(config)
            shown = str(config)
        raw = read_config(source)
    settings = _settings(raw.get("demo", {}), shown, epochs)
    _check_json(raw, shown)
    return raw, shown, settings, None


def _print_intro(
    stream: TextIO, shown: str, names: list[str], settings: Mapping[str, float], *, train: int, validation: int
) -> None:
    print("SARA callbacks demo: a logistic regression learns to separate two clouds of points,", file=stream)
    print(f"trained by SGD in pure Python on {train} points ({validation} more for validation).", file=stream)
    print(f"Callbacks from {shown}, by name: {', '.join(names) or 'none'}", file=stream)
    batches = (train + int(settings["batch_size"]) - 1) // int(settings["batch_size"])
    print(f"Up to {int(settings['epochs'])} epochs of {batches} batches.\n", file=stream)


def _print_timings(stream: TextIO, manager: CallbackManager) -> None:
    """The callbacks' timings, when they were measured (``--profile``)."""
    timings = manager.timings
    if timings is not None:
        print(f"\n{timings.table()}", file=stream)


def _print_end(
    stream: TextIO,
    *,
    result: FitResult,
    start_epoch: int,
    seconds: float,
    model: _LogisticRegression,
    run_dir: pathlib.Path,
) -> None:
    if result.last_epoch is None and start_epoch == 0:
        print("\nNo epoch ran.", file=stream)
    else:
        last = start_epoch - 1 if result.last_epoch is None else result.last_epoch
        how = f"stopped by {result.control.stop_source or 'a callback'}" if result.stopped else "as planned"
        print(f"\nTraining ended after epoch {last} ({how}), in {seconds:.1f} s.", file=stream)
        final = ", ".join(f"{key} {result.metrics[key]:.4f}" for key in _SHOWN if key in result.metrics)
        print(f"Model: {model}{'; ' + final if final else ''}", file=stream)
    print(f"\nRun folder: {_shown_path(run_dir)}", file=stream)
    for line in _describe_folder(run_dir):
        print(f"  {line}", file=stream)


# -- the snapshot: what a resume needs -------------------------------------------------------------------------------


class _Snapshot(BaseCallback):
    """Rewrites ``state.json`` after every epoch, once every other callback ended it (it saves a snapshot)."""

    saves_checkpoints = True  # called after the other callbacks, the checkpoint callback included

    def __init__(
        self,
        path: pathlib.Path,
        snapshot: dict[str, Any],
        manager: CallbackManager,
        model: _LogisticRegression,
        control: TrainingControl,
    ) -> None:
        self.path, self.snapshot, self.manager, self.model, self.control = path, snapshot, manager, model, control

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Save the end of ``epoch``: weights, callbacks' state, stop request (a preemption is none: it resumes)."""
        requests = [request for request in self.control.requests if request.source != Preempted.source]
        stop = {"reason": requests[0].reason, "source": requests[0].source} if requests else None
        self.snapshot.update(
            epoch=epoch, model=self.model.weights_dict(), callbacks=self.manager.state_dict(), stop=stop
        )
        _write_json(self.path, self.snapshot)


def _restore(
    run_dir: pathlib.Path, manager: CallbackManager, model: _LogisticRegression, control: TrainingControl
) -> tuple[dict[str, Any], int]:
    """Give the saved state of ``run_dir`` to the callbacks, the model and the control; the snapshot and next epoch."""
    snapshot = _read_snapshot(run_dir)  # again, now that no other demo writes the folder
    for stale in run_dir.glob(".state.json.*.tmp"):  # a run killed while it saved its snapshot
        stale.unlink()
    manager.load_state_dict(snapshot["callbacks"])
    model.load_weights(snapshot["model"])
    if snapshot["stop"] is not None:
        control.request_stop(str(snapshot["stop"]["reason"]), source=snapshot["stop"]["source"])
    return snapshot, 0 if snapshot["epoch"] is None else int(snapshot["epoch"]) + 1


def _write_json(path: pathlib.Path, value: object) -> None:
    """Write ``value`` as JSON through a temporary sibling and :func:`os.replace`: complete, or the previous file."""
    write_atomic(path, json.dumps(value, indent=1) + "\n")


def _lock_run(run_dir: pathlib.Path) -> WriterLock:
    """The run folder's lock, or a ``ConfigError`` naming the folder and the live demo that writes it."""
    try:
        return WriterLock.acquire(run_dir / _LOCK)
    except FileLockedError as locked:
        raise ConfigError(
            f"demo: the run folder {run_dir} is being written by {locked.holder}, a demo still running (lock file "
            f"{locked.path}); wait for it to end or stop it, then resume with sara-callbacks demo --resume "
            f"{shlex.quote(str(run_dir))}"
        ) from locked


@contextlib.contextmanager
def _run_lock(run_dir: pathlib.Path) -> Iterator[None]:
    """Hold the run folder's lock (see :func:`_lock_run`) for the block."""
    lock = _lock_run(run_dir)
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _sigterm_exits_143() -> Iterator[None]:
    """Outside ``fit`` (which turns the first SIGTERM into a stop), SIGTERM ends the demo with status 143.

    Before the training, and after it: a second SIGTERM while the demo unwinds and prints how to resume must not kill
    it by the signal (status -15) when its state is saved. Once the demo ends with 143, SIGTERM is ignored for the
    rest of the process: Python puts back the default action of a handled signal when it finalizes, not of an ignored
    one. The previous handler is restored otherwise.
    """
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_143)
    try:
        yield
    except SystemExit as ending:  # Preempted is a SystemExit
        if ending.code == _SIGTERM_STATUS:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the process ends at once, with 143
        else:
            signal.signal(signal.SIGTERM, previous)
        raise
    except BaseException:
        signal.signal(signal.SIGTERM, previous)
        raise
    signal.signal(signal.SIGTERM, previous)


def _exit_143(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: the process is ending, with 143
    raise SystemExit(_SIGTERM_STATUS)


def _write_plain_json(path: pathlib.Path, value: object) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


def _check_json(raw: Mapping[str, Any], shown: str) -> None:
    """The run's config goes into ``state.json``: refuse values that JSON cannot hold (TOML dates, say)."""
    try:
        json.dumps(raw, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"{shown}: the demo saves its config in state.json to resume, and JSON cannot hold it: {error}"
        ) from error


def _read_snapshot(run_dir: pathlib.Path) -> dict[str, Any]:
    state = run_dir / "state.json"
    if not state.is_file():
        what = "does not exist" if not run_dir.exists() else "holds no state.json: it is no demo run folder"
        raise ConfigError(f"demo --resume {run_dir}: the folder {what}; give the run folder a demo printed")
    try:
        snapshot = json.loads(state.read_text(encoding="utf-8"))
        if not isinstance(snapshot, dict) or not {"run", "epoch", "model", "callbacks", "stop"} <= set(snapshot):
            raise ValueError("not a snapshot of this version of the demo")
    except ValueError as error:
        raise ConfigError(f"demo --resume {run_dir}: {state} is not a demo snapshot ({error})") from error
    return snapshot


def _saved_point(run_dir: pathlib.Path) -> str:
    try:
        epoch = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))["epoch"]
    except (OSError, ValueError, KeyError):
        return "no state saved yet"
    return "stopped before the first epoch ended" if epoch is None else f"the state after epoch {epoch} is saved"


# -- the model and its data ------------------------------------------------------------------------------------------


class _LogisticRegression:
    """``p(y=1 | x) = sigmoid(w . x + b)``, trained by minibatch SGD on the log loss."""

    def __init__(self, *, learning_rate: float, pause: float) -> None:
        self.weights = [0.0, 0.0]
        self.bias = 0.0
        self.learning_rate = learning_rate
        self.pause = pause

    def __repr__(self) -> str:
        (a, b), c = self.weights, self.bias
        return f"p = sigmoid({a:.3f} x {'-' if b < 0 else '+'} {abs(b):.3f} y {'-' if c < 0 else '+'} {abs(c):.3f})"

    def _probability(self, x: float, y: float) -> float:
        z = self.weights[0] * x + self.weights[1] * y + self.bias
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def train_step(self, batch: Sequence[Point]) -> Metrics:
        """One SGD step on ``batch``; returns the batch's loss and accuracy, measured before the step."""
        gradient = [0.0, 0.0, 0.0]
        for x, y, label in batch:
            error = self._probability(x, y) - label
            gradient[0] += error * x
            gradient[1] += error * y
            gradient[2] += error
        metrics = self.evaluate(batch)
        step = self.learning_rate / len(batch)
        self.weights[0] -= step * gradient[0]
        self.weights[1] -= step * gradient[1]
        self.bias -= step * gradient[2]
        if self.pause:
            time.sleep(self.pause)
        return metrics

    def evaluate(self, points: Sequence[Point], prefix: str = "") -> Metrics:
        """The mean log loss and the accuracy on ``points``."""
        loss = correct = 0.0
        for x, y, label in points:
            probability = min(max(self._probability(x, y), 1e-12), 1.0 - 1e-12)
            loss -= math.log(probability if label else 1.0 - probability)
            correct += (probability >= 0.5) == bool(label)
        return {f"{prefix}loss": loss / len(points), f"{prefix}accuracy": correct / len(points)}

    def weights_dict(self) -> dict[str, Any]:
        """The weights, as JSON data."""
        return {"weights": list(self.weights), "bias": self.bias}

    def load_weights(self, saved: Mapping[str, Any]) -> None:
        """Restore :meth:`weights_dict`."""
        self.weights = [float(weight) for weight in saved["weights"]]
        self.bias = float(saved["bias"])


def _points(count: int, seed: int) -> list[Point]:
    """Two overlapping Gaussian clouds, centred on (-1, -1) (label 0) and (1, 1) (label 1)."""
    rng = random.Random(seed)
    points = []
    for index in range(count):
        label = index % 2
        centre = 1.0 if label else -1.0
        points.append((rng.gauss(centre, 1.2), rng.gauss(centre, 1.2), label))
    rng.shuffle(points)
    return points


def _split(points: list[Point]) -> tuple[list[Point], list[Point]]:
    cut = len(points) * 4 // 5
    return points[:cut], points[cut:]


class _Batches:
    """The training points in batches, shuffled anew at every epoch (every iteration, from ``first_epoch`` on).

    Each epoch's order depends on the seed and the epoch only, so that a resumed run sees the batches an
    uninterrupted one would.
    """

    def __init__(self, points: list[Point], size: int, seed: int, *, first_epoch: int = 0) -> None:
        self.points = list(points)
        self.size = size
        self.seed = seed
        self.epoch = first_epoch

    def __len__(self) -> int:
        return (len(self.points) + self.size - 1) // self.size

    def __iter__(self) -> Iterator[list[Point]]:
        points = list(self.points)
        random.Random(f"{self.seed}:{self.epoch}").shuffle(points)
        self.epoch += 1
        for start in range(0, len(points), self.size):
            yield points[start : start + self.size]


# -- settings, folders, output ---------------------------------------------------------------------------------------


def _embedded() -> Any:
    return importlib.resources.files(__package__) / "demo.toml"


def embedded_config() -> str:
    """The text of the embedded ``demo.toml``, as ``sara-callbacks demo --print-config`` writes it."""
    text: str = _embedded().read_text(encoding="utf-8")
    return text


def _settings(table: object, shown: str, epochs: int | None) -> dict[str, float]:
    if not isinstance(table, dict):
        raise ConfigError(f"{shown}: demo: expected a table of settings, got {type(table).__name__}", key="demo")
    settings = dict(DEFAULTS)
    for key, value in table.items():
        if key not in DEFAULTS:
            raise ConfigError(
                f"{shown}: demo.{key}: unknown setting; the demo's settings are: {', '.join(DEFAULTS)}",
                key=f"demo.{key}",
            )
        integer = key in _INTEGERS
        minimum = 0 if key in ("seed", "pause_seconds") else 1 if integer else 0
        strict = key == "learning_rate"
        if (
            not isinstance(value, int if integer else (int, float))
            or isinstance(value, bool)
            or value < minimum
            or (strict and value <= 0)
        ):
            expected = f"a whole number >= {minimum}" if integer else ("a number > 0" if strict else "a number >= 0")
            raise ConfigError(f"{shown}: demo.{key}: expected {expected}, got {value!r}", key=f"demo.{key}")
        settings[key] = value
    if epochs is not None:
        settings["epochs"] = epochs
    return settings


def _item_name(item: object) -> str:
    """The plugin name of a config item."""
    return str(item.get("name")) if isinstance(item, dict) else str(item)


def _run_folder(output: str | os.PathLike[str] | None) -> pathlib.Path:
    if output is not None:
        folder = pathlib.Path(output)
        if folder.is_dir() and any(folder.iterdir()):
            if (folder / "state.json").is_file():
                raise ConfigError(
                    f"demo --output {folder}: the folder holds another run (its state.json); continue it with "
                    f"sara-callbacks demo --resume {shlex.quote(str(folder))}, or give a new or empty folder"
                )
            raise ConfigError(f"demo --output {folder}: the folder is not empty; give a new or empty folder")
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in range(1, 1000):
        folder = pathlib.Path("runs", stamp if suffix == 1 else f"{stamp}-{suffix}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"runs/{stamp}: no free run folder name")  # pragma: no cover


@contextlib.contextmanager
def _logging_into(path: pathlib.Path, stream: TextIO) -> Iterator[None]:
    """Send the library's log records to ``path`` (INFO and up) and to ``stream`` (WARNING and up)."""
    logger = logging.getLogger("altametris.sara")
    into_file = logging.FileHandler(path, encoding="utf-8")
    into_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    into_stream = logging.StreamHandler(stream)
    into_stream.setLevel(logging.WARNING)
    into_stream.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(into_file)
    logger.addHandler(into_stream)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(into_file)
        logger.removeHandler(into_stream)
        logger.setLevel(level)
        logger.propagate = propagate
        into_file.close()


def _shown_path(path: pathlib.Path) -> str:
    absolute = path.absolute()
    with contextlib.suppress(ValueError):
        return str(absolute.relative_to(pathlib.Path.cwd())) + os.sep
    return str(absolute) + os.sep


def _describe_folder(folder: pathlib.Path) -> list[str]:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    names = [str(path.relative_to(folder)) for path in files]
    width = max((len(name) for name in names), default=0)
    return [f"{name:<{width}}  {_describe_file(path)}" for name, path in zip(names, files)]


def _describe_file(path: pathlib.Path) -> str:
    try:
        if path.suffix == ".csv":
            with open(path, encoding="utf-8", newline="") as file:
                rows = list(csv.reader(file))
            header = rows[0] if rows else []
            return f"{len(rows) - 1} rows; columns: {', '.join(header)}"
        if path.suffix == ".jsonl":
            return f"{len(path.read_text(encoding='utf-8').splitlines())} JSON lines"
        if path.suffix == ".log":
            return f"{len(path.read_text(encoding='utf-8').splitlines())} log lines (logging, INFO and up)"
        if path.name == "state.json":
            return "the run's snapshot, to resume it: sara-callbacks demo --resume RUN_DIR"
        if path.suffix == ".json":
            saved = json.loads(path.read_text(encoding="utf-8"))
            weights = ", ".join(f"{weight:.3f}" for weight in saved["weights"])
            return f"a checkpoint: weights (w = [{weights}], b = {saved['bias']:.3f}) and the callbacks' state"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"{path.stat().st_size} bytes"
