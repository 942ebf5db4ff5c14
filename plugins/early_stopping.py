"""``early_stopping``: stop the training when a monitored metric stops improving."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.control import stop_training

from ._checks import check_choice, check_float, check_int, check_str
from ._metrics import MODES, EpochMonitor, improves

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from altametris.sara.core.hookspecs import Metrics

__all__ = ["EarlyStopping"]

_logger = logging.getLogger(__name__)


class EarlyStopping(BaseCallback):
    """Stop the training when ``monitor`` has not improved for ``patience`` epochs.

    At the end of every epoch it reads ``metrics[monitor]``. A value that beats the best so far by more than
    ``min_delta`` (lower in mode ``"min"``, higher in mode ``"max"``) resets the count of epochs without improvement;
    any other value (NaN included) adds one. When the count reaches ``patience``, it asks for a stop through the
    trainer's ``control`` context keyword, or raises
    :class:`~altametris.sara.core.control.StopTraining` when the trainer passed none. The stop reason names the
    metric, the best value and its epoch.

    Its counters are part of :meth:`state_dict`: a resumed training stops at the same epoch as an uninterrupted one.

    Args:
        monitor: the epoch metric to watch, such as ``"val_loss"``.
        mode: ``"min"`` when lower is better, ``"max"`` when higher is better.
        patience: how many epochs without improvement to accept; ``0`` stops at the first one.
        min_delta: how much better a value must be to count as an improvement (``>= 0``).

    Raises:
        PluginParameterError: for a parameter of the wrong type or value.

    Example:
        >>> from altametris.sara.core.control import TrainingControl
        >>> stopper = EarlyStopping(monitor="val_loss", patience=2)
        >>> control = TrainingControl()
        >>> for epoch, loss in enumerate([0.9, 0.5, 0.6, 0.55, 0.4]):
        ...     stopper.on_epoch_end(epoch, {"val_loss": loss}, control=control)
        ...     if control.should_stop:
        ...         break
        >>> epoch, control.stop_reason
        (3, "'val_loss' did not improve for 2 epochs (best 0.5 at epoch 1); stopping after epoch 3")
    """

    plugin = "early_stopping"
    parameter_choices: ClassVar[Mapping[str, Sequence[str]]] = {"mode": MODES}  # configs and `show` read it

    def __init__(
        self,
        *,
        monitor: str = "val_loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        self.monitor = check_str(self.plugin, "monitor", monitor)
        self.mode = check_choice(self.plugin, "mode", mode, MODES)
        self.patience = check_int(self.plugin, "patience", patience, minimum=0)
        self.min_delta = check_float(self.plugin, "min_delta", min_delta, minimum=0.0)
        self.best: float | None = None
        """The best value seen so far, ``None`` before the first epoch."""
        self.best_epoch: int | None = None
        """The epoch of :attr:`best`."""
        self.wait = 0
        """Epochs since the last improvement."""
        self.stopped_epoch: int | None = None
        """The epoch after which it asked for a stop, ``None`` while the training goes on."""
        self._watch = EpochMonitor(self.plugin, self.monitor)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(monitor={self.monitor!r}, mode={self.mode!r}, patience={self.patience}, "
            f"min_delta={self.min_delta})"
        )

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Compare the monitored value with the best so far; ask for a stop when patience runs out.

        An epoch that did not report ``monitor`` (no validation in it) is skipped when other epochs report it.
        """
        value = self._watch.value(metrics, epoch=epoch, callback=self)
        if value is None:
            return
        if improves(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return
        self.wait += 1
        if self.wait < self.patience or self.stopped_epoch is not None:
            return
        self.stopped_epoch = epoch
        improve = f"improve by more than {self.min_delta:g}" if self.min_delta else "improve"
        reason = (
            f"{self.monitor!r} did not {improve} for {self.wait} epoch{'s' if self.wait != 1 else ''} "
            f"(best {self.best:.6g} at epoch {self.best_epoch}); stopping after epoch {epoch}"
        )
        _logger.info("%s: %s", self.plugin, reason)
        stop_training(kwargs.get("control"), reason, source=self.plugin)

    def on_train_start(self, **kwargs: Any) -> None:
        """Forget a stop decided in an earlier training (a resumed one keeps its best value and count)."""
        self.stopped_epoch = None
        self._watch.started()

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Note that a new epoch began, without validation so far."""
        self._watch.epoch_started()

    def on_validation_end(self, metrics: Metrics, **kwargs: Any) -> None:
        """Note that this epoch has its validation."""
        self._watch.validated()

    def on_train_end(self, **kwargs: Any) -> None:
        """Fail when no epoch of the training reported ``monitor``."""
        self._watch.check_reported(callback=self)

    # -- state ----------------------------------------------------------------------------------------------------

    @property
    def state_key(self) -> str:
        """Unique per monitored metric and mode, so that two instances can watch two metrics."""
        return f"EarlyStopping{{monitor={self.monitor!r}, mode={self.mode!r}}}"

    def state_dict(self) -> dict[str, Any]:
        """The best value, its epoch and the count of epochs without improvement."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "patience": self.patience}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue from a saved state (the ``patience`` given to the constructor wins over the saved one)."""
        best = state_dict["best"]
        self.best = None if best is None else float(best)
        best_epoch = state_dict["best_epoch"]
        self.best_epoch = None if best_epoch is None else int(best_epoch)
        self.wait = int(state_dict["wait"])
        self._watch.seen = self.best is not None
