"""``timer``: wall time and throughput into the epoch metrics, and an optional time budget."""

from __future__ import annotations

import logging
from time import perf_counter as _clock
from typing import TYPE_CHECKING, Any

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.control import stop_training

from ._checks import check_float

if TYPE_CHECKING:
    from collections.abc import Mapping

    from altametris.sara.core.hookspecs import Metrics

__all__ = ["Timer"]

_logger = logging.getLogger(__name__)


class Timer(BaseCallback):
    """Measure the training's wall time, add it to the epoch metrics, and stop when a time budget is spent.

    At the end of every epoch it adds to the epoch's metrics dict (which the callbacks after it in the list see,
    loggers included):

    * ``epoch_seconds``: the epoch's wall time, validation included;
    * ``elapsed_seconds``: the training's wall time so far, across resumes;
    * ``batches_per_second``: the epoch's training throughput (batches over the time from the epoch's start to its
      last batch), when the epoch had batches.

    With ``budget_seconds`` it asks for a stop (through the trainer's ``control`` context keyword, else by raising
    :class:`~altametris.sara.core.control.StopTraining`) after the first batch or epoch that ends beyond the budget.
    The elapsed time is part of :meth:`state_dict`: a resumed training continues the count and the budget.

    Args:
        budget_seconds: the longest the training may run, in seconds (``> 0``), or ``None`` for no limit.

    Raises:
        PluginParameterError: for a budget that is not a positive number.

    Example:
        >>> timer = Timer()
        >>> timer.on_train_start()
        >>> timer.on_epoch_start(0)
        >>> timer.on_batch_end(0, {})
        >>> metrics = {"loss": 0.5}
        >>> timer.on_epoch_end(0, metrics)
        >>> sorted(metrics)
        ['batches_per_second', 'elapsed_seconds', 'epoch_seconds', 'loss']
    """

    plugin = "timer"

    def __init__(self, *, budget_seconds: float | None = None) -> None:
        self.budget_seconds = (
            None
            if budget_seconds is None
            else check_float(self.plugin, "budget_seconds", budget_seconds, positive=True)
        )
        self._previous = 0.0  # seconds spent in earlier trainings (before a resume)
        self._started: float | None = None
        self._epoch_started = 0.0
        self._last_batch = 0.0
        self._batches = 0
        self._stopping = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(budget_seconds={self.budget_seconds!r})"

    @property
    def elapsed_seconds(self) -> float:
        """The training's wall time so far, earlier trainings of a resumed run included."""
        return self._elapsed(_clock())

    def _elapsed(self, now: float) -> float:
        """The training's wall time at ``now``, earlier trainings included: the one count both budget checks use."""
        if self._started is None:
            return self._previous
        return self._previous + (now - self._started)

    def on_train_start(self, **kwargs: Any) -> None:
        """Start the clock."""
        self._started = _clock()
        self._stopping = False

    def on_train_end(self, **kwargs: Any) -> None:
        """Stop the clock."""
        self._previous = self.elapsed_seconds
        self._started = None

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Stop the clock."""
        self.on_train_end()

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Start the epoch's clock."""
        self._epoch_started = self._last_batch = _clock()
        self._batches = 0

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Count the batch; check the budget."""
        self._batches += 1
        self._last_batch = now = _clock()
        if self.budget_seconds is not None and self._started is not None:
            self._check_budget(self._elapsed(now), kwargs.get("control"))

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Add the timings to ``metrics``; check the budget."""
        now = _clock()
        elapsed = self._elapsed(now)
        metrics["epoch_seconds"] = now - self._epoch_started
        metrics["elapsed_seconds"] = elapsed
        training = self._last_batch - self._epoch_started
        if self._batches and training > 0:
            metrics["batches_per_second"] = self._batches / training
        if self.budget_seconds is not None:
            self._check_budget(elapsed, kwargs.get("control"))

    def _check_budget(self, elapsed: float, control: Any) -> None:
        budget = self.budget_seconds
        if self._stopping or budget is None or elapsed < budget:
            return
        self._stopping = True
        reason = f"the time budget of {budget:g} s is spent ({elapsed:.1f} s elapsed)"
        _logger.info("%s: %s; stopping the training", self.plugin, reason)
        stop_training(control, reason, source=self.plugin)

    # -- state ----------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The elapsed time, so that a resumed training continues the count and the budget."""
        return {"elapsed_seconds": self.elapsed_seconds}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue from the elapsed time of :meth:`state_dict`."""
        self._previous = float(state_dict["elapsed_seconds"])
        if self._started is not None:
            self._started = _clock()
