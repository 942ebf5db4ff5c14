"""A training simulated through the reference loop, with a failure or a stop injected at a chosen hook.

Nothing here is public: :mod:`altametris.sara.core.testing` re-exports :func:`simulate` and its types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .._callback import BaseCallback
from ..base_callback import CallbackManager
from ..control import TrainingControl, stop_training
from ..exceptions import TrainingError
from ..hookspecs import HOOKS
from ..loop import fit
from ._recording import Event, EventRecorder, Recording, check_hook, hook_methods

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping

    from ..batch_hooks import BatchHooks
    from ..hookspecs import Metrics
    from ..loop import FitResult
    from ._types import BatchMetrics, PointLike, ValidationMetrics

__all__: list[str] = []


_EPOCH_HOOKS = frozenset(name for name, spec in HOOKS.items() if spec.scope != "run")
# fit()'s own arguments that a test may want to give through ``context``.
_FIT_KEYWORDS = ("model", "config", "control", "save_checkpoint", "output_dir")


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

    def _act(self, hook: str, arguments: Mapping[str, Any], kwargs: Mapping[str, Any]) -> None:
        if not self.stopped and self._reached(self.stop_at):
            self.stopped = True
            stop_training(kwargs.get("control"), f"simulated stop at {self.stop_at}", source="simulate")
        if not self.failed and self._reached(self.fail_at):
            self.failed = True
            raise self.error


for _name, _method in hook_methods("_act", cleanup=False).items():
    setattr(_Injector, _name, _method)
del _name, _method

_Injector.__qualname__ = "simulate"


def _point(
    value: PointLike | None,
    name: str,
    *,
    epochs: int,
    start_epoch: int,
    batches: int,
    validation_batches: int,
    resumed: bool,
    saving: bool,
) -> HookPoint | None:
    """``value`` as a :class:`HookPoint` that the simulated training reaches, or an error saying why not."""
    if value is None:
        return None
    parts: tuple[object, ...] = (value,) if isinstance(value, str) else tuple(value)
    where = f"simulate(): {name}={value!r}"
    if not 1 <= len(parts) <= 3:
        raise TrainingError(f"{where}: expected a hook name, or (hook, epoch) or (hook, epoch, batch)")
    hook = check_hook(parts[0], where)
    if hook == "on_exception":
        raise TrainingError(f"{where}: on_exception runs after a failure; choose the hook where the failure happens")
    if hook == "on_checkpoint_load" and not resumed:
        raise TrainingError(f"{where}: on_checkpoint_load runs only in a resumed training; give resumed_from")
    if hook == "on_checkpoint_save" and not saving:
        raise TrainingError(
            f"{where}: on_checkpoint_save runs only after a callback wrote a checkpoint; give "
            "context={'save_checkpoint': ...} and a callback that calls it"
        )
    spec = HOOKS[hook]
    validation_batch = spec.scope == "epoch" and "batch" in spec.argnames
    numbers: list[int | None] = []
    for label, number, limit, allowed in (
        ("epoch", (*parts, None)[1], range(start_epoch, epochs), hook in _EPOCH_HOOKS),
        (
            "batch",
            (*parts, None, None)[2],
            range(validation_batches if validation_batch else batches),
            "batch" in spec.argnames,
        ),
    ):
        if number is not None and not allowed:
            raise TrainingError(f"{where}: {hook} has no {label}; leave it out (None)")
        if number is not None and not limit:
            raise TrainingError(
                f"{where}: this simulation has no {label} where {hook} runs; the training would never reach it"
            )
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
    validation_batches: int = 1,
    fail_at: PointLike | None = None,
    error: BaseException | None = None,
    stop_at: PointLike | None = None,
    start_epoch: int = 0,
    resumed_from: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Recording:
    """Run ``callbacks`` through a short training of the reference loop and record every hook call.

    The training is :func:`~altametris.sara.core.loop.fit` over ``batches`` batches per epoch, with the metrics
    given (by default a ``loss`` that decreases with every batch and a ``val_loss`` that decreases with every epoch).
    Every hook a trainer can supply is called: each training batch runs backward and an optimizer step
    (``on_after_backward``, ``on_before_optimizer_step``, ``on_after_optimizer_step``), the validation runs batch by
    batch, a resumed training (``resumed_from``) starts with ``on_checkpoint_load``, and each checkpoint written
    through the ``save_checkpoint`` context keyword is followed by ``on_checkpoint_save``.
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
        validation_batches: the number of validation batches per epoch; each has the epoch's validation metrics.
        fail_at: where the training fails: a hook name, ``(hook, epoch)`` or ``(hook, epoch, batch)``, or a
            :class:`HookPoint`. The failure is raised after the callbacks under test ran that hook, as a callback's
            failure (the trainer sees a ``TrainingError``); ``on_exception`` then runs on every callback.
        error: the exception to raise at ``fail_at``; a :class:`SimulatedFailure` by default. A ``BaseException``
            such as ``KeyboardInterrupt`` reaches the trainer unwrapped.
        stop_at: where a stop is requested through the ``control`` context keyword, in the same forms as
            ``fail_at``; the loop honours it after the current batch (the epoch still ends) or epoch.
        start_epoch: the first epoch, for a resumed training (give the callbacks their state first).
        resumed_from: the checkpoint a resumed training starts from, given to ``on_checkpoint_load``.
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
    under_test = [callbacks] if isinstance(callbacks, BaseCallback) else list(callbacks)
    sizes = {"epochs": epochs, "start_epoch": start_epoch, "batches": batches, "validation_batches": validation_batches}
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TrainingError(f"simulate(): {name} must be an int >= 0, got {value!r}")
    if not validate:
        sizes["validation_batches"] = 0
    shape = {**sizes, "resumed": resumed_from is not None, "saving": "save_checkpoint" in (context or {})}
    fail_point = _point(fail_at, "fail_at", **shape)  # type: ignore[arg-type]  # the ints and bools by name
    stop_point = _point(stop_at, "stop_at", **shape)  # type: ignore[arg-type]
    if error is None:
        error = SimulatedFailure(f"simulated failure at {fail_point}")
    elif not isinstance(error, BaseException):
        raise TrainingError(f"simulate(): error must be an exception instance, got {error!r}")
    keywords = dict(context or {})
    own = {name: keywords.pop(name) for name in _FIT_KEYWORDS if name in keywords}
    if output_dir is not None:
        own["output_dir"] = output_dir
    control = own.pop("control", None) or TrainingControl()
    recorder = EventRecorder()
    manager = CallbackManager([recorder, *under_test, _Injector(recorder, fail_point, error, stop_point)])
    batch_metrics = _batch_metrics(metrics, batches)
    validation_metrics = _validation_metrics(validation)

    def epoch() -> int:
        return start_epoch if recorder.epoch is None else recorder.epoch

    def train_step(batch: int, hooks: BatchHooks) -> Metrics:
        hooks.after_backward()
        hooks.before_optimizer_step()
        hooks.after_optimizer_step()
        return batch_metrics(epoch(), batch)

    result: FitResult | None = None
    failure: BaseException | None = None
    try:
        result = fit(
            manager,
            epochs=epochs,
            start_epoch=start_epoch,
            batches_per_epoch=batches,
            train_step=train_step,
            validation_data=range(validation_batches) if validate else None,
            validation_step=(lambda batch: validation_metrics(epoch())) if validate else None,
            resumed_from=resumed_from,
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
