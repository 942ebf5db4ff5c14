"""What the experiment-tracker plugins (``mlflow_logger``, ``tensorboard_logger``) share.

:class:`TrackerLogger` counts the batches seen (the global step, kept in the state so that a resumed training goes on
from it), picks the numbers out of the metrics, owns the :class:`~._background.BackgroundWriter` that sends the
records from a worker thread, and closes it at ``on_train_end`` and ``on_exception``. A subclass turns hooks into
records and sends them. The tracker's library is imported at ``on_train_start`` only, with an error naming the extra
to install when it is missing: building the callback (``sara-callbacks check``) needs none of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.exceptions import TrainingError

from ._background import BackgroundWriter
from ._checks import check_float, check_int

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import ModuleType

    from altametris.sara.core.base_callback import ErrorPolicy
    from altametris.sara.core.hookspecs import Metrics

__all__: list[str] = []

Record = TypeVar("Record")


def import_library(callback: BaseCallback, plugin: str, module: str, extra: str) -> ModuleType:
    """Import ``module`` for ``plugin``, or raise an error that names the extra to install.

    Raises:
        TrainingError: ``module`` is not installed (or fails to import).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise TrainingError(
            f"{plugin} needs the {module!r} package, which is not installed ({error}); install the extra with: "
            f"pip install 'sara-callbacks[{extra}]', or remove {plugin} from the config",
            callback=callback,
            hook="on_train_start",
        ) from error


def numbers(metrics: Mapping[str, object]) -> dict[str, float]:
    """The metrics that are numbers, as floats: ints and floats, and scalars that convert (NumPy, PyTorch).

    Booleans and text are left out.

    Example:
        >>> numbers({"loss": 0.5, "steps": 3, "done": True, "note": "ok"})
        {'loss': 0.5, 'steps': 3.0}
    """
    found: dict[str, float] = {}
    for key, value in metrics.items():
        kind = type(value)
        if kind is float or kind is int:
            found[key] = float(value)  # type: ignore[arg-type]
        elif kind is not bool and hasattr(value, "__float__"):
            try:
                found[key] = float(value)
            except (TypeError, ValueError):  # a tensor of several values, say
                continue
    return found


class TrackerLogger(BaseCallback, Generic[Record]):
    """Base of the plugins that send metrics to an experiment tracker through a background writer.

    Subclasses set :attr:`plugin`, :attr:`library` and :attr:`extra`, and implement :meth:`_open` (the records of a
    training's start, queued with ``keep=True``), :meth:`_send`, :meth:`_batch_record`, :meth:`_epoch_record` and
    :meth:`_close` (the records of its end).
    """

    on_error: ErrorPolicy = "warn"  # a tracker that fails must not end the training
    rank_zero_only = True  # one run per training, written by rank 0

    plugin: ClassVar[str]
    library: ClassVar[str]
    """The module imported at ``on_train_start``."""
    extra: ClassVar[str]
    """The ``sara-callbacks`` extra that installs it."""

    def __init__(self, *, log_every_n_batches: int, flush_timeout: float, max_pending: int) -> None:
        self.log_every_n_batches = check_int(self.plugin, "log_every_n_batches", log_every_n_batches, minimum=0)
        self.flush_timeout = check_float(self.plugin, "flush_timeout", flush_timeout, minimum=0.0)
        self.max_pending = check_int(self.plugin, "max_pending", max_pending, minimum=1)
        self.step = 0
        """Batches seen since the training started (a resumed one included): the global step."""
        self.resumed = False
        """Whether the current training continues a saved state (:meth:`load_state_dict` before its start)."""
        self._restored = False
        self._writer: BackgroundWriter[Record] | None = None

    _TRANSIENT: ClassVar[tuple[str, ...]] = ("_writer",)
    """Attributes that belong to a running training (a thread, a connection, a module): not copied or pickled."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._TRANSIENT:
            if name in state:
                state[name] = None
        return state

    @property
    def writer(self) -> BackgroundWriter[Record] | None:
        """The background writer of the current training (``None`` before ``on_train_start`` and after the end)."""
        return self._writer

    # -- hooks ----------------------------------------------------------------------------------------------------

    def on_train_start(self, **kwargs: Any) -> None:
        """Import the tracker's library, start the background writer and queue the training's start.

        A training that was given a saved state (:meth:`load_state_dict`) continues its steps (and its run); any
        other starts anew from step 0.
        """
        self._stop_writer()
        module = import_library(self, self.plugin, self.library, self.extra)
        self.resumed, self._restored = self._restored, False
        if not self.resumed:
            self.step = 0
            self._fresh()
        records = self._open(module, kwargs)
        self._writer = BackgroundWriter(
            self._describe(),
            self._send,
            retryable=self._retryable,
            max_pending=self.max_pending,
            flush_timeout=self.flush_timeout,
        )
        for record in records:
            self._writer.put(record, keep=True)

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Count the batch; queue its metrics every ``log_every_n_batches`` batches."""
        self.step += 1
        every = self.log_every_n_batches
        if every and self.step % every == 0 and self._writer is not None:
            values = numbers(metrics)
            if values:
                self._writer.put(self._batch_record(values, self.step))

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Queue the epoch's metrics."""
        if self._writer is not None:
            values = numbers(metrics)
            if values:
                self._writer.put(self._epoch_record(values, epoch, self.step), keep=True)

    def on_train_end(self, **kwargs: Any) -> None:
        """Queue the training's end, and wait at most ``flush_timeout`` seconds for everything to be sent."""
        if self._writer is not None:
            for record in self._close(None, kwargs):
                self._writer.put(record, keep=True)
        self._stop_writer()

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Queue the training's failure, and wait at most ``flush_timeout`` seconds for everything to be sent."""
        if self._writer is not None:
            for record in self._close(error, kwargs):
                self._writer.put(record, keep=True)
        self._stop_writer()

    def _stop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._closed()

    # -- state ----------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The global step, so that a resumed training continues it."""
        return {"step": self.step}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue from the global step of :meth:`state_dict`."""
        self.step = check_int(self.plugin, "state_dict['step']", state_dict.get("step", 0), minimum=0)
        self._restored = True

    # -- for subclasses -------------------------------------------------------------------------------------------

    def _describe(self) -> str:
        return self.plugin

    def _retryable(self, error: BaseException) -> bool:
        """Whether ``error`` of :meth:`_send` means "unreachable or slow, try again" (the default: any)."""
        return True

    def _open(self, module: ModuleType, context: Mapping[str, Any]) -> list[Record]:
        raise NotImplementedError

    def _send(self, records: Sequence[Record]) -> int:
        raise NotImplementedError

    def _batch_record(self, values: dict[str, float], step: int) -> Record:
        raise NotImplementedError

    def _epoch_record(self, values: dict[str, float], epoch: int, step: int) -> Record:
        raise NotImplementedError

    def _close(self, error: BaseException | None, context: Mapping[str, Any]) -> list[Record]:
        raise NotImplementedError

    def _fresh(self) -> None:
        """Forget what belongs to a previous training of this instance (a new training starts)."""

    def _closed(self) -> None:
        """Called once the writer has stopped: release what :meth:`_send` opened."""
