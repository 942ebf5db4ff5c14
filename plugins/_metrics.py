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
