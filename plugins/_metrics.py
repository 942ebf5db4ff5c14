"""Reading a monitored metric and comparing scores, for the plugins that watch one metric."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.messages import did_you_mean

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__: list[str] = []

MODES = ("min", "max")
"""How a monitored metric improves: by going down (``"min"``, a loss) or up (``"max"``, an accuracy)."""


def monitored_value(
    plugin: str,
    metrics: Mapping[str, object],
    monitor: str,
    *,
    where: str,
    callback: object = None,
    hook: str | None = None,
    epoch: int | None = None,
    batch: int | None = None,
) -> float:
    """``metrics[monitor]`` as a float, or an error that lists the available keys and suggests the closest one.

    Args:
        plugin: the plugin's name, for the message.
        metrics: where to look.
        monitor: the key to find.
        where: what ``metrics`` are, for the message (``"the epoch metrics"``).
        callback: the callback that looks, kept on the error.
        hook: the hook being called, kept on the error.
        epoch: the epoch, when known, kept on the error.
        batch: the batch, when known, kept on the error.

    Raises:
        TrainingError: when the key is missing or its value is not a number.
    """
    try:
        value = metrics[monitor]
    except KeyError:
        available = sorted(metrics)
        hint = did_you_mean(monitor, available)
        raise TrainingError(
            f"{plugin} could not find the monitored key {monitor!r} in {where}; available: {available}. "
            f"HINT: {hint}set {plugin}'s 'monitor' parameter to one of the available keys, or make the trainer "
            f"report {monitor!r}",
            callback=callback,
            hook=hook,
            epoch=epoch,
            batch=batch,
        ) from None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TrainingError(
            f"{plugin}: the monitored metric {monitor!r} should be a number, got {value!r} ({type(value).__name__})",
            callback=callback,
            hook=hook,
            epoch=epoch,
            batch=batch,
        )
    return float(value)


class EpochMonitor:
    """Reads a monitored key at each epoch's end, skipping epochs that did not report it while others do.

    Trainers validate every N epochs (Lightning ``check_val_every_n_epoch``, Keras ``validation_freq``, ``fit``'s
    ``validate_every_n_epochs``): an epoch whose lifecycle the plugin saw start (``on_epoch_start``) and that had no
    ``on_validation_end`` lacks the validation keys. The rule, for the plugins that watch one metric:

    * the key is there: its value;
    * the key is missing, but it was reported in an earlier epoch: the epoch is skipped (``None``);
    * the key has never been reported, and this epoch had no validation: skipped while waiting for one;
    * otherwise (a validation ran and the key is still missing, or the hooks were called without ``on_epoch_start``):
      the error of :func:`monitored_value`, which names the keys that are there;
    * at ``on_train_end``, a key that no epoch reported is that error too (a training that never validated).

    Example:
        >>> monitor = EpochMonitor("early_stopping", "val_loss")
        >>> monitor.epoch_started()
        >>> monitor.value({"loss": 1.0}, epoch=0) is None  # no validation in epoch 0
        True
        >>> monitor.epoch_started(); monitor.validated()
        >>> monitor.value({"loss": 0.9, "val_loss": 0.5}, epoch=1)
        0.5
    """

    __slots__ = ("_in_epoch", "_keys", "_validated", "monitor", "plugin", "seen")

    def __init__(self, plugin: str, monitor: str) -> None:
        self.plugin = plugin
        self.monitor = monitor
        self.seen = False
        self._in_epoch = False
        self._validated = False
        self._keys: list[str] | None = None

    def started(self) -> None:
        """A new training (``on_train_start``): nothing is known about its epochs yet."""
        self._in_epoch = self._validated = False
        self._keys = None

    def epoch_started(self) -> None:
        """``on_epoch_start``: no validation in this epoch so far."""
        self._in_epoch, self._validated = True, False

    def validated(self) -> None:
        """``on_validation_end``: this epoch has its validation."""
        self._validated = True

    def value(self, metrics: Mapping[str, object], *, epoch: int, callback: object = None) -> float | None:
        """The monitored value of the epoch, ``None`` for an epoch to skip; an error for a key never reported."""
        in_epoch, self._in_epoch = self._in_epoch, False
        if self.monitor in metrics:
            self.seen = True
        elif self.seen or (in_epoch and not self._validated):
            if not self.seen:
                self._keys = sorted(metrics)
            return None
        return monitored_value(
            self.plugin,
            metrics,
            self.monitor,
            where="the epoch metrics",
            callback=callback,
            hook="on_epoch_end",
            epoch=epoch,
        )

    def check_reported(self, *, callback: object = None) -> None:
        """``on_train_end``: a key that epochs ended without, and that none reported, is an error.

        Raises:
            TrainingError: naming the keys the epochs reported.
        """
        keys, self._keys = self._keys, None
        if keys is None or self.seen:
            return
        monitored_value(
            self.plugin,
            dict.fromkeys(keys, 0.0),
            self.monitor,
            where="the metrics of any epoch of the training (it waited for a validation that never reported it)",
            callback=callback,
            hook="on_train_end",
        )


def improves(value: float, reference: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``reference`` by more than ``min_delta`` in ``mode``; NaN never improves.

    Example:
        >>> improves(0.5, None, "min"), improves(0.5, 0.6, "min"), improves(0.5, 0.55, "min", 0.1)
        (True, True, False)
        >>> improves(float("nan"), None, "max")
        False
    """
    if math.isnan(value):
        return False
    if reference is None:
        return True
    if mode == "min":
        return value < reference - min_delta
    return value > reference + min_delta


def format_metrics(metrics: Mapping[str, object], digits: int) -> str:
    """``"loss=0.1235 accuracy=0.9"``: numbers with ``digits`` significant digits, in the metrics' order.

    Example:
        >>> format_metrics({"loss": 0.123456, "steps": 10, "note": "ok"}, 3)
        'loss=0.123 steps=10 note=ok'
    """
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.{digits}g}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)
