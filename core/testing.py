"""A testing kit for callback authors: run a callback through a simulated training, record it, check it conforms.

Nothing here needs a model, a framework or pytest:

* :func:`simulate` runs callbacks through the reference loop :func:`~altametris.sara.core.loop.fit` for a few epochs
  and batches with made-up metrics, optionally failing or asking for a stop at a chosen hook, and returns a
  :class:`Recording` of every hook call, in order;
* :class:`EventRecorder` is the callback that records them; put it in any manager, also a real trainer's;
* :func:`check_callback` verifies that a callback fits the contract: hook signatures that fit the hookspecs, no
  misspelt hook, constructor parameters that ``sara-callbacks show`` and the config checks can read, and a state that
  survives a JSON round trip. It raises :class:`~altametris.sara.core.exceptions.ConformanceError` listing every
  problem.

With pytest, the plugin that ``pip install sara-callbacks`` registers (``pytest11`` entry point ``sara``) adds the
fixtures ``sara_simulate`` (:func:`simulate`, writing into the test's ``tmp_path``) and ``sara_recorder`` (a fresh
:class:`EventRecorder`).

Example:
    >>> from altametris.sara.core.base_callback import BaseCallback
    >>> class Count(BaseCallback):
    ...     def __init__(self):
    ...         self.batches = 0
    ...     def on_batch_end(self, batch, metrics):
    ...         self.batches += 1
    >>> recording = simulate(Count(), epochs=2, batches=3)
    >>> recording.callbacks[0].batches
    6
    >>> recording.hooks[:4]
    ['on_train_start', 'on_epoch_start', 'on_batch_start', 'on_batch_end']
    >>> recording = simulate(Count(), fail_at=("on_batch_end", 1, 0))
    >>> recording.hooks[-2:], type(recording.error).__name__
    (['on_batch_end', 'on_exception'], 'TrainingError')
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Union, overload

from ._conformance import check_callback, conformance_problems
from .base_callback import BaseCallback, CallbackManager
from .exceptions import TrainingError
from .hookspecs import HOOKS

if TYPE_CHECKING:
    import os

    from .control import TrainingControl
    from .hookspecs import Metrics
    from .loop import FitResult

__all__ = [
    "BatchMetrics",
    "Event",
    "EventRecorder",
    "HookPoint",
    "Recording",
    "SimulatedFailure",
    "ValidationMetrics",
    "check_callback",
    "conformance_problems",
    "simulate",
]

BatchMetrics = Union["Metrics", Callable[[int, int], "Metrics"]]
"""A batch's metrics for :func:`simulate`: one dict for every batch, or a function ``(epoch, batch) -> metrics``."""

ValidationMetrics = Union["Metrics", Callable[[int], "Metrics"]]
"""The validation metrics for :func:`simulate`: one dict for every epoch, or a function ``epoch -> metrics``."""

_EPOCH_HOOKS = frozenset(HOOKS) - {"on_train_start", "on_train_end", "on_exception"}
_BATCH_HOOKS = frozenset({"on_batch_start", "on_batch_end"})
# fit()'s own arguments that a test may want to give through ``context``.
_FIT_KEYWORDS = ("model", "config", "control", "save_checkpoint", "output_dir")


class Event(NamedTuple):
    """One hook call, as a callback saw it.

    Attributes:
        hook: the hook's name, such as ``"on_batch_end"``.
        epoch: the epoch it belongs to (``None`` for ``on_train_start``, ``on_train_end`` and outside any epoch).
        batch: the batch it belongs to (batch hooks, and ``on_exception`` during a batch), else ``None``.
        arguments: the hookspec's arguments by name (``{"batch": 0, "metrics": {...}}``); metrics are copies.
        context: the trainer's context keywords (``model``, ``control`` ...), as passed.
    """

    hook: str
    epoch: int | None
    batch: int | None
    arguments: dict[str, Any]
    context: dict[str, Any]

    def __str__(self) -> str:
        where = ", ".join(
            f"{name} {value}" for name, value in (("epoch", self.epoch), ("batch", self.batch)) if value is not None
        )
        return self.hook + (f" ({where})" if where else "")


class EventRecorder(BaseCallback):
    """Record every hook call it receives, with the epoch and batch it belongs to, in order.

    Put it first in a manager to record what the trainer passes, before other callbacks change the metrics.

    Attributes:
        events: every :class:`Event` so far.

    Example:
        >>> recorder = EventRecorder()
        >>> manager = CallbackManager([recorder])
        >>> manager.on_epoch_start(0)
        >>> manager.on_batch_end(3, {"loss": 0.5}, lr=0.1)
        >>> [str(event) for event in recorder.events]
        ['on_epoch_start (epoch 0)', 'on_batch_end (epoch 0, batch 3)']
        >>> recorder.events[-1].arguments, recorder.events[-1].context
        ({'batch': 3, 'metrics': {'loss': 0.5}}, {'lr': 0.1})
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._epoch: int | None = None
        self._batch: int | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(events={len(self.events)})"

    @property
    def hooks(self) -> list[str]:
        """The hooks' names, in the order they were called."""
        return [event.hook for event in self.events]

    @property
    def epoch(self) -> int | None:
        """The epoch of the latest epoch hook; ``None`` before the first epoch and after ``on_train_end``."""
        return self._epoch

    def clear(self) -> None:
        """Forget every event."""
        self.events.clear()
        self._epoch = self._batch = None

    def _record(self, hook: str, arguments: dict[str, Any], context: dict[str, Any]) -> None:
        if "metrics" in arguments and isinstance(arguments["metrics"], Mapping):
            arguments["metrics"] = dict(arguments["metrics"])
        batch = self._batch if hook in _BATCH_HOOKS or hook == "on_exception" else None
        self.events.append(Event(hook, self._epoch, batch, arguments, dict(context)))

    def on_train_start(self, **kwargs: Any) -> None:
        """Record ``on_train_start``."""
        self._epoch = self._batch = None
        self._record("on_train_start", {}, kwargs)

    def on_train_end(self, **kwargs: Any) -> None:
        """Record ``on_train_end``."""
        self._epoch = self._batch = None
        self._record("on_train_end", {}, kwargs)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Record ``on_epoch_start``."""
        self._epoch, self._batch = epoch, None
        self._record("on_epoch_start", {"epoch": epoch}, kwargs)

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Record ``on_epoch_end``."""
        self._epoch, self._batch = epoch, None
        self._record("on_epoch_end", {"epoch": epoch, "metrics": metrics}, kwargs)

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        """Record ``on_batch_start``."""
        self._batch = batch
        self._record("on_batch_start", {"batch": batch}, kwargs)

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Record ``on_batch_end``."""
        self._batch = batch
        self._record("on_batch_end", {"batch": batch, "metrics": metrics}, kwargs)

    def on_validation_start(self, **kwargs: Any) -> None:
        """Record ``on_validation_start``."""
        self._batch = None
        self._record("on_validation_start", {}, kwargs)

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        """Record ``on_validation_end``."""
        self._record("on_validation_end", {"metrics": metrics}, kwargs)

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Record ``on_exception``."""
        self._record("on_exception", {"error": error}, kwargs)


class SimulatedFailure(RuntimeError):
    """What :func:`simulate` raises at its ``fail_at`` point unless given another error.

    It stands for a trainer's or a callback's own exception, so it is deliberately no
    :class:`~altametris.sara.core.exceptions.SaraError`.
    """


class HookPoint(NamedTuple):
    """A point of a simulated training: a hook, and optionally the epoch and the batch (both 0-indexed).

    ``None`` matches any epoch or batch: ``HookPoint("on_epoch_end")`` is the first ``on_epoch_end``.
    :func:`simulate` also takes the plain forms ``"on_train_end"``, ``("on_epoch_end", 1)`` and
    ``("on_batch_end", 1, 2)``.
    """

    hook: str
    epoch: int | None = None
    batch: int | None = None

    def __str__(self) -> str:
        return str(Event(self.hook, self.epoch, self.batch, {}, {}))


PointLike = Union[HookPoint, str, "tuple[str]", "tuple[str, int | None]", "tuple[str, int | None, int | None]"]
"""What :func:`simulate` accepts for ``fail_at`` and ``stop_at``."""


class Recording(Sequence[Event]):
    """What :func:`simulate` returns: every hook call in order, and how the training ended.

    It is a sequence of :class:`Event`.

    Attributes:
        events: every hook call, in order.
        callbacks: the callbacks under test, in order (the recorder and the simulation's own are left out).
        manager: the manager that ran them (its ``state_dict()`` is theirs).
        control: the training's control object.
        result: what :func:`~altametris.sara.core.loop.fit` returned, ``None`` when the training failed.
        error: the exception that ended the training at ``fail_at``, as the trainer saw it (a callback's failure
            is a :class:`~altametris.sara.core.exceptions.TrainingError` whose ``__cause__`` is the injected error),
            ``None`` when it did not fail.
    """

    def __init__(
        self,
        *,
        events: list[Event],
        callbacks: list[BaseCallback],
        manager: CallbackManager,
        control: TrainingControl,
        result: FitResult | None,
        error: BaseException | None,
    ) -> None:
        self.events = events
        self.callbacks = callbacks
        self.manager = manager
        self.control = control
        self.result = result
        self.error = error

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | Sequence[Event]:
        return self.events[index]

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        ending = f"error={self.error!r}" if self.error is not None else f"stopped={self.stopped!r}"
        return f"{type(self).__name__}(events={len(self.events)}, {ending})"

    @property
    def hooks(self) -> list[str]:
        """The hooks' names, in the order they were called."""
        return [event.hook for event in self.events]

    @property
    def failed(self) -> bool:
        """Whether the training ended with the error of ``fail_at``."""
        return self.error is not None

    @property
    def stopped(self) -> bool:
        """Whether a stop was requested (by ``stop_at`` or by a callback)."""
        return self.control.should_stop

    @property
    def stop_reason(self) -> str | None:
        """The first stop request's reason, when there is one."""
        return self.control.stop_reason

    def of(self, hook: str) -> list[Event]:
        """The calls of ``hook``, in order.

        Raises:
            TrainingError: when ``hook`` is no hook (a misspelling would otherwise match nothing).
        """
        _check_hook(hook, "Recording.of()")
        return [event for event in self.events if event.hook == hook]


class _Injector(BaseCallback):
    """The simulation's own callback, last in the list: fails or asks for a stop at the chosen points.

    Error messages name it ``'simulate'``: the failure comes from the simulation, not from a callback under test.
    """

    def __init__(
        self,
        recorder: EventRecorder,
        fail_at: HookPoint | None,
        error: BaseException,
        stop_at: HookPoint | None,
    ) -> None:
        self.recorder = recorder
        self.fail_at = fail_at
        self.error = error
        self.stop_at = stop_at
        self.failed = self.stopped = False

    def _reached(self, point: HookPoint | None) -> bool:
        if point is None or not self.recorder.events:
            return False
        event = self.recorder.events[-1]
        return (
            event.hook == point.hook
            and (point.epoch is None or event.epoch == point.epoch)
            and (point.batch is None or event.batch == point.batch)
        )

    def _act(self, kwargs: Mapping[str, Any]) -> None:
        if not self.stopped and self._reached(self.stop_at):
            self.stopped = True
            from .control import stop_training

            stop_training(kwargs.get("control"), f"simulated stop at {self.stop_at}", source="simulate")
        if not self.failed and self._reached(self.fail_at):
            self.failed = True
            raise self.error

    def on_train_start(self, **kwargs: Any) -> None:
        self._act(kwargs)

    def on_train_end(self, **kwargs: Any) -> None:
        self._act(kwargs)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        self._act(kwargs)

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        self._act(kwargs)

    def on_batch_start(self, batch: int, **kwargs: Any) -> None:
        self._act(kwargs)

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        self._act(kwargs)

    def on_validation_start(self, **kwargs: Any) -> None:
        self._act(kwargs)

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        self._act(kwargs)


_Injector.__qualname__ = "simulate"


def _check_hook(hook: object, where: str) -> str:
    if isinstance(hook, str) and hook in HOOKS:
        return hook
    close = difflib.get_close_matches(hook, HOOKS, n=1) if isinstance(hook, str) else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise TrainingError(f"{where}: {hook!r} is no hook; {hint}the hooks are: {', '.join(HOOKS)}", hook=None)


def _point(value: PointLike | None, name: str, *, epochs: int, start_epoch: int, batches: int) -> HookPoint | None:
    """``value`` as a :class:`HookPoint` that the simulated training reaches, or an error saying why not."""
    if value is None:
        return None
    parts: tuple[object, ...] = (value,) if isinstance(value, str) else tuple(value)
    where = f"simulate(): {name}={value!r}"
    if not 1 <= len(parts) <= 3:
        raise TrainingError(f"{where}: expected a hook name, or (hook, epoch) or (hook, epoch, batch)")
    hook = _check_hook(parts[0], where)
    if hook == "on_exception":
        raise TrainingError(f"{where}: on_exception runs after a failure; choose the hook where the failure happens")
    numbers: list[int | None] = []
    for label, number, limit, allowed in (
        ("epoch", (*parts, None)[1], range(start_epoch, epochs), hook in _EPOCH_HOOKS),
        ("batch", (*parts, None, None)[2], range(batches), hook in _BATCH_HOOKS),
    ):
        if number is not None and not allowed:
            raise TrainingError(f"{where}: {hook} has no {label}; leave it out (None)")
        if number is not None and (not isinstance(number, int) or isinstance(number, bool) or number not in limit):
            raise TrainingError(
                f"{where}: the {label} must be an int in {limit.start}..{limit.stop - 1} for this simulation, "
                f"got {number!r}; the training would never reach it"
            )
        numbers.append(number)
    return HookPoint(hook, *numbers)


def _batch_metrics(metrics: BatchMetrics | None, batches: int) -> Callable[[int, int], Metrics]:
    if metrics is None:
        return lambda epoch, batch: {"loss": round(1.0 / (1 + epoch * batches + batch), 6)}
    if callable(metrics):
        return metrics
    constant = dict(metrics)
    return lambda epoch, batch: dict(constant)


def _validation_metrics(validation: ValidationMetrics | None) -> Callable[[int], Metrics]:
    if validation is None:
        return lambda epoch: {"val_loss": round(1.0 / (2 + epoch), 6)}
    if callable(validation):
        return validation
    constant = dict(validation)
    return lambda epoch: dict(constant)


def simulate(
    callbacks: BaseCallback | Iterable[BaseCallback],
    *,
    epochs: int = 2,
    batches: int = 3,
    metrics: BatchMetrics | None = None,
    validation: ValidationMetrics | None = None,
    validate: bool = True,
    fail_at: PointLike | None = None,
    error: BaseException | None = None,
    stop_at: PointLike | None = None,
    start_epoch: int = 0,
    output_dir: str | os.PathLike[str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Recording:
    """Run ``callbacks`` through a short training of the reference loop and record every hook call.

    The training is :func:`~altametris.sara.core.loop.fit` over ``batches`` batches per epoch, with the metrics
    given (by default a ``loss`` that decreases with every batch and a ``val_loss`` that decreases with every epoch).
    An :class:`EventRecorder` runs first, so each :class:`Event` holds what the trainer passed; the callbacks under
    test run next, in order.

    Args:
        callbacks: the callback, or the callbacks in order.
        epochs: the number of epochs of the whole training.
        batches: the number of batches per epoch.
        metrics: each batch's metrics, a dict or a function ``(epoch, batch) -> dict``; the epoch's metrics are
            their means, plus the validation metrics.
        validation: the validation metrics, a dict or a function ``epoch -> dict``.
        validate: run the validation hooks (``False`` leaves them out, as for a trainer without validation).
        fail_at: where the training fails: a hook name, ``(hook, epoch)`` or ``(hook, epoch, batch)``, or a
            :class:`HookPoint`. The failure is raised after the callbacks under test ran that hook, as a callback's
            failure (the trainer sees a ``TrainingError``); ``on_exception`` then runs on every callback.
        error: the exception to raise at ``fail_at``; a :class:`SimulatedFailure` by default. A ``BaseException``
            such as ``KeyboardInterrupt`` reaches the trainer unwrapped.
        stop_at: where a stop is requested through the ``control`` context keyword, in the same forms as
            ``fail_at``; the loop honours it after the current batch (the epoch still ends) or epoch.
        start_epoch: the first epoch, for a resumed training (give the callbacks their state first).
        output_dir: the ``output_dir`` context keyword, where file-writing callbacks put relative paths.
        context: more context keywords for every hook. ``model``, ``config``, ``control`` and ``save_checkpoint``
            are passed on as :func:`~altametris.sara.core.loop.fit`'s arguments of those names.

    Returns:
        The :class:`Recording`: the events, the callbacks, the manager, and how the training ended. When the
        training fails at ``fail_at``, the error is in :attr:`Recording.error` instead of being raised.

    Raises:
        TrainingError: for a ``fail_at`` or ``stop_at`` that the training would never reach, or arguments that
            :func:`~altametris.sara.core.loop.fit` refuses.
        BaseException: any failure other than the one injected at ``fail_at`` (a callback's bug), unchanged.

    Example:
        >>> from altametris.sara.plugins.history import History
        >>> recording = simulate(History(), epochs=3, batches=2, stop_at=("on_batch_end", 1, 0))
        >>> recording.callbacks[0].epochs, recording.stop_reason
        ([0, 1], 'simulated stop at on_batch_end (epoch 1, batch 0)')
    """
    from .loop import fit

    under_test = [callbacks] if isinstance(callbacks, BaseCallback) else list(callbacks)
    shape = {"epochs": epochs, "start_epoch": start_epoch, "batches": batches}
    for name, value in shape.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TrainingError(f"simulate(): {name} must be an int >= 0, got {value!r}")
    fail_point = _point(fail_at, "fail_at", **shape)
    stop_point = _point(stop_at, "stop_at", **shape)
    if error is None:
        error = SimulatedFailure(f"simulated failure at {fail_point}")
    elif not isinstance(error, BaseException):
        raise TrainingError(f"simulate(): error must be an exception instance, got {error!r}")
    keywords = dict(context or {})
    own = {name: keywords.pop(name) for name in _FIT_KEYWORDS if name in keywords}
    if output_dir is not None:
        own["output_dir"] = output_dir
    from .control import TrainingControl

    control = own.pop("control", None) or TrainingControl()
    recorder = EventRecorder()
    manager = CallbackManager([recorder, *under_test, _Injector(recorder, fail_point, error, stop_point)])
    batch_metrics = _batch_metrics(metrics, batches)
    validation_metrics = _validation_metrics(validation)

    def epoch() -> int:
        return start_epoch if recorder.epoch is None else recorder.epoch

    result: FitResult | None = None
    failure: BaseException | None = None
    try:
        result = fit(
            manager,
            epochs=epochs,
            start_epoch=start_epoch,
            batches_per_epoch=batches,
            train_step=lambda batch: batch_metrics(epoch(), batch),
            validate=(lambda: validation_metrics(epoch())) if validate else None,
            control=control,
            context=keywords,
            **own,
        )
    except BaseException as raised:
        if raised is not error and raised.__cause__ is not error:
            raise
        failure = raised
    return Recording(
        events=recorder.events,
        callbacks=under_test,
        manager=manager,
        control=control,
        result=result,
        error=failure,
    )
