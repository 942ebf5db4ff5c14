"""``metric_alert``: warn when a metric crosses a threshold, once per crossing.

Example:
    >>> from altametris.sara.core.base_callback import CallbackManager
    >>> alert = MetricAlert(monitor="loss", threshold=1.0)
    >>> manager = CallbackManager([alert])
    >>> for epoch, loss in enumerate([0.5, 1.5, 2.0, 0.7, 1.2]):
    ...     manager.on_epoch_end(epoch, {"loss": loss})
    >>> alert.alerts
    [(1, 'loss', 1.5), (4, 'loss', 1.2)]
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.exceptions import PluginParameterError

__all__ = ["MetricAlert"]

logger = logging.getLogger(__name__)


class MetricAlert(BaseCallback):
    """Log a warning when a metric crosses a threshold, once per crossing (not at every epoch above it).

    Parameters come from the config, checked by SARA before the constructor runs (names and types); the constructor
    checks what types cannot say, and touches nothing: a callback is built by ``sara-callbacks check`` too.

    Args:
        monitor: the metric to watch, as the trainer names it in ``metrics``.
        threshold: the value that must not be crossed.
        direction: ``"above"`` warns when the metric rises above ``threshold``; ``"below"`` when it falls below.
        label: a name for this alert in the log (several alerts may watch several metrics).
        every_batch: also watch batch metrics, not only epoch metrics.

    Attributes:
        alerts: every crossing seen so far, as ``(epoch, metric, value)``.
    """

    def __init__(
        self,
        monitor: str = "loss",
        threshold: float = 1.0,
        direction: Literal["above", "below"] = "above",
        label: str | None = None,
        every_batch: bool = False,
    ) -> None:
        if not monitor:
            raise PluginParameterError(
                "metric_alert: 'monitor' is empty; name the metric to watch", parameter="monitor"
            )
        if not math.isfinite(threshold):
            raise PluginParameterError(
                f"metric_alert: 'threshold' must be a finite number, got {threshold!r}", parameter="threshold"
            )
        self.monitor = monitor
        self.threshold = float(threshold)
        self.direction = direction
        self.label = label or f"{monitor} {direction} {threshold:g}"
        self.every_batch = every_batch
        self.alerts: list[tuple[int, str, float]] = []
        self._crossed = False
        self._epoch = 0

    @property
    def state_key(self) -> str:
        """One state per alert: a config may enable ``metric_alert`` several times, with different labels."""
        return f"MetricAlert[{self.label}]"

    def _crosses(self, value: float) -> bool:
        return value > self.threshold if self.direction == "above" else value < self.threshold

    def _watch(self, metrics: dict[str, float]) -> None:
        value = metrics.get(self.monitor)
        if value is None:
            return
        crossed = self._crosses(value)
        if crossed and not self._crossed:
            self.alerts.append((self._epoch, self.monitor, value))
            logger.warning("[%s] epoch %d: %s = %g", self.label, self._epoch, self.monitor, value)
        self._crossed = crossed

    def on_train_start(self, **kwargs: Any) -> None:
        """Start a new training: forget the alerts of a previous one."""
        self.alerts.clear()
        self._crossed = False

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Remember the epoch, for the alerts of its batches."""
        self._epoch = epoch

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        """Watch batch metrics when ``every_batch`` is set."""
        if self.every_batch:
            self._watch(metrics)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        """Watch the epoch's metrics."""
        self._epoch = epoch
        self._watch(metrics)

    def state_dict(self) -> dict[str, Any]:
        """The alerts so far and whether the metric is across the threshold, for a resumed training."""
        return {"alerts": [list(alert) for alert in self.alerts], "crossed": self._crossed}

    def load_state_dict(self, state_dict: Any) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.alerts = [(int(epoch), str(name), float(value)) for epoch, name, value in state_dict["alerts"]]
        self._crossed = bool(state_dict["crossed"])
