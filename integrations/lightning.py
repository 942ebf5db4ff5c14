"""SARA callbacks inside a PyTorch Lightning 2.x ``Trainer``: ``Trainer(callbacks=[SaraCallback("train.toml")])``.

Hook mapping (Lightning hook -> SARA hook):

* ``on_train_start`` -> ``on_train_start``;
* ``on_train_epoch_start`` -> ``on_epoch_start(trainer.current_epoch)``; resumed from a checkpoint written inside an
  epoch, Lightning goes on at its next batch without that event: ``on_epoch_start`` comes before that batch;
* ``on_train_batch_start`` / ``on_train_batch_end`` -> ``on_batch_start(batch_idx)`` / ``on_batch_end(batch_idx,
  metrics)``, the metrics being the numbers ``training_step`` returned (``loss`` and the other entries of its dict);
* ``on_validation_start`` / ``on_validation_end`` of the fit loop -> ``on_validation_start`` /
  ``on_validation_end(metrics)``, the metrics being what this validation logged, named ``val_*``; the sanity check
  before the first epoch is not an epoch's validation and calls nothing;
* ``on_train_epoch_end`` (which Lightning calls after the epoch's validation) -> ``on_epoch_end(epoch, metrics)``:
  the means of the batches' numbers, what the epoch logged (``self.log(..., on_epoch=True)``) and this epoch's
  validation only (Lightning's ``callback_metrics`` keep values of earlier epochs: they are never passed on);
* ``on_after_backward`` -> ``on_after_backward(batch)``; ``on_before_optimizer_step`` (after the closure ran the
  step and the backward pass) -> ``on_before_optimizer_step(batch)`` with ``optimizer`` in its context; the batch's
  ``on_train_batch_end``, when the optimizer stepped in that batch -> ``on_after_optimizer_step(batch)``, before
  ``on_batch_end``: with gradient accumulation the optimizer hooks run only on the batches where it steps;
* ``on_validation_batch_start`` / ``on_validation_batch_end`` of an epoch's validation ->
  ``on_validation_batch_start(batch)`` / ``on_validation_batch_end(batch, metrics)`` (the numbers
  ``validation_step`` returned);
* a checkpoint written by a ``ModelCheckpoint`` (or by ``save_checkpoint``) -> ``on_checkpoint_save(path)`` at this
  callback's next hook: Lightning calls ``on_save_checkpoint`` before the file is written and no hook after it, and
  runs ``ModelCheckpoint`` after the other callbacks. A ``trainer.save_checkpoint(path)`` of your own is not seen;
* ``trainer.fit(..., ckpt_path=...)`` -> ``on_checkpoint_load(ckpt_path)`` once the state was restored, right before
  ``on_train_start``;
* ``on_train_end`` -> ``on_train_end``; ``on_exception`` -> ``on_exception(error)``.

``on_train_start`` gets ``start_epoch``, ``global_step``, ``rank`` and ``world_size``; every training batch hook
``global_step``: Lightning's count of the training batches completed (``batch_progress``), restored on resume.

A stop request (or :class:`~altametris.sara.core.control.StopTraining`) sets ``trainer.should_stop``, agreed across
ranks under ``strategy="ddp"``, after every batch and every epoch. SIGTERM, while the training runs, is a
preemption (in place of Lightning's own handler, which ends the process with status 0 and no ``on_train_end``): the
batch finishes, ``on_train_end`` runs, and :class:`~altametris.sara.core.control.Preempted` ends the process with
status 143, from inside that batch's ``on_train_batch_end``: the partial epoch is dropped (no validation, no
``on_epoch_end``, no checkpoint), and ``ckpt_path=`` resumes from Lightning's last checkpoint as after any kill.

The manager's state, gathered after each ``on_epoch_end`` (at the moment of the save for a checkpoint written
inside an epoch), is this callback's ``state_dict()``: Lightning stores it in every checkpoint under
:attr:`SaraCallback.state_key` and gives it back on ``trainer.fit(..., ckpt_path=...)``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from altametris.sara.core.files import AnnouncingSaver

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

_RESUME = "resume it from its last checkpoint with trainer.fit(..., ckpt_path=...)"


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
        self._bridge = Bridge(source, framework="lightning", resume=_RESUME)
        self.manager = self._bridge.manager
        self._output_dir = None if output_dir is None else pathlib.Path(output_dir)
        self._trainer: pl.Trainer | None = None
        self._epoch_before: dict[str, object] = {}
        self._validation_before: dict[str, object] = {}
        self._validation_keys: frozenset[str] = frozenset()
        self._batch: int | None = None  # the training batch running
        self._stepped = False  # whether the optimizer stepped in it
        self._saving: dict[int, str] | None = None  # ModelCheckpoints' last paths when a checkpoint was dumped
        self._own_save = False

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
        if self._bridge.resumed_from is not None and trainer.ckpt_path is not None:
            self._bridge.resumed_from = str(trainer.ckpt_path)
        self._bridge.start(
            start_epoch=trainer.current_epoch,
            global_step=_batches_done(trainer),
            model=pl_module,
            epochs=trainer.max_epochs,
            num_batches=int(batches) if batches != float("inf") else None,
            output_dir=self._output_dir or pathlib.Path(trainer.default_root_dir),
            save_checkpoint=AnnouncingSaver(self._save_checkpoint, self._bridge.written),
            trainer=trainer,
        )
        self._stop_if_asked(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_epoch_start``."""
        self._announce_saved(trainer)
        self._start_epoch(trainer)

    def _start_epoch(self, trainer: pl.Trainer) -> None:
        self._epoch_before = dict(trainer.callback_metrics)
        self._validation_keys = frozenset()
        self._bridge.epoch_start(trainer.current_epoch)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """``on_batch_start``; first ``on_epoch_start`` when resumed inside an epoch (Lightning starts it no more)."""
        self._announce_saved(trainer)
        if self._bridge.epoch != trainer.current_epoch:
            self._start_epoch(trainer)
        self._batch, self._stepped = batch_idx, False
        self._bridge.batch_start(batch_idx, _batches_done(trainer))

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_after_backward`` of the training batch running."""
        if self._batch is not None and self._bridge.running:
            self._bridge.in_batch(self.manager.on_after_backward, self._batch)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        """``on_before_optimizer_step``, with ``optimizer`` in the context."""
        if self._batch is not None and self._bridge.running:
            self._stepped = True
            self._bridge.in_batch(self.manager.on_before_optimizer_step, self._batch, optimizer=optimizer)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """``on_batch_end`` with the numbers ``training_step`` returned; then the stop check."""
        metrics = _step_metrics(outputs)
        if self._stepped:
            self._bridge.in_batch(self.manager.on_after_optimizer_step, batch_idx)
        self._batch, self._stepped = None, False
        self._bridge.batch_end(batch_idx, metrics)
        if self._bridge.stop_after_batch():
            trainer.should_stop = True

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_validation_start``, for an epoch's validation (not the sanity check, not ``trainer.validate``)."""
        self._announce_saved(trainer)
        if trainer.sanity_checking or not self._bridge.running or self._bridge.epoch is None:
            return
        self._validation_before = dict(trainer.callback_metrics)
        self._bridge.validation_start()

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """``on_validation_batch_start`` inside an epoch's validation."""
        if not trainer.sanity_checking:
            self._bridge.validation_batch(self.manager.on_validation_batch_start, batch_idx)

    def on_validation_batch_end(  # noqa: PLR0917 - Lightning's signature
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """``on_validation_batch_end`` with the numbers ``validation_step`` returned."""
        if not trainer.sanity_checking:
            self._bridge.validation_batch(self.manager.on_validation_batch_end, batch_idx, _step_metrics(outputs))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_validation_end`` with what this validation logged, named ``val_*``."""
        if trainer.sanity_checking or not self._bridge.running or not self._bridge.in_validation:
            return
        logged = _updated(self._validation_before, trainer.callback_metrics)
        self._validation_keys = self._validation_keys | logged.keys()
        self._bridge.validation_end(validation_metrics(logged))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``on_epoch_end`` with the epoch's training figures and this epoch's validation; then the stop check."""
        self._announce_saved(trainer)
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
        self._announce_saved(trainer)
        self._bridge.end()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """``on_exception``: Lightning re-raises the error afterwards."""
        self._bridge.exception(exception)

    # -- state --------------------------------------------------------------------------------------------------

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """A checkpoint is being dumped, not yet written: note where each ``ModelCheckpoint`` last wrote.

        The next hook sees which one wrote it (:meth:`_announce_saved`).
        """
        if self._saving is None and not self._own_save:
            self._saving = {id(callback): _last_saved(callback) for callback in trainer.checkpoint_callbacks}

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
        self._own_save = True
        try:
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        finally:
            self._own_save = False
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)

    def _announce_saved(self, trainer: pl.Trainer) -> None:
        """``on_checkpoint_save`` for the checkpoints ``ModelCheckpoint`` wrote since :meth:`on_save_checkpoint`."""
        before, self._saving = self._saving, None
        if before is None or not self._bridge.running:
            return
        for callback in trainer.checkpoint_callbacks:
            path = _last_saved(callback)
            if path and path != before.get(id(callback)) and pathlib.Path(path).exists():
                self._bridge.saved(path)
        self._bridge.announce()


def _step_metrics(outputs: Any) -> dict[str, float]:
    """The numbers a step returned: its dict's, or its one tensor as ``loss``."""
    if isinstance(outputs, Mapping):
        return plain_metrics(outputs)
    loss = to_float(outputs)
    return {} if loss is None else {"loss": loss}


def _batches_done(trainer: pl.Trainer) -> int | None:
    """The training batches completed (Lightning's progress tracking, restored on resume), where Lightning has it."""
    try:
        return int(trainer.fit_loop.epoch_loop.batch_progress.total.completed)
    except AttributeError:  # pragma: no cover - a Lightning without progress tracking
        return None


def _last_saved(callback: object) -> str:
    """The file a ``ModelCheckpoint`` last wrote (``""`` before its first)."""
    return str(getattr(callback, "_last_checkpoint_saved", "") or "")


def _updated(before: Mapping[str, object], now: Mapping[str, object]) -> dict[str, object]:
    """The entries of ``now`` that are new since ``before``.

    Lightning stores each newly logged value as a new object, and keeps the objects of keys nobody logged again.
    """
    return {key: value for key, value in now.items() if before.get(key) is not value}
