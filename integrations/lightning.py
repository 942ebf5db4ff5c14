"""SARA callbacks inside a PyTorch Lightning 2.x ``Trainer``: ``Trainer(callbacks=[SaraCallback("train.toml")])``.

Hook mapping (Lightning hook -> SARA hook):

* ``on_train_start`` -> ``on_train_start``;
* ``on_train_epoch_start`` -> ``on_epoch_start(trainer.current_epoch)``;
* ``on_train_batch_start`` / ``on_train_batch_end`` -> ``on_batch_start(batch_idx)`` / ``on_batch_end(batch_idx,
  metrics)``, the metrics being the numbers ``training_step`` returned (``loss`` and the other entries of its dict);
* ``on_validation_start`` / ``on_validation_end`` of the fit loop -> ``on_validation_start`` /
  ``on_validation_end(metrics)``, the metrics being what this validation logged, named ``val_*``; the sanity check
  before the first epoch is not an epoch's validation and calls nothing;
* ``on_train_epoch_end`` (which Lightning calls after the epoch's validation) -> ``on_epoch_end(epoch, metrics)``:
  the means of the batches' numbers, what the epoch logged (``self.log(..., on_epoch=True)``) and this epoch's
  validation only (Lightning's ``callback_metrics`` keep values of earlier epochs: they are never passed on);
* ``on_train_end`` -> ``on_train_end``; ``on_exception`` -> ``on_exception(error)``.

A stop request (or :class:`~altametris.sara.core.control.StopTraining`) sets ``trainer.should_stop``, agreed across
ranks under ``strategy="ddp"``, after every batch and every epoch. The manager's state, gathered after each
``on_epoch_end``, is this callback's ``state_dict()``: Lightning stores it in every checkpoint under
:attr:`SaraCallback.state_key` and gives it back on ``trainer.fit(..., ckpt_path=...)``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._bridge import Bridge, missing_framework, plain_metrics, to_float, validation_metrics

try:
    from lightning.pytorch import Callback
except ImportError as error:  # pragma: no cover - the bridges env has it; elsewhere the tests skip
    raise missing_framework("lightning (PyTorch Lightning 2.x)", "lightning", error) from error

if TYPE_CHECKING:
    import os

    import lightning.pytorch as pl
    from altametris.sara.core.base_callback import CallbackManager, ConfigSource
    from altametris.sara.core.control import TrainingControl

__all__ = ["SaraCallback"]


class SaraCallback(Callback):  # type: ignore[misc]  # Lightning's Callback is untyped for mypy here
    """Runs a SARA :class:`~altametris.sara.core.base_callback.CallbackManager` inside a Lightning ``Trainer``.

    Context keywords of every hook: ``model`` (the ``LightningModule``), ``epochs`` (``max_epochs``), ``control``,
    ``num_batches`` (when finite), ``output_dir`` (``output_dir`` if given, else ``trainer.default_root_dir``),
    ``save_checkpoint`` (writes a full Lightning checkpoint, resumable with ``ckpt_path``, to the path given; on
    rank 0 only, without waiting for the other ranks) and ``trainer``.

    Args:
        source: a manager, or a config (a mapping, or a ``.toml``/``.yaml``/``.json`` path).
        output_dir: the folder for relative paths of file-writing callbacks, instead of ``default_root_dir``.

    Attributes:
        manager: the callbacks.
    """

    def __init__(
        self, source: CallbackManager | ConfigSource, *, output_dir: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__()
        self._bridge = Bridge(source, framework="lightning")
        self.manager = self._bridge.manager
        self._output_dir = None if output_dir is None else pathlib.Path(output_dir)
        self._trainer: pl.Trainer | None = None
        self._epoch_before: dict[str, object] = {}
        self._validation_before: dict[str, object] = {}
        self._validation_keys: frozenset[str] = frozenset()

    @property
    def control(self) -> TrainingControl:
        """The control object of the current (or last) training."""
        return self._bridge.control

    @property
    def state_key(self) -> str:
        """The key of the manager's state in Lightning checkpoints."""
        return "SaraCallback"

    # -- Lightning hooks ----------------------------------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the SARA training, with the context keywords."""
        self._trainer = trainer
        batches = trainer.num_training_batches
        self._bridge.start(
            model=pl_module,
            epochs=trainer.max_epochs,
            num_batches=int(batches) if batches != float("inf") else None,
            output_dir=self._output_dir or pathlib.Path(trainer.default_root_dir),
            save_checkpoint=self._save_checkpoint,
            trainer=trainer,
        )
        self._stop_if_asked(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_epoch_start``."""
        self._epoch_before = dict(trainer.callback_metrics)
        self._validation_keys = frozenset()
        self._bridge.epoch_start(trainer.current_epoch)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """``on_batch_start``."""
        self._bridge.batch_start(batch_idx)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """``on_batch_end`` with the numbers ``training_step`` returned; then the stop check."""
        if isinstance(outputs, Mapping):
            metrics = plain_metrics(outputs)
        else:
            loss = to_float(outputs)
            metrics = {} if loss is None else {"loss": loss}
        self._bridge.batch_end(batch_idx, metrics)
        self._stop_if_asked(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_validation_start``, for an epoch's validation (not the sanity check, not ``trainer.validate``)."""
        if trainer.sanity_checking or not self._bridge.running or self._bridge.epoch is None:
            return
        self._validation_before = dict(trainer.callback_metrics)
        self._bridge.validation_start()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_validation_end`` with what this validation logged, named ``val_*``."""
        if trainer.sanity_checking or not self._bridge.running or not self._bridge.in_validation:
            return
        logged = _updated(self._validation_before, trainer.callback_metrics)
        self._validation_keys = self._validation_keys | logged.keys()
        self._bridge.validation_end(validation_metrics(logged))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_epoch_end`` with the epoch's training figures and this epoch's validation; then the stop check."""
        if self._bridge.epoch != trainer.current_epoch:  # resumed from a checkpoint written by this epoch's validation
            self._epoch_before = {}
            self._bridge.reenter(trainer.current_epoch)
            self._validation_keys = frozenset(self._bridge.validation or ())
        logged = _updated(self._epoch_before, trainer.callback_metrics)
        training = plain_metrics({key: value for key, value in logged.items() if key not in self._validation_keys})
        self._bridge.epoch_end(trainer.current_epoch, training)
        self._stop_if_asked(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_train_end``."""
        self._bridge.end()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """``on_exception``: Lightning re-raises the error afterwards."""
        self._bridge.exception(exception)

    # -- state --------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The manager's state as of the last ``on_epoch_end``, for Lightning's checkpoint."""
        return self._bridge.state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Give the manager the state of a Lightning checkpoint (``trainer.fit(..., ckpt_path=...)``)."""
        self._bridge.load(state_dict, where=f"the Lightning checkpoint (callbacks[{self.state_key!r}])")

    # -- helpers ------------------------------------------------------------------------------------------------

    def _stop_if_asked(self, trainer: pl.Trainer) -> None:
        if self._bridge.should_stop():
            trainer.should_stop = True

    def _save_checkpoint(self, path: str) -> None:
        """Write a full Lightning checkpoint to ``path``.

        ``trainer.save_checkpoint`` waits for every rank, but callbacks that write files run on rank 0 only
        (``rank_zero_only``): the checkpoint is dumped and written by this rank alone.
        """
        trainer = self._trainer
        if trainer is None:  # pragma: no cover - the context keyword exists only once the training started
            raise RuntimeError("save_checkpoint called before the training started")
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)


def _updated(before: Mapping[str, object], now: Mapping[str, object]) -> dict[str, object]:
    """The entries of ``now`` that are new since ``before``.

    Lightning stores each newly logged value as a new object, and keeps the objects of keys nobody logged again.
    """
    return {key: value for key, value in now.items() if before.get(key) is not value}
