"""``nan_guard``: stop (or fail) the training when a metric becomes NaN, infinite, or too large."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.control import stop_training
from altametris.sara.core.exceptions import TrainingError

from ._checks import check_bool, check_choice, check_float, check_str
from ._metrics import EpochMonitor, monitored_value

if TYPE_CHECKING:
    from altametris.sara.core.hookspecs import Metrics

__all__ = ["NaNGuard"]

_logger = logging.getLogger(__name__)

_ACTIONS = ("stop", "raise")


class NaNGuard(BaseCallback):
    """Stop the training (or fail it) as soon as ``monitor`` is NaN, infinite, or above ``threshold``.

    It checks the batch metrics after every batch (with ``check_batches``) and the epoch metrics after every epoch,
    and names the epoch and the batch where the value went wrong. With ``action="stop"`` it asks for a stop through the
    trainer's ``control`` context keyword (or raises :class:`~altametris.sara.core.control.StopTraining` when there
    is none): the training ends cleanly, files are closed and ``on_train_end`` runs. With ``action="raise"`` it raises
    :class:`~altametris.sara.core.exceptions.TrainingError`: the training fails and ``on_exception`` runs.

    A missing ``monitor`` key is an error that lists the available keys: a guard that silently checks nothing would
    be worse than none.

    Args:
        monitor: the metric to watch, such as ``"loss"``.
        threshold: a value above which the training is stopped too; ``None`` checks only NaN and infinity.
        action: ``"stop"`` to end the training cleanly, ``"raise"`` to fail it.
        check_batches: also check every batch's metrics (the trainer must report ``monitor`` per batch).

    Raises:
        PluginParameterError: for a parameter of the wrong type or value.

    Example:
        >>> from altametris.sara.core.control import TrainingControl
        >>> guard, control = NaNGuard(monitor="loss"), TrainingControl()
        >>> guard.on_epoch_start(2)
        >>> guard.on_batch_end(7, {"loss": float("nan")}, control=control)
        >>> control.stop_reason
        "'loss' is nan at epoch 2, batch 7"
    """

    plugin = "nan_guard"

    def __init__(
        self,
        *,
        monitor: str = "loss",
        threshold: float | None = None,
        action: str = "stop",
        check_batches: bool = True,
    ) -> None:
        self.monitor = check_str(self.plugin, "monitor", monitor)
        self.threshold = None if threshold is None else check_float(self.plugin, "threshold", threshold)
        self.action = check_choice(self.plugin, "action", action, _ACTIONS)
        self.check_batches = check_bool(self.plugin, "check_batches", check_batches)
        self._epoch: int | None = None
        self._tripped = False
        self._watch = EpochMonitor(self.plugin, self.monitor)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(monitor={self.monitor!r}, threshold={self.threshold!r}, action={self.action!r}, "
            f"check_batches={self.check_batches})"
        )

    def on_train_start(self, **kwargs: Any) -> None:
        """Re-arm the guard."""
        self._tripped = False
        self._watch.started()

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Remember the epoch, to name it."""
        self._epoch = epoch
        self._watch.epoch_started()

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        """Note that this epoch has its validation."""
        self._watch.validated()

    def on_train_end(self, **kwargs: Any) -> None:
        """Fail when no epoch of the training reported ``monitor``."""
        self._watch.check_reported(callback=self)

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Check the batch's value of ``monitor``."""
        if self.check_batches:
            where = f"epoch {self._epoch}, batch {batch}" if self._epoch is not None else f"batch {batch}"
            self._check(metrics, where, "on_batch_end", self._epoch, batch=batch, control=kwargs.get("control"))

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Check the epoch's value of ``monitor`` (an epoch that did not report it is skipped when others do)."""
        if self._tripped:
            return
        value = self._watch.value(metrics, epoch=epoch, callback=self)
        if value is not None:
            self._judge(
                value, f"the end of epoch {epoch}", "on_epoch_end", epoch, batch=None, control=kwargs.get("control")
            )

    def _check(
        self, metrics: Metrics, where: str, hook: str, epoch: int | None, *, batch: int | None, control: Any
    ) -> None:
        if self._tripped:
            return
        value = monitored_value(
            self.plugin,
            metrics,
            self.monitor,
            where=f"the metrics of {where}",
            callback=self,
            hook=hook,
            epoch=epoch,
            batch=batch,
        )
        self._judge(value, where, hook, epoch, batch=batch, control=control)

    def _judge(
        self, value: float, where: str, hook: str, epoch: int | None, *, batch: int | None, control: Any
    ) -> None:
        if math.isfinite(value) and (self.threshold is None or value <= self.threshold):
            return
        self._tripped = True
        what = f"is {value}" if not math.isfinite(value) else f"= {value:.6g} is above the threshold {self.threshold:g}"
        reason = f"{self.monitor!r} {what} at {where}"
        if self.action == "raise":
            raise TrainingError(f"{self.plugin}: {reason}", callback=self, hook=hook, epoch=epoch, batch=batch)
        _logger.warning("%s: %s; stopping the training", self.plugin, reason)
        stop_training(control, reason, source=self.plugin)
