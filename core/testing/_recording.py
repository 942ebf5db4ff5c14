"""Recording a training event by event: :class:`Event`, :class:`EventRecorder` and :class:`Recording`.

Nothing here is public: :mod:`altametris.sara.core.testing` re-exports it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, overload

from .._callback import BaseCallback
from ..exceptions import TrainingError
from ..hookspecs import HOOKS
from ..messages import did_you_mean

if TYPE_CHECKING:
    from ..base_callback import CallbackManager
    from ..control import TrainingControl
    from ..hookspecs import HookSpec
    from ..loop import FitResult

__all__: list[str] = []


def hook_methods(handler: str, *, cleanup: bool = True) -> dict[str, Callable[..., None]]:
    """One method per hook of :data:`~altametris.sara.core.hookspecs.HOOKS`, with the hookspec's signature.

    Each calls ``self.<handler>(hook, arguments, context)``: the hook's name, the hookspec's arguments by name, and
    the context keywords. The testing kit's callbacks are built from these, so a new hook reaches them with no edit.

    Args:
        handler: the name of the method that receives every call.
        cleanup: also make the cleanup hooks (``on_exception``).
    """
    return {spec.name: _hook_method(spec, handler) for spec in HOOKS.values() if cleanup or not spec.cleanup}


def _hook_method(spec: HookSpec, handler: str) -> Callable[..., None]:
    def method(self: object, *args: Any, **kwargs: Any) -> None:
        arguments = dict(zip(spec.argnames, args))
        arguments.update({name: kwargs.pop(name) for name in spec.argnames if name in kwargs})
        getattr(self, handler)(spec.name, arguments, kwargs)

    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in spec.argnames]
    parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    method.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]  # what dispatch reads
    method.__name__ = method.__qualname__ = spec.name
    method.__doc__ = f"Handle ``{spec.name}``."
    return method


class Event(NamedTuple):
    """One hook call, as a callback saw it.

    Attributes:
        hook: the hook's name, such as ``"on_batch_end"``.
        epoch: the epoch it belongs to (``None`` for ``on_train_start``, ``on_train_end`` and outside any epoch).
        batch: the batch it belongs to (the training and validation batch hooks, and ``on_exception`` during a
            batch), else ``None``.
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
        >>> from altametris.sara.core import CallbackManager
        >>> recorder = EventRecorder()
        >>> manager = CallbackManager([recorder])
        >>> manager.on_epoch_start(0)
        >>> manager.on_batch_end(3, {"loss": 0.5}, lr=0.1)
        >>> [str(event) for event in recorder.events]
        ['on_epoch_start (epoch 0)', 'on_batch_end (epoch 0, batch 3)']
        >>> recorder.events[-1].arguments, recorder.events[-1].context
        ({'batch': 3, 'metrics': {'loss': 0.5}}, {'lr': 0.1})
    """

    warn_unsupplied_hooks = False
    """It overrides every hook to record whichever a trainer calls: no trainer is warned about it."""

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
        """Record one hook call (every hook method of the class calls it), and follow the epoch and the batch.

        The hookspecs say where a call is: a run's boundary is outside any epoch, an ``epoch`` argument opens an
        epoch, a ``batch`` argument names the (training or validation) batch, and a hook without one is outside any
        batch; a cleanup hook (``on_exception``) is wherever the failure happened.
        """
        spec = HOOKS[hook]
        if spec.cleanup:
            self.events.append(Event(hook, self._epoch, self._batch, arguments, dict(context)))
            return
        if spec.scope == "run" and spec.boundary is not None:
            self._epoch = None
        if "epoch" in arguments:
            self._epoch = arguments["epoch"]
        self._batch = arguments.get("batch")
        if "metrics" in arguments and isinstance(arguments["metrics"], Mapping):
            arguments["metrics"] = dict(arguments["metrics"])
        self.events.append(Event(hook, self._epoch, self._batch, arguments, dict(context)))


for _name, _method in hook_methods("_record").items():
    setattr(EventRecorder, _name, _method)
del _name, _method


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
        check_hook(hook, "Recording.of()")
        return [event for event in self.events if event.hook == hook]


def check_hook(hook: object, where: str) -> str:
    if isinstance(hook, str) and hook in HOOKS:
        return hook
    hint = did_you_mean(hook, HOOKS)
    raise TrainingError(f"{where}: {hook!r} is no hook; {hint}the hooks are: {', '.join(HOOKS)}", hook=None)
