"""SARA callbacks inside the Hugging Face ``transformers`` ``Trainer``: ``Trainer(..., callbacks=[SaraCallback(cfg)])``.

Hook mapping (``TrainerCallback`` event -> SARA hook):

* ``on_train_begin`` -> ``on_train_start`` (after giving the manager the state of the checkpoint resumed, if any);
* ``on_epoch_begin`` -> ``on_epoch_start(epoch)``, ``epoch`` the whole number of epochs done (``state.epoch`` is a
  float, and holds a fraction when the training resumes inside an epoch);
* ``on_step_begin`` -> ``on_batch_start(batch)``: one SARA batch per optimizer step, numbered within the epoch;
* ``on_step_end`` -> ``on_batch_end(batch, metrics)`` when the step logs nothing; when it logs
  (``logging_steps``), ``on_log`` of that step -> ``on_batch_end`` with the logged numbers (``loss``, ``grad_norm``,
  ``learning_rate``). The Trainer gives callbacks no per-step loss: set ``logging_steps=1`` to have every batch's;
* ``on_pre_optimizer_step`` / ``on_optimizer_step`` -> ``on_before_optimizer_step(batch)`` (``optimizer`` in its
  context; after gradient clipping) / ``on_after_optimizer_step(batch)``, between the step's ``on_batch_start`` and
  ``on_batch_end``. The Trainer has no event right after the backward pass: ``on_after_backward`` is not supplied;
* ``on_prediction_step`` of an evaluation inside the training -> ``on_validation_start`` at the first, then
  ``on_validation_batch_end(batch, {})`` after each (the Trainer gives callbacks neither the step's loss nor an event
  before a prediction step: ``on_validation_batch_start`` is not supplied);
* ``on_evaluate`` -> ``on_validation_end(metrics)`` (``eval_*`` renamed ``val_*``);
* ``on_epoch_end`` -> ``on_epoch_end(epoch, metrics)`` when no evaluation follows; the Trainer calls its
  ``on_epoch_end`` before it evaluates and saves, so with ``eval_strategy="epoch"`` the SARA ``on_epoch_end`` runs
  at ``on_evaluate``, after the validation and before the checkpoint is written;
* ``on_save`` (after the Trainer wrote ``checkpoint-<global_step>``) -> ``on_checkpoint_save(path)``, the path of that
  folder;
* ``trainer.train(resume_from_checkpoint=...)`` -> ``on_checkpoint_load(path)`` (the checkpoint folder), right before
  ``on_train_start``;
* ``on_train_end`` -> ``on_train_end``. The Trainer has no exception event: wrap the call,
  ``with callback.guard(): trainer.train()``, for ``on_exception``.

``on_train_start`` gets ``start_epoch``, ``global_step``, ``rank`` and ``world_size``; every training batch hook
``global_step`` (``state.global_step``: optimizer steps completed, which are the SARA batches here).

A stop request sets ``control.should_training_stop`` (agreed across ranks under ``torchrun``) after every batch and
every epoch. SIGTERM, while the training runs, is a preemption (the Trainer itself would die at once, with no hook
run): the step finishes, ``on_train_end`` runs, and :class:`~altametris.sara.core.control.Preempted` ends the
process with status 143, from inside that step's event: the partial epoch is dropped (no evaluation, no
``on_epoch_end``, no checkpoint), and ``trainer.train(resume_from_checkpoint=True)`` resumes from the Trainer's
last checkpoint as after any kill.

The manager's state, gathered after each ``on_epoch_end`` (at the step, for a checkpoint inside an epoch), is
written into ``trainer_state.json`` of every checkpoint (under ``stateful_callbacks["sara"]``) and read back on
``trainer.train(resume_from_checkpoint=...)``, whatever ``restore_callback_states_from_checkpoint`` says.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import pathlib
from typing import TYPE_CHECKING, Any

from altametris.sara.core.files import AnnouncingSaver

from ._bridge import Bridge, missing_framework, plain_metrics, validation_metrics

try:
    from transformers import TrainerCallback
except ImportError as error:  # pragma: no cover - the bridges env has it; elsewhere the tests skip
    raise missing_framework("transformers", "transformers", error) from error

if TYPE_CHECKING:
    from collections.abc import Iterator

    from altametris.sara.core.base_callback import CallbackManager, ConfigSource
    from altametris.sara.core.control import TrainingControl
    from transformers import TrainerControl, TrainerState, TrainingArguments

__all__ = ["STATE_KEY", "SaraCallback"]

_RESUME = "resume it from its last checkpoint with trainer.train(resume_from_checkpoint=True)"

STATE_KEY = "sara"
"""The key of the manager's state in ``trainer_state.json``'s ``stateful_callbacks``."""


class SaraCallback(TrainerCallback):  # type: ignore[misc]  # transformers is untyped for mypy here
    """Runs a SARA :class:`~altametris.sara.core.base_callback.CallbackManager` inside a ``transformers.Trainer``.

    Context keywords of every hook: ``model``, ``epochs`` (``num_train_epochs``), ``control``, ``num_batches``
    (optimizer steps per epoch), ``output_dir`` (``args.output_dir`` unless given), ``save_checkpoint`` (writes the
    model's weights, the optimizer's state, the trainer state and the SARA state with ``torch.save`` to the path
    given) and ``trainer`` (the ``TrainerCallback`` events do not carry the Trainer: pass ``trainer=`` or call
    :meth:`attach`, else it is ``None``).

    Args:
        source: a manager, or a config (a mapping, or a ``.toml``/``.yaml``/``.json`` path).
        output_dir: the folder for relative paths of file-writing callbacks, instead of ``args.output_dir``.

    Attributes:
        manager: the callbacks.
    """

    def __init__(
        self, source: CallbackManager | ConfigSource, *, output_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self._bridge = Bridge(source, framework="transformers", resume=_RESUME)
        self.manager = self._bridge.manager
        self._output_dir = None if output_dir is None else pathlib.Path(output_dir)
        self._trainer: Any = None
        self._model: Any = None
        self._optimizer: Any = None
        self._state: TrainerState | None = None
        self._batch: int | None = None
        self._epoch_start_step = 0
        self._num_batches: int | None = None
        self._epoch_pending = False
        self._validating = False
        self._validation_batch = 0

    @property
    def control(self) -> TrainingControl:
        """The control object of the current (or last) training."""
        return self._bridge.control

    def attach(self, trainer: Any) -> SaraCallback:
        """Pass ``trainer`` to the hooks as the ``trainer`` context keyword; returns this callback."""
        self._trainer = trainer
        return self

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run ``on_exception`` when the block (``trainer.train()``) raises; the error goes on."""
        with self._bridge.guard():
            yield

    # -- TrainerCallback events ---------------------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Load the resumed checkpoint's SARA state, if any; start the SARA training."""
        saved = (state.stateful_callbacks or {}).get(STATE_KEY)
        if saved:
            self._bridge.load(
                saved,
                where=f"trainer_state.json (stateful_callbacks[{STATE_KEY!r}])",
                path=_resumed_from(args, state),
            )
        self._state, self._model, self._optimizer = state, kwargs.get("model"), kwargs.get("optimizer")
        epochs = int(args.num_train_epochs) if args.max_steps <= 0 else max(1, int(state.num_train_epochs))
        self._num_batches = max(1, state.max_steps // epochs) if state.max_steps > 0 else None
        self._bridge.start(
            start_epoch=math.floor((state.epoch or 0.0) + 1e-6),
            global_step=state.global_step,
            model=self._model,
            epochs=epochs,
            num_batches=self._num_batches,
            output_dir=self._output_dir or pathlib.Path(args.output_dir),
            save_checkpoint=AnnouncingSaver(self._save_checkpoint, self._bridge.written),
            trainer=self._trainer,
        )
        self._export(state)
        self._stop_if_asked(control)

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """``on_epoch_start``."""
        epoch = math.floor((state.epoch or 0.0) + 1e-6)  # 2.0 after two epochs; 1.5 when resumed inside epoch 1
        done = epoch * self._num_batches if self._num_batches else state.global_step
        self._epoch_start_step = min(done, state.global_step)
        self._epoch_pending = False
        self._bridge.epoch_start(epoch)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """``on_batch_start``."""
        self._batch = state.global_step - self._epoch_start_step
        self._bridge.batch_start(self._batch, state.global_step)

    def on_pre_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """``on_before_optimizer_step``, with ``optimizer`` in the context."""
        if self._batch is not None:
            self._bridge.in_batch(self.manager.on_before_optimizer_step, self._batch, optimizer=kwargs.get("optimizer"))

    def on_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """``on_after_optimizer_step``."""
        if self._batch is not None:
            self._bridge.in_batch(self.manager.on_after_optimizer_step, self._batch)

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """``on_validation_batch_end`` of an evaluation inside the training (``on_validation_start`` at its first)."""
        if not self._bridge.running or self._bridge.epoch is None:
            return
        if not self._bridge.in_validation:
            self._validation_batch = 0
            self._bridge.validation_start()
        self._bridge.validation_batch(self.manager.on_validation_batch_end, self._validation_batch, {})
        self._validation_batch += 1

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """``on_checkpoint_save`` with the folder the Trainer just wrote."""
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if self._bridge.running and os.path.isdir(path):
            self._bridge.saved(path)
            self._bridge.announce()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """``on_batch_end`` now, or at this step's ``on_log`` when the Trainer logs at this step."""
        if not control.should_log:
            self._batch_end({}, control)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``on_batch_end`` with the logged numbers of the step (evaluation and summary logs are not a batch's)."""
        if self._batch is not None and logs and "loss" in logs:
            self._batch_end(plain_metrics({k: v for k, v in logs.items() if k != "epoch"}), control)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """The validation of the epoch; with the epoch's end pending, ``on_epoch_end`` follows it."""
        if not self._bridge.running or self._bridge.epoch is None:
            return
        numbers = {
            k: v for k, v in (metrics or {}).items() if k != "epoch" and not k.endswith(("_runtime", "_per_second"))
        }
        self._bridge.validation_end(validation_metrics(numbers, strip="eval_"))
        if self._epoch_pending:
            self._epoch_end(state, control)

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """``on_epoch_end`` now, or after the evaluation the Trainer is about to run."""
        if self._batch is not None:  # the last step logged nothing the bridge saw: close it
            self._batch_end({}, control)
        if control.should_evaluate:
            self._epoch_pending = True
        else:
            self._epoch_end(state, control)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """``on_train_end``."""
        self._bridge.end()

    # -- helpers ------------------------------------------------------------------------------------------------

    def _batch_end(self, metrics: dict[str, float], control: TrainerControl) -> None:
        batch, self._batch = self._batch, None
        if batch is None:
            return
        self._bridge.batch_end(batch, metrics)
        if control.should_save and self._state is not None:  # a checkpoint inside the epoch follows this step
            self._export(self._state)
        if self._bridge.stop_after_batch():
            control.should_training_stop = True

    def _epoch_end(self, state: TrainerState, control: TrainerControl) -> None:
        self._epoch_pending = False
        epoch = self._bridge.epoch
        if epoch is None:  # pragma: no cover - an epoch ends only after it started
            return
        self._bridge.epoch_end(epoch)
        self._export(state)
        self._stop_if_asked(control)

    def _export(self, state: TrainerState) -> None:
        """Put the snapshot where the Trainer's next checkpoint writes it: ``trainer_state.json``."""
        if state.stateful_callbacks is None:  # pragma: no cover - TrainerState makes it a dict
            state.stateful_callbacks = {}
        state.stateful_callbacks[STATE_KEY] = self._bridge.state()

    def _stop_if_asked(self, control: TrainerControl) -> None:
        if self._bridge.should_stop():
            control.should_training_stop = True

    def _save_checkpoint(self, path: str) -> None:
        """Write the model's weights, the optimizer's state, the trainer state and the SARA state to ``path``."""
        import torch

        state = self._state
        torch.save(
            {
                "model": None if self._model is None else self._model.state_dict(),
                "optimizer": None if self._optimizer is None else self._optimizer.state_dict(),
                "trainer_state": None if state is None else dataclasses.asdict(state),
                STATE_KEY: self._bridge.state(),
            },
            path,
        )


def _resumed_from(args: TrainingArguments, state: TrainerState) -> str | None:
    """The checkpoint folder a training resumes from: the Trainer's own name for it, where it is there."""
    folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
    if os.path.isdir(folder):
        return folder
    given = args.resume_from_checkpoint
    return given if isinstance(given, str) else None
