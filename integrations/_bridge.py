"""What every bridge shares: the manager, metric conversion, the lifecycle with its stops, the state snapshot.

A framework's callback (one per module of this package) translates its framework's events into calls of one
:class:`Bridge`, which owns everything that does not depend on the framework:

* the :class:`~altametris.sara.core.base_callback.CallbackManager`, built from a manager or a config source;
* the context keywords passed to every hook, with a :class:`~altametris.sara.core.control.TrainingControl`;
* the epoch's metrics: the means of the batches' numbers (or the framework's own epoch figures), plus that epoch's
  validation only, every value a plain ``float``, validation names ``val_*``;
* stops: :class:`~altametris.sara.core.control.StopTraining` raised by a callback becomes a stop request, and every
  check is agreed across ranks (:func:`~altametris.sara.core.distributed.agree_stop`) so all stop at one point;
* the state snapshot: the manager's ``state_dict()`` gathered after every callback's ``on_epoch_end`` of an epoch
  (or inside ``save_checkpoint`` when the ``checkpoint`` built-in writes one from its ``on_epoch_end``, checkpoint
  writers running last), which is what the framework's checkpoints hold; a checkpoint written in the middle of an
  epoch holds the state of that moment and the epoch's sums so far: the frameworks that checkpoint there (Lightning,
  the HF Trainer) resume at the next batch, so a resumed training ends as an uninterrupted one;
* preemption (:mod:`~altametris.sara.core.preemption`): while a training runs, SIGTERM is a stop request after the
  current batch; :meth:`Bridge.stop_after_batch` then runs ``on_train_end`` and raises
  :class:`~altametris.sara.core.control.Preempted` (exit status 143) from the framework's batch event, dropping the
  partial epoch as ``fit`` does: the framework's last checkpoint is the resume point.

Nothing here is public.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable

from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.control import Preempted, StopTraining, TrainingControl
from altametris.sara.core.distributed import agree_stop, rank_info
from altametris.sara.core.exceptions import SaraError, StateError, TrainingError
from altametris.sara.core.files import write_atomic
from altametris.sara.core.preemption import is_preemption, sigterm_stops
from altametris.sara.core.trainers import warn_unsupplied

if TYPE_CHECKING:
    import pathlib
    import types

    from altametris.sara.core.base_callback import ConfigSource
    from altametris.sara.core.hookspecs import Metrics

__all__: list[str] = []

STATE_FORMAT = 2
"""The version of what :meth:`Bridge.state` returns, stored with it.

2: a checkpoint written inside an epoch holds the callbacks' state of that moment (1: of the last epoch's end).
"""

PREEMPTED = "preempted: SIGTERM received; the training stops after the current batch"
"""The stop reason of a preemption in a bridge (``control.stop_reason``)."""


def build_manager(source: CallbackManager | ConfigSource, *, bridge: str) -> CallbackManager:
    """``source`` itself when it is a manager, else the manager its config builds.

    Raises:
        TrainingError: when ``source`` is neither a manager, a mapping nor a path.
        SaraError: whatever :meth:`~altametris.sara.core.base_callback.CallbackManager.from_config` raises.
    """
    if isinstance(source, CallbackManager):
        return source
    if isinstance(source, (Mapping, str, os.PathLike)):
        return CallbackManager.from_config(source)
    raise TrainingError(
        f"{bridge}: SaraCallback(source) expects a CallbackManager, a config mapping or the path of a .toml, "
        f".yaml or .json config, got {type(source).__name__} {source!r:.80}",
        hook=None,
    )


def to_float(value: object) -> float | None:  # noqa: PLR0911 - one return per kind of number
    """A metric as a plain ``float``: Python and numpy numbers, one-element arrays and tensors; ``None`` otherwise.

    Example:
        >>> to_float(3), to_float(0.5), to_float(True), to_float("0.5"), to_float(None)
        (3.0, 0.5, None, None, None)
    """
    if type(value) is float:
        return value
    if value is None or isinstance(value, (bool, str, bytes)):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    shape = getattr(value, "shape", None)
    if shape is None:
        return None
    try:
        count = 1
        for size in shape:
            count *= int(size)
        if count != 1:
            return None
        item = getattr(value, "item", None)  # tensors and arrays of any rank hand their one number out as .item()
        return float(item() if callable(item) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def plain_metrics(metrics: Mapping[str, object] | None) -> Metrics:
    """The numbers of ``metrics`` as plain floats, in order; anything that is not one number is left out."""
    result: Metrics = {}
    if metrics:
        for key, value in metrics.items():
            number = to_float(value)
            if number is not None:
                result[str(key)] = number
    return result


def validation_metrics(metrics: Mapping[str, object] | None, *, strip: str = "") -> Metrics:
    """Validation numbers named as SARA names them: ``val_<name>`` (a framework's ``strip`` prefix removed first).

    Example:
        >>> validation_metrics({"eval_loss": 0.5, "val_acc": 0.9, "epoch": 1.0, "f1": 2}, strip="eval_")
        {'val_loss': 0.5, 'val_acc': 0.9, 'val_epoch': 1.0, 'val_f1': 2.0}
    """
    result: Metrics = {}
    for key, value in plain_metrics(metrics).items():
        name = key[len(strip) :] if strip and key.startswith(strip) else key
        result[name if name.startswith("val_") else f"val_{name}"] = value
    return result


class Bridge:
    """The SARA side of one framework callback: a training's lifecycle, metrics, stops and state snapshot.

    The framework callback calls :meth:`start`, then per epoch :meth:`epoch_start`, :meth:`batch_start` /
    :meth:`batch_end`, optionally :meth:`validation_start` / :meth:`validation_end`, :meth:`epoch_end`, and finally
    :meth:`end`, or :meth:`exception`. Each call runs the manager's hook with the training's context keywords; a
    :class:`StopTraining` raised by a callback becomes a stop request. :meth:`should_stop` is the check, agreed across
    ranks: call it on every rank at the same points.
    """

    def __init__(self, source: CallbackManager | ConfigSource, *, framework: str, resume: str = "") -> None:
        self.framework = framework
        self.resume = resume  # how this framework resumes, for the preemption's message
        self.manager = build_manager(source, bridge=framework)
        self.control = TrainingControl()
        self.context: dict[str, Any] = {"control": self.control}
        self.running = False
        self.epoch: int | None = None
        self.last_epoch: int | None = None
        self.metrics: Metrics = {}
        self.validation: Metrics | None = None
        self.in_validation = False
        self.snapshot: dict[str, Any] = {}
        self.snapshot_epoch: int | None = None
        self._ending: int | None = None  # the epoch whose on_epoch_end is running
        self.restored_epoch: int | None = None
        self._pending: Mapping[str, Any] | None = None
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._agreed = False
        self.global_step = 0  # the training batches completed, across epochs and resumes
        self.resumed_from: str | None = None  # the checkpoint whose state load() gave, for on_checkpoint_load
        self.written: list[str] = []  # checkpoints written during the current hook call, announced after it
        self.preempted = False  # set by the SIGTERM handler while the training runs
        self._signals = contextlib.ExitStack()  # the SIGTERM handler, from start() to end() or exception()
        self._trainer_frames: frozenset[tuple[int, types.CodeType]] = frozenset()

    # -- the lifecycle --------------------------------------------------------------------------------------------

    def start(self, *, start_epoch: int = 0, global_step: int | None = None, **context: Any) -> None:
        """``on_checkpoint_load`` when resumed, then ``on_train_start``.

        ``context`` (less ``None`` values) and a new control object go to every hook.

        Args:
            start_epoch: the first epoch this run trains.
            global_step: the training batches completed before it; by default the restored state's.
            context: the context keywords of every hook.
        """
        warn_unsupplied(self.manager.callbacks, self.framework)
        self._signals.close()  # an earlier training that ended where no hook told us
        self.preempted = False
        self._trainer_frames = _trainer_frames()
        self._signals.enter_context(sigterm_stops(self, PREEMPTED, alive=self._training_alive))
        self.control = TrainingControl()
        self.context = {key: value for key, value in context.items() if value is not None}
        self.context["control"] = self.control
        self.running, self.epoch, self.last_epoch, self.metrics = True, None, None, {}
        ranks = rank_info()
        self._agreed = ranks.distributed
        self.global_step = self.manager.global_step if global_step is None else global_step
        if self.snapshot_epoch is None:
            self.snapshot = self._gather()
        resumed, self.resumed_from = self.resumed_from, None
        if resumed is not None:
            self._run(self.manager.on_checkpoint_load, resumed)
        try:
            self.manager.on_train_start(
                start_epoch=start_epoch,
                global_step=self.global_step,
                rank=ranks.rank,
                world_size=ranks.world_size,
                **self.context,
            )
        except StopTraining as stop:
            self._stopped(stop)
        self.announce()

    def epoch_start(self, epoch: int) -> None:
        """``on_epoch_start(epoch)``; the epoch's sums and validation are reset."""
        self.epoch, self.validation, self.in_validation = epoch, None, False
        self._sums, self._counts = {}, {}
        pending, self._pending = self._pending, None
        if pending is not None and pending.get("epoch") == epoch:  # resumed inside this epoch: its batches so far
            self._sums = {str(key): float(value) for key, value in dict(pending.get("sums") or {}).items()}
            self._counts = {str(key): int(value) for key, value in dict(pending.get("counts") or {}).items()}
        self._run(self.manager.on_epoch_start, epoch)

    def reenter(self, epoch: int) -> None:
        """Replay the start and the validation of ``epoch``, which the framework resumed at its end.

        A checkpoint written by the epoch's validation, before the epoch's end, holds the batches' sums and the
        validation metrics: ``on_epoch_end`` then gets what an uninterrupted training passes.
        """
        pending = self._pending if self._pending is not None and self._pending.get("epoch") == epoch else None
        validation = pending.get("validation") if pending is not None else None
        self.epoch_start(epoch)
        if isinstance(validation, Mapping):
            self.validation_start()
            self.validation_end({str(key): float(value) for key, value in validation.items()})

    def batch_start(self, batch: int, global_step: int | None = None) -> None:
        """``on_batch_start(batch)``; ``global_step`` (the framework's count, else the bridge's) for its hooks."""
        if global_step is not None:
            self.global_step = global_step
        try:
            self.manager.on_batch_start(batch, global_step=self.global_step, **self.context)
        except StopTraining as stop:
            self._stopped(stop)
        self.announce()

    def in_batch(self, hook: Callable[..., None], batch: int, **extra: Any) -> None:
        """A hook inside a training batch (``on_after_backward``, the optimizer hooks), with ``global_step``.

        ``extra`` is more context for this call (``optimizer=``).
        """
        try:
            hook(batch, global_step=self.global_step, **self.context, **extra)
        except StopTraining as stop:
            self._stopped(stop)
        self.announce()

    def validation_batch(self, hook: Callable[..., None], *args: Any) -> None:
        """``on_validation_batch_start(batch)`` or ``on_validation_batch_end(batch, metrics)``, inside a validation."""
        if not self.in_validation:
            return
        self._run(hook, *args)

    def batch_end(self, batch: int, metrics: Metrics) -> None:
        """``on_batch_end(batch, metrics)``; the numbers are summed for the epoch's means."""
        sums, counts = self._sums, self._counts
        for key, value in metrics.items():
            if key in sums:
                sums[key] += value
                counts[key] += 1
            else:
                sums[key] = value
                counts[key] = 1
        try:
            self.manager.on_batch_end(batch, metrics, global_step=self.global_step, **self.context)
        except StopTraining as stop:
            self._stopped(stop)
        self.global_step += 1
        self.announce()

    def validation_start(self) -> None:
        """``on_validation_start``."""
        self.in_validation = True
        self._run(self.manager.on_validation_start)

    def validation_end(self, metrics: Metrics) -> None:
        """``on_validation_end(metrics)``: ``metrics`` are this epoch's validation, added to its epoch metrics."""
        if not self.in_validation:
            self.validation_start()
        self.in_validation = False
        self.validation = dict(metrics)
        self._run(self.manager.on_validation_end, metrics)

    def epoch_end(self, epoch: int, training: Metrics | None = None) -> Metrics:
        """``on_epoch_end(epoch, metrics)``, then the state snapshot; returns the epoch's metrics.

        Args:
            epoch: the epoch, 0-indexed.
            training: the framework's own training figures of the epoch, which win over the means of the batches'
                numbers (Keras's epoch logs, Lightning's epoch-level logged values).
        """
        counts = self._counts
        metrics: Metrics = {key: total / counts[key] for key, total in self._sums.items()}
        if training:
            metrics.update(training)
        if self.validation:
            metrics.update(self.validation)
        self.metrics, self.last_epoch = metrics, epoch
        self.manager.global_step = self.global_step  # in the state that this epoch's checkpoints hold
        self._ending = epoch  # a checkpoint saved from inside on_epoch_end holds this epoch's state (see state())
        try:
            self._run(self.manager.on_epoch_end, epoch, metrics)
        finally:
            self._ending = None
        self.snapshot, self.snapshot_epoch = self._gather(), epoch
        return metrics

    def end(self) -> None:
        """``on_train_end``, with the last epoch's ``metrics`` (a stop raised here is only recorded).

        Raises:
            Preempted: after ``on_train_end``, when SIGTERM stopped the training (exit status 143).
        """
        if not self.running:
            return
        self.running = False
        with self._signals:  # a second SIGTERM still ends a hung on_train_end
            try:
                self.manager.on_train_end(metrics=self.metrics, **self.context)
            except StopTraining as stop:
                self._stopped(stop)
            self.announce()
        if self.preempted:
            ended = self.last_epoch
            done = "before its first epoch ended" if ended is None else f"after epoch {ended}"
            message = f"{self.framework}: preempted (SIGTERM) {done}: the training ended cleanly; {self.resume}"
            logging.getLogger(__name__).warning("%s", message)
            raise Preempted(message, last_epoch=ended)

    def exception(self, error: BaseException) -> None:
        """``on_exception(error)`` once per training; its own failures are logged by the manager, never raised."""
        if not self.running:
            return
        self.running = False
        try:
            with self._signals:
                self.manager.on_exception(error, **self.context)
        except Exception as cleanup_error:  # not a callback's failure (those are logged): say so, keep the error
            logging.getLogger(__name__).error(
                "%s: on_exception failed (%s: %s); re-raising the error that ended the training",
                self.framework,
                type(cleanup_error).__name__,
                cleanup_error,
                exc_info=cleanup_error,
            )

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run ``on_exception`` when the block (the call that runs the training) raises; the error goes on."""
        try:
            yield
        except BaseException as error:
            self.exception(error)
            raise

    def should_stop(self) -> bool:
        """Whether the training should stop: a stop request on any rank (a collective under several processes)."""
        if self._agreed:
            return agree_stop(self.control)
        return self.control.should_stop

    def stop_after_batch(self) -> bool:
        """The stop check after a training batch: whether the training should stop (agreed across ranks).

        A preemption (SIGTERM on this rank, or on the rank that asked) does not wait for the epoch's end: the
        training ends here, with ``on_train_end``, and :class:`~altametris.sara.core.control.Preempted` unwinds the
        framework's loop from inside its batch event, as ``fit`` drops the partial epoch. The framework's last
        checkpoint is then the resume point, as after any kill.

        Raises:
            Preempted: after ``on_train_end``, when the stop is a preemption.
        """
        if not self.should_stop():
            return False
        if is_preemption(self):
            self.end()
        return True

    def _training_alive(self, frame: types.FrameType | None) -> bool:
        """Whether the framework call that runs the training is still on the interrupted stack ``frame``.

        A training that failed without :meth:`guard` tells the bridge nothing: the handler then hands the signal on.
        """
        while frame is not None:
            if (id(frame), frame.f_code) in self._trainer_frames:
                return True
            frame = frame.f_back
        return False

    # -- state ----------------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What a framework checkpoint keeps: the snapshot of the last completed ``on_epoch_end``, and its epoch.

        A checkpoint written from inside ``on_epoch_end`` (the ``checkpoint`` built-in calls ``save_checkpoint``
        there, after every other callback's ``on_epoch_end``: checkpoint writers run last) holds the state gathered
        at that moment: the whole epoch's, the checkpoint being written included. One written inside an epoch (a
        step checkpoint, or one after the epoch's validation) holds the callbacks' state of that moment and the
        epoch's sums so far (``pending``): the framework resumes at the next batch, and the callbacks go on from
        where they were.
        """
        if self._ending is not None:
            return copy.deepcopy({"format": STATE_FORMAT, "epoch": self._ending, "callbacks": self._gather()})
        inside = self.running and self.epoch is not None and self.epoch != self.last_epoch
        kept = not inside and (self.snapshot_epoch is not None or bool(self.snapshot))
        snapshot = self.snapshot if kept else self._gather()
        state: dict[str, Any] = {"format": STATE_FORMAT, "epoch": self.snapshot_epoch, "callbacks": snapshot}
        if inside:
            # What resuming at the next batch needs to end the epoch as planned.
            state["pending"] = {
                "epoch": self.epoch,
                "sums": dict(self._sums),
                "counts": dict(self._counts),
                "validation": None if self.validation is None else dict(self.validation),
            }
        return copy.deepcopy(state)

    def load(self, state: Mapping[str, Any], *, where: str, path: str | None = None) -> None:
        """Give the manager the callbacks' state of :meth:`state`, read back from a checkpoint.

        The next :meth:`start` passes ``path`` (else ``where``) to ``on_checkpoint_load``.

        Raises:
            StateError: when ``state`` is not what :meth:`state` returns (naming ``where`` it was read).
        """
        callbacks = state.get("callbacks") if isinstance(state, Mapping) else None
        epoch = state.get("epoch") if isinstance(state, Mapping) else None
        if not isinstance(callbacks, Mapping) or not (epoch is None or isinstance(epoch, int)):
            raise StateError(
                f"{self.framework}: the SARA state in {where} is not what SaraCallback saves (a mapping with "
                f"'format', 'epoch' and 'callbacks'), got {str(state)[:120]!r}; resume from a checkpoint written by a "
                f"training that had SaraCallback, or start a fresh one"
            )
        self.manager.load_state_dict(callbacks)
        self.resumed_from = where if path is None else path
        self.snapshot, self.snapshot_epoch, self.restored_epoch = copy.deepcopy(dict(callbacks)), epoch, epoch
        pending = state.get("pending")
        self._pending = copy.deepcopy(dict(pending)) if isinstance(pending, Mapping) else None

    def _gather(self) -> dict[str, Any]:
        return copy.deepcopy(self.manager.state_dict())

    # -- plumbing -------------------------------------------------------------------------------------------------

    def _run(self, hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args, **self.context)
        except StopTraining as stop:
            self._stopped(stop)
        self.announce()

    def saved(self, path: str) -> None:
        """Note a resumable checkpoint holding the callbacks' state, written at ``path``.

        ``on_checkpoint_save`` follows once the hook that wrote it returned (outside any hook: :meth:`announce`).
        """
        self.written.append(str(path))

    def announce(self) -> None:
        """``on_checkpoint_save(path)`` for each checkpoint noted by :meth:`saved` and not announced yet.

        Called after a hook, not from inside ``save_checkpoint``: the callback that saved is done, and a failure in
        ``on_checkpoint_save`` is its own callback's, not the saver's.
        """
        written = self.written
        while written:
            path = written.pop(0)
            try:
                self.manager.on_checkpoint_save(path, **self.context)
            except StopTraining as stop:
                self._stopped(stop)

    def _stopped(self, stop: StopTraining) -> None:
        self.control.request_stop(stop.reason or "a callback raised StopTraining", source=stop.source)


def _trainer_frames() -> frozenset[tuple[int, types.CodeType]]:
    """The first three frames outside SARA that called the bridge's start: one of them runs the whole training."""
    found: set[tuple[int, types.CodeType]] = set()
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and len(found) < 3:
        if not str(frame.f_globals.get("__name__", "")).startswith("altametris.sara."):
            found.add((id(frame), frame.f_code))
        frame = frame.f_back
    return frozenset(found)


def write_json(path: pathlib.Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary sibling and :func:`os.replace` (complete or untouched)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1) + "\n")


def read_json(path: pathlib.Path, *, framework: str) -> Any:
    """The JSON of ``path``, or a :class:`~altametris.sara.core.exceptions.StateError` naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StateError(
            f"{framework}: cannot read the SARA state file {str(path)!r}: {type(error).__name__}: {error}; delete it "
            f"to start the callbacks afresh, or resume from a checkpoint whose state file is intact"
        ) from error


class MissingFrameworkError(SaraError, ImportError):
    """A bridge module was imported without its framework: says which extra to install.

    An :class:`ImportError` too, so that ``pytest.importorskip`` and ``try: import ... except ImportError`` work.
    """


def missing_framework(framework: str, extra: str, error: ImportError) -> MissingFrameworkError:
    """The error of a bridge whose framework is not installed: what to install."""
    return MissingFrameworkError(
        f"altametris.sara.integrations.{extra} needs {framework}, which is not installed ({error}); install it with "
        f"pip install 'sara-callbacks[{extra}]'"
    )
