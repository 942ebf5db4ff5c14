"""``history``: every epoch's metrics, kept in memory for the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.exceptions import TrainingError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from altametris.sara.core.hookspecs import Metrics

__all__ = ["History"]


class History(BaseCallback):
    """Keep every epoch's metrics in memory, for the caller to read after (or during) the training.

    It records a copy of the metrics each epoch ends with, as the callbacks before it in the list left them (put it
    after ``timer`` to keep the timings too). Its records are part of :meth:`state_dict`, so a resumed training keeps
    the epochs that ran before the interruption.

    Example:
        >>> history = History()
        >>> history.on_epoch_end(0, {"loss": 0.5})
        >>> history.on_epoch_end(1, {"loss": 0.25, "val_loss": 0.3})
        >>> history.epochs, history.column("loss"), history.column("val_loss")
        ([0, 1], [0.5, 0.25], [None, 0.3])
        >>> history.last
        {'loss': 0.25, 'val_loss': 0.3}
    """

    plugin = "history"

    def __init__(self) -> None:
        self.epochs: list[int] = []
        """The epoch numbers recorded, in order."""
        self.metrics: list[dict[str, Any]] = []
        """Each recorded epoch's metrics (a copy), in the order of :attr:`epochs`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epochs={len(self.epochs)})"

    def __len__(self) -> int:
        return len(self.epochs)

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Record a copy of the epoch's metrics."""
        self.epochs.append(epoch)
        self.metrics.append(dict(metrics))

    @property
    def last(self) -> dict[str, Any]:
        """The last recorded epoch's metrics, ``{}`` before the first epoch ends."""
        return dict(self.metrics[-1]) if self.metrics else {}

    def keys(self) -> list[str]:
        """Every metric name recorded, in the order of first appearance."""
        return list(dict.fromkeys(key for metrics in self.metrics for key in metrics))

    def column(self, key: str) -> list[Any]:
        """One metric across the recorded epochs, ``None`` where an epoch lacks it.

        Raises:
            TrainingError: when no epoch recorded ``key`` (the message lists the recorded keys).
        """
        if self.metrics and not any(key in metrics for metrics in self.metrics):
            raise TrainingError(
                f"{self.plugin}: no epoch recorded the metric {key!r}; recorded: {self.keys()}",
                callback=self,
            )
        return [metrics.get(key) for metrics in self.metrics]

    # -- state ----------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The recorded epochs and their metrics."""
        return {"epochs": list(self.epochs), "metrics": [dict(metrics) for metrics in self.metrics]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the records of :meth:`state_dict`, replacing the current ones."""
        epochs = [int(epoch) for epoch in state_dict["epochs"]]
        metrics = [dict(item) for item in state_dict["metrics"]]
        if len(epochs) != len(metrics):
            raise ValueError(f"{len(epochs)} epochs but {len(metrics)} metric records")
        self.epochs, self.metrics = epochs, metrics
