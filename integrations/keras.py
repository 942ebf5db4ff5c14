"""SARA callbacks inside Keras 3 ``model.fit`` (any backend): ``model.fit(..., callbacks=[SaraCallback(cfg)])``.

Hook mapping (Keras callback method -> SARA hook):

* the first ``on_epoch_begin`` -> ``on_train_start`` (after loading the sidecar state of the epoch before it, when
  resuming), then ``on_epoch_start(epoch)``: Keras tells the first epoch (``initial_epoch``, or
  ``BackupAndRestore``'s) only there;
* ``on_train_batch_begin`` / ``on_train_batch_end`` -> ``on_batch_start(batch)`` / ``on_batch_end(batch, metrics)``;
  Keras's batch logs are the running means of the epoch so far, passed as they are;
* ``on_test_begin`` / ``on_test_end`` inside ``fit`` -> ``on_validation_start`` / ``on_validation_end(metrics)``
  (``val_*``); epochs that ``validation_freq`` skips have neither;
* ``on_test_batch_begin`` / ``on_test_batch_end`` of that validation -> ``on_validation_batch_start(batch)`` /
  ``on_validation_batch_end(batch, metrics)`` (Keras's running means of the validation so far);
* ``on_epoch_end`` -> ``on_epoch_end(epoch, metrics)``: Keras's epoch logs (the epoch's exact means, not a mean of
  running means) with this epoch's ``val_*`` only;
* ``on_train_end`` -> ``on_train_end``. Keras has no exception event: ``with callback.guard(): model.fit(...)``;
* a checkpoint written through the ``save_checkpoint`` context keyword -> ``on_checkpoint_save(path)`` once the hook
  that wrote it returned; a resume that read the ``state_path`` file -> ``on_checkpoint_load(state_path)`` right
  before ``on_train_start``. Keras's own ``ModelCheckpoint`` and ``BackupAndRestore`` hold no SARA state and tell
  callbacks nothing: they call neither.

``model.fit`` runs the backward pass and the optimizer inside its compiled step: ``on_after_backward`` and the
optimizer hooks are not supplied. ``on_train_start`` gets ``start_epoch``, ``global_step`` (restored from the state
file on resume), ``rank`` and ``world_size``; every training batch hook ``global_step``.

A stop request sets ``model.stop_training`` after every batch and every epoch. SIGTERM, while the training runs,
is a preemption: the batch finishes, ``on_train_end`` runs, and :class:`~altametris.sara.core.control.Preempted`
ends the process with status 143, from inside that batch's ``on_train_batch_end``: the partial epoch is dropped (no
validation, no ``on_epoch_end``, no state file written; ``BackupAndRestore`` keeps its backup, which a finished
``fit`` deletes), and a resume starts from the last checkpoint as after any kill. Keras checkpoints hold no callback
state: with ``state_path``, the manager's state is written after every epoch's end to that JSON file (atomically;
put it next to the ``ModelCheckpoint`` or ``BackupAndRestore`` files), keyed by epoch, and read back when a training
starts after epoch 0.
"""

from __future__ import annotations

import contextlib
import pathlib
import zipfile
from typing import TYPE_CHECKING, Any

from altametris.sara.core.distributed import rank_info
from altametris.sara.core.exceptions import StateError
from altametris.sara.core.files import AnnouncingSaver

from ._bridge import Bridge, missing_framework, plain_metrics, read_json, validation_metrics, write_json

try:
    import keras
except ImportError as error:  # pragma: no cover - the bridges env has it; elsewhere the tests skip
    raise missing_framework("keras (Keras 3)", "keras", error) from error

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator

    from altametris.sara.core.base_callback import CallbackManager, ConfigSource
    from altametris.sara.core.control import TrainingControl

__all__ = ["STATE_MEMBER", "SaraCallback"]

_RESUME = "resume it from its last checkpoint (BackupAndRestore, or initial_epoch) with the same state_path"

STATE_MEMBER = "sara_state.json"
"""The member of a ``.keras`` file written by ``save_checkpoint`` that holds the SARA state."""


class SaraCallback(keras.callbacks.Callback):  # type: ignore[misc]  # keras is untyped for mypy here
    """Runs a SARA :class:`~altametris.sara.core.base_callback.CallbackManager` inside Keras 3 ``model.fit``.

    Context keywords of every hook: ``model``, ``epochs``, ``control``, ``num_batches`` (``steps`` when known),
    ``output_dir`` (given, else the current directory), ``save_checkpoint`` (writes the whole model in the ``.keras``
    format to the path given, the SARA state inside it as ``sara_state.json``) and ``trainer`` (the model).

    Args:
        source: a manager, or a config (a mapping, or a ``.toml``/``.yaml``/``.json`` path).
        output_dir: the folder for relative paths of file-writing callbacks.
        state_path: the sidecar JSON file of the callbacks' state; ``None`` keeps none.
    """

    def __init__(
        self,
        source: CallbackManager | ConfigSource,
        *,
        output_dir: str | os.PathLike[str] | None = None,
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self._bridge = Bridge(source, framework="keras", resume=_RESUME)
        self.manager = self._bridge.manager
        self._output_dir = pathlib.Path(output_dir) if output_dir is not None else None
        self.state_path = pathlib.Path(state_path) if state_path is not None else None
        self._started = False
        self._in_fit = False
        self._sidecar: dict[str, Any] = {}

    @property
    def control(self) -> TrainingControl:
        """The control object of the current (or last) training."""
        return self._bridge.control

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run ``on_exception`` when the block (``model.fit``) raises; the error goes on."""
        with self._bridge.guard():
            yield

    # -- Keras callback methods ---------------------------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Wait for the first epoch: only it says where the training starts."""
        self._started, self._in_fit = False, True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """``on_train_start`` at the first epoch, then ``on_epoch_start``."""
        if not self._started:
            self._started = True
            self._load(epoch)
            params = self.params or {}
            self._bridge.start(
                start_epoch=epoch,
                model=self.model,
                epochs=params.get("epochs"),
                num_batches=params.get("steps"),
                output_dir=self._output_dir or pathlib.Path.cwd(),
                save_checkpoint=AnnouncingSaver(self._save_checkpoint, self._bridge.written),
                trainer=self.model,
            )
        self._bridge.epoch_start(epoch)
        self._stop_if_asked()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """``on_batch_start``."""
        self._bridge.batch_start(batch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """``on_batch_end`` with Keras's running means; then the stop check."""
        self._bridge.batch_end(batch, plain_metrics(logs))
        if self._bridge.stop_after_batch() and self.model is not None:
            self.model.stop_training = True

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """``on_validation_start`` for the validation inside ``fit``."""
        if self._bridge.running and self._bridge.epoch is not None:
            self._bridge.validation_start()

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """``on_validation_batch_start`` inside ``fit``'s validation."""
        self._bridge.validation_batch(self.manager.on_validation_batch_start, batch)

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """``on_validation_batch_end`` with Keras's running means of the validation."""
        self._bridge.validation_batch(self.manager.on_validation_batch_end, batch, plain_metrics(logs))

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """``on_validation_end`` with the validation's numbers, named ``val_*``."""
        if self._bridge.running and self._bridge.in_validation:
            self._bridge.validation_end(validation_metrics(logs))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """``on_epoch_end`` with the epoch's training logs and this epoch's validation; the sidecar; the stop check."""
        training = plain_metrics({key: value for key, value in (logs or {}).items() if not key.startswith("val_")})
        self._bridge.epoch_end(epoch, training)
        if self.state_path is not None and _rank_zero():
            # The last two epochs: a checkpoint callback after this one may die before writing epoch N's files.
            self._sidecar = {
                **{k: v for k, v in self._sidecar.items() if k == str(epoch - 1)},
                str(epoch): self._bridge.state(),
            }
            write_json(self.state_path, {"format": 1, "states": self._sidecar})
        self._stop_if_asked()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """``on_train_end``."""
        self._in_fit = False
        self._bridge.end()

    # -- helpers ------------------------------------------------------------------------------------------------

    def _load(self, first_epoch: int) -> None:
        """Give the manager the sidecar's state when the training starts after epoch 0."""
        path = self.state_path
        if first_epoch == 0 or path is None or not path.is_file():
            return
        saved = read_json(path, framework="keras")
        states = saved.get("states") if isinstance(saved, dict) else None
        state = states.get(str(first_epoch - 1)) if isinstance(states, dict) else None
        if state is None:
            kept = sorted(states, key=int) if isinstance(states, dict) else []
            raise StateError(
                f"keras: the SARA state file {str(path)!r} has the state after epochs {kept}, not after epoch "
                f"{first_epoch - 1}, where the training resumes; resume from the checkpoint of one of those epochs, "
                f"or delete the file to start the callbacks afresh"
            )
        self._sidecar = {str(first_epoch - 1): state}
        self._bridge.load(state, where=str(path), path=str(path))

    def _stop_if_asked(self) -> None:
        if self._bridge.should_stop() and self.model is not None:
            self.model.stop_training = True

    def _save_checkpoint(self, path: str) -> None:
        """Write the model as a ``.keras`` archive to ``path``, with the SARA state as its ``sara_state.json``."""
        import json
        import os

        target = pathlib.Path(path)
        archive_path = target.with_name(target.name + ".keras")  # model.save checks the name's suffix
        try:
            self.model.save(archive_path)
            with zipfile.ZipFile(archive_path, "a") as archive:
                archive.writestr(STATE_MEMBER, json.dumps(self._bridge.state()))
            os.replace(archive_path, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                archive_path.unlink()


def _rank_zero() -> bool:
    return rank_info().is_zero
