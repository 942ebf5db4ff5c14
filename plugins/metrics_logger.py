"""``metrics_logger``: the epoch (and every N batches) metrics through :mod:`logging`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Union

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.exceptions import PluginParameterError
from altametris.sara.core.messages import safe_repr

from ._checks import check_int, check_str
from ._metrics import format_metrics

if TYPE_CHECKING:
    from altametris.sara.core.hookspecs import Metrics

__all__ = ["MetricsLogger"]

Level = Union[int, str]
"""A :mod:`logging` level: a number or a name such as ``"INFO"``."""


class MetricsLogger(BaseCallback):
    """Log the metrics of every epoch, and of every N-th batch, through :mod:`logging`.

    Lines read ``epoch 3: loss=0.2346 val_loss=0.2512`` and ``epoch 3, batch 99: loss=0.2417``; at the end of a
    training stopped early, one more line says who stopped it and why. Nothing is formatted when the logger does not
    emit at ``level``. Where the lines go is the application's logging configuration (``logging.basicConfig``).

    Args:
        every_n_batches: also log the metrics of every N-th batch (batches N-1, 2N-1, ...); ``0`` for epochs only.
        level: the level of the records, a number or a name (``"INFO"``, ``"DEBUG"``).
        logger: the name of the logger to log to.
        digits: significant digits of the values.

    Raises:
        PluginParameterError: for a parameter of the wrong type or value (an unknown level name, say).

    Example:
        >>> import logging, sys
        >>> log = logging.getLogger("example.metrics")
        >>> log.addHandler(logging.StreamHandler(sys.stdout)); log.setLevel(logging.INFO); log.propagate = False
        >>> callback = MetricsLogger(logger="example.metrics")
        >>> callback.on_epoch_end(3, {"loss": 0.234567, "val_loss": 0.25})
        epoch 3: loss=0.2346 val_loss=0.25
    """

    rank_zero_only = True  # it writes files or prints: once, on rank 0, in a training of several processes

    plugin = "metrics_logger"

    def __init__(
        self,
        *,
        every_n_batches: int = 0,
        level: Level = "INFO",
        logger: str = __name__,
        digits: int = 4,
    ) -> None:
        self.every_n_batches = check_int(self.plugin, "every_n_batches", every_n_batches, minimum=0)
        self.level = _check_level(self.plugin, level)
        self.logger = logging.getLogger(check_str(self.plugin, "logger", logger))
        self.digits = check_int(self.plugin, "digits", digits, minimum=1)
        self._epoch = 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(every_n_batches={self.every_n_batches}, "
            f"level={logging.getLevelName(self.level)!r}, logger={self.logger.name!r})"
        )

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Remember the epoch, for the batch lines."""
        self._epoch = epoch

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Log every N-th batch's metrics."""
        every = self.every_n_batches
        if every and (batch + 1) % every == 0 and self.logger.isEnabledFor(self.level):
            self.logger.log(
                self.level, "epoch %d, batch %d: %s", self._epoch, batch, format_metrics(metrics, self.digits)
            )

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Log the epoch's metrics."""
        if self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, "epoch %d: %s", epoch, format_metrics(metrics, self.digits))

    def on_train_end(self, **kwargs: Any) -> None:
        """Say who stopped the training early, and why, when the trainer's ``control`` tells."""
        reason = getattr(kwargs.get("control"), "stop_reason", None)
        if reason:
            source = getattr(kwargs.get("control"), "stop_source", None)
            self.logger.log(self.level, "training stopped early%s: %s", f" by {source}" if source else "", reason)


def _check_level(plugin: str, level: object) -> int:
    if isinstance(level, int) and not isinstance(level, bool) and level >= 0:
        return level
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if isinstance(number, int):
            return number
    raise PluginParameterError(
        f"{plugin}: parameter 'level' expects a logging level (a number >= 0, or a name such as 'INFO', 'DEBUG', "
        f"'WARNING'), got {safe_repr(level)} ({type(level).__name__})",
        plugin=plugin,
        parameter="level",
    )
