"""The Hugging Face bridge: SARA callbacks enabled by name inside a real ``transformers.Trainer``.

A randomly initialised ``BertForSequenceClassification`` from a small ``BertConfig`` on generated token ids: nothing
is downloaded. Skipped where transformers is not installed, except in tox env ``bridges`` (``SARA_REQUIRE_BRIDGES=1``).
"""

from __future__ import annotations

import json
import os
import signal
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import csv_rows, events_of

if os.environ.get("SARA_REQUIRE_BRIDGES") != "1":
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")

import torch
from altametris.sara.core import BaseCallback, CallbackManager, TrainingControl
from altametris.sara.core.control import Preempted
from altametris.sara.core.testing import EventRecorder
from altametris.sara.integrations.transformers import STATE_KEY, SaraCallback
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

if TYPE_CHECKING:
    from pathlib import Path

hf_logging.set_verbosity_error()


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Generated token ids; the label says whether the first token is in the upper half of the vocabulary."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 50, (size, 8), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = self.ids[index]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": (ids[0] >= 25).long()}


class CrashingTrainer(Trainer):
    crash_at: int | None = None
    sigterm_at: int | None = None

    def training_step(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.state.global_step == self.crash_at:
            raise RuntimeError("the training step failed")
        if self.state.global_step == self.sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler sends before it kills the job
        return super().training_step(*args, **kwargs)


def train(
    callback: SaraCallback, folder: Path, *, epochs: int = 3, crash_at: int | None = None, resume: bool = False,
    sigterm_at: int | None = None, **options: Any,
) -> Trainer:  # fmt: skip
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    settings: dict[str, Any] = {
        "output_dir": str(folder),
        "num_train_epochs": epochs,
        "per_device_train_batch_size": 8,
        "eval_strategy": "epoch",
        "save_strategy": "no",
        "logging_steps": 1,
        "learning_rate": 1e-2,
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
        "log_level": "error",
        "seed": 0,
    }
    settings.update(options)
    trainer = CrashingTrainer(
        model=BertForSequenceClassification(config),
        args=TrainingArguments(**settings),
        train_dataset=Tokens(32, 0),
        eval_dataset=Tokens(16, 1),
        callbacks=[callback.attach(None)],
    )
    callback.attach(trainer)
    trainer.crash_at = crash_at
    trainer.sigterm_at = sigterm_at
    with callback.guard():
        trainer.train(resume_from_checkpoint=resume or None)
    return trainer


def test_the_hooks_run_in_hookspec_order_with_every_steps_loss_and_eval_renamed_val(tmp_path: Path) -> None:
    recorder = EventRecorder()
    callback = SaraCallback(CallbackManager([recorder]))
    train(callback, tmp_path, epochs=2)
    step = ["on_batch_start", "on_before_optimizer_step", "on_after_optimizer_step", "on_batch_end"]
    predictions = len(events_of(recorder, "on_validation_batch_end")) // 2
    assert predictions > 0
    validation = ["on_validation_start", *["on_validation_batch_end"] * predictions, "on_validation_end"]
    epoch = ["on_epoch_start", *step * 4, *validation]
    assert recorder.hooks == ["on_train_start", *epoch, "on_epoch_end", *epoch, "on_epoch_end", "on_train_end"]
    assert [event.arguments["batch"] for event in events_of(recorder, "on_validation_batch_end")][:predictions] == list(
        range(predictions)
    )
    assert all(event.context["optimizer"] is not None for event in events_of(recorder, "on_before_optimizer_step"))
    assert [event.context["global_step"] for event in events_of(recorder, "on_batch_end")] == list(range(8))
    assert [event.epoch for event in events_of(recorder, "on_epoch_end")] == [0, 1]
    assert [event.batch for event in events_of(recorder, "on_batch_end")] == [0, 1, 2, 3] * 2
    batch = events_of(recorder, "on_batch_end")[0].arguments["metrics"]
    assert sorted(batch) == ["grad_norm", "learning_rate", "loss"]
    validation = events_of(recorder, "on_validation_end")[0].arguments["metrics"]
    assert sorted(validation) == ["val_loss"]
    ends = [event.arguments["metrics"] for event in events_of(recorder, "on_epoch_end")]
    losses = [event.arguments["metrics"]["loss"] for event in events_of(recorder, "on_batch_end")[:4]]
    assert ends[0]["loss"] == pytest.approx(sum(losses) / 4)
    assert ends[0]["val_loss"] == validation["val_loss"]
    assert all(type(value) is float for metrics in ends for value in metrics.values())
    context = recorder.events[0].context
    assert sorted(context) == ["control", "epochs", "global_step", "model", "num_batches", "output_dir", "rank",
                               "save_checkpoint", "start_epoch", "trainer", "world_size"]  # fmt: skip
    assert (context["start_epoch"], context["global_step"], context["rank"], context["world_size"]) == (0, 0, 0, 1)
    assert (context["epochs"], context["num_batches"], str(context["output_dir"])) == (2, 4, str(tmp_path))
    assert isinstance(context["control"], TrainingControl)


def test_early_stopping_by_name_stops_the_trainer_after_the_epochs_evaluation(tmp_path: Path) -> None:
    config = {"callbacks": [{"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 1,
                                                                  "min_delta": 10.0}}]}  # fmt: skip
    callback = SaraCallback(config)
    trainer = train(callback, tmp_path, epochs=5)
    assert trainer.state.epoch == pytest.approx(2.0)  # epochs 0 and 1 ran: no improvement by 10 at epoch 1
    assert callback.control.stop_source == "early_stopping"
    assert "stopping after epoch 1" in (callback.control.stop_reason or "")


def test_csv_logger_and_checkpoint_write_through_the_trainer(tmp_path: Path) -> None:
    config = {
        "callbacks": [
            {"name": "csv_logger", "params": {"path": "metrics.csv"}},
            {"name": "checkpoint", "params": {"dirpath": "ckpt", "monitor": None, "save_top_k": 2}},
        ]
    }
    train(SaraCallback(config), tmp_path, epochs=3)
    table = csv_rows(tmp_path / "metrics.csv")
    assert [row["epoch"] for row in table] == ["0", "1", "2"]
    assert all(float(row["loss"]) > 0 and float(row["val_loss"]) > 0 for row in table)
    assert sorted(path.name for path in (tmp_path / "ckpt").iterdir()) == ["epoch001.ckpt", "epoch002.ckpt"]
    saved = torch.load(tmp_path / "ckpt" / "epoch002.ckpt", weights_only=False)
    assert sorted(saved) == ["model", "optimizer", STATE_KEY, "trainer_state"]
    assert "classifier.weight" in saved["model"]


def test_a_crash_in_the_training_step_reaches_on_exception_through_guard(tmp_path: Path) -> None:
    recorder = EventRecorder()
    manager = CallbackManager.from_config({"callbacks": [{"name": "csv_logger", "params": {"path": "m.csv"}}]})
    manager.add_callback(recorder)
    with pytest.raises(RuntimeError, match="the training step failed"):
        train(SaraCallback(manager), tmp_path, epochs=3, crash_at=5)
    assert recorder.hooks[-1] == "on_exception"
    assert (recorder.events[-1].epoch, recorder.events[-1].batch) == (1, 1)
    assert manager.callbacks[0]._file is None  # closed
    assert [row["epoch"] for row in csv_rows(tmp_path / "m.csv")] == ["0"]


CONFIG = {
    "callbacks": [
        {"name": "csv_logger", "params": {"path": "metrics.csv", "append": True}},
        {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 1}},
        "history",
    ]
}


@pytest.mark.parametrize("restore", [False, True], ids=["default", "restore_callback_states_from_checkpoint"])
def test_a_run_interrupted_and_resumed_from_the_trainers_checkpoint_ends_as_an_uninterrupted_one(
    tmp_path: Path, restore: bool
) -> None:
    options = {"save_strategy": "epoch", "restore_callback_states_from_checkpoint": restore}
    whole = SaraCallback(CONFIG)
    train(whole, tmp_path / "whole", epochs=6, **options)
    folder = tmp_path / "interrupted"
    with pytest.raises(RuntimeError):
        train(SaraCallback(CONFIG), folder, epochs=6, crash_at=9, **options)  # in epoch 2
    saved = json.loads((folder / "checkpoint-8" / "trainer_state.json").read_text())
    assert saved["stateful_callbacks"][STATE_KEY]["epoch"] == 1
    resumed = SaraCallback(CONFIG)
    train(resumed, folder, epochs=6, resume=True, **options)

    def history(callback: SaraCallback) -> list[tuple[int, dict[str, float]]]:
        kept = callback.manager.callbacks[2]
        return list(zip(kept.epochs, kept.metrics))  # type: ignore[attr-defined]

    got, expected = history(resumed), history(whole)
    assert [epoch for epoch, _ in got] == [epoch for epoch, _ in expected]
    assert [metrics for _, metrics in got] == [pytest.approx(metrics, rel=1e-4) for _, metrics in expected]
    assert resumed.control.stop_reason == whole.control.stop_reason
    keep = ("epoch", "val_loss")
    assert [[row[k][:6] for k in keep] for row in csv_rows(folder / "metrics.csv")] == [
        [row[k][:6] for k in keep] for row in csv_rows(tmp_path / "whole" / "metrics.csv")
    ]


def test_the_example_plugin_of_a_real_distribution_runs_by_name(tmp_path: Path, example_plugin: str) -> None:
    config = {"callbacks": [{"name": "metric_alert", "params": {"monitor": "val_loss", "threshold": 0.0}}]}
    callback = SaraCallback(config)
    train(callback, tmp_path, epochs=2)
    alert = callback.manager.callbacks[0]
    assert type(alert).__module__ == "sara_plugin_example.metric_alert"
    assert [(epoch, metric) for epoch, metric, _ in alert.alerts] == [(0, "val_loss")]  # type: ignore[attr-defined]


def test_a_run_resumed_from_a_checkpoint_inside_an_epoch_ends_with_the_same_epoch_means(tmp_path: Path) -> None:
    options = {"save_strategy": "steps", "save_steps": 6}  # step 6: epoch 1, after its batch 1
    config = {"callbacks": ["history"]}
    whole = SaraCallback(config)
    train(whole, tmp_path / "whole", epochs=3, **options)
    folder = tmp_path / "interrupted"
    with pytest.raises(RuntimeError):
        train(SaraCallback(config), folder, epochs=3, crash_at=7, **options)
    saved = json.loads((folder / "checkpoint-6" / "trainer_state.json").read_text())["stateful_callbacks"][STATE_KEY]
    assert (saved["epoch"], saved["pending"]["epoch"], saved["pending"]["counts"]["loss"]) == (0, 1, 2)
    recorder = EventRecorder()
    resumed = SaraCallback(config)
    resumed.manager.add_callback(recorder)
    train(resumed, folder, epochs=3, resume=True, **options)
    assert [event.batch for event in events_of(recorder, "on_batch_end")][:2] == [2, 3]  # numbered within the epoch
    got, expected = resumed.manager.callbacks[0], whole.manager.callbacks[0]
    assert got.epochs == expected.epochs == [0, 1, 2]  # type: ignore[attr-defined]
    assert got.metrics == [pytest.approx(m, rel=1e-4) for m in expected.metrics]  # type: ignore[attr-defined]


class CheckpointWatcher(BaseCallback):
    """Records the checkpoint hooks with whether the folder was there, and the start of each training."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def on_checkpoint_save(self, path: str, **kwargs: Any) -> None:
        self.seen.append(("save", os.path.basename(path), os.path.isdir(path)))

    def on_checkpoint_load(self, path: str, **kwargs: Any) -> None:
        self.seen.append(("load", os.path.basename(path), os.path.isdir(path)))

    def on_train_start(self, **kwargs: Any) -> None:
        self.seen.append(("start", str(kwargs["start_epoch"]), kwargs["global_step"] > 0))


def test_each_checkpoint_the_trainer_saves_is_announced_and_a_resume_loads_before_on_train_start(
    tmp_path: Path,
) -> None:
    watcher = CheckpointWatcher()
    train(SaraCallback(CallbackManager([watcher])), tmp_path, epochs=2, save_strategy="epoch")
    assert watcher.seen == [("start", "0", False), ("save", "checkpoint-4", True), ("save", "checkpoint-8", True)]

    resumed = CheckpointWatcher()
    train(SaraCallback(CallbackManager([resumed])), tmp_path, epochs=3, save_strategy="epoch", resume=True)
    assert resumed.seen[:2] == [("load", "checkpoint-8", True), ("start", "2", True)]
    assert resumed.seen[2:] == [("save", "checkpoint-12", True)]


def test_with_gradient_accumulation_the_optimizer_hooks_run_once_per_optimizer_step(tmp_path: Path) -> None:
    recorder = EventRecorder()
    train(SaraCallback(CallbackManager([recorder])), tmp_path, epochs=1, gradient_accumulation_steps=2)
    assert len(events_of(recorder, "on_before_optimizer_step")) == 2  # 4 batches of 8, one step per 2
    assert len(events_of(recorder, "on_after_optimizer_step")) == 2


BATCH_ROWS = {
    "callbacks": [
        {"name": "csv_logger", "params": {"path": "batches.csv", "append": True, "per_batch": True}},
        "history",
    ]
}


def _batch_rows(path: Path) -> list[tuple[str, str, str]]:
    return [(row["epoch"], row["batch"], row["loss"][:6]) for row in csv_rows(path)]


def test_a_run_resumed_from_a_step_checkpoint_keeps_every_batch_row_of_the_uninterrupted_run(tmp_path: Path) -> None:
    options = {"save_strategy": "steps", "save_steps": 6}  # step 6: epoch 1, after its batch 1
    train(SaraCallback(BATCH_ROWS), tmp_path / "whole", epochs=3, **options)
    folder = tmp_path / "interrupted"
    with pytest.raises(RuntimeError):
        train(SaraCallback(BATCH_ROWS), folder, epochs=3, crash_at=7, **options)
    train(SaraCallback(BATCH_ROWS), folder, epochs=3, resume=True, **options)
    got, expected = _batch_rows(folder / "batches.csv"), _batch_rows(tmp_path / "whole" / "batches.csv")
    assert len(expected) == 3 * 4 + 3  # every batch, and every epoch's row
    assert got == expected


def test_sigterm_ends_the_step_runs_on_train_end_then_exits_143_and_the_resume_ends_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    options = {"save_strategy": "epoch"}
    whole = SaraCallback(BATCH_ROWS)
    train(whole, tmp_path / "whole", epochs=4, **options)
    folder = tmp_path / "interrupted"
    first, recorder = SaraCallback(BATCH_ROWS), EventRecorder()
    first.manager.add_callback(recorder)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as preempted:
        train(first, folder, epochs=4, sigterm_at=9, **options)  # epoch 2, batch 1
    assert (preempted.value.code, preempted.value.last_epoch) == (143, 1)
    assert "resume_from_checkpoint=True" in str(preempted.value)
    assert signal.getsignal(signal.SIGTERM) is before
    assert recorder.hooks[-1] == "on_train_end"
    assert [(event.epoch, event.batch) for event in events_of(recorder, "on_batch_end")][-1] == (2, 1)
    assert [event.epoch for event in events_of(recorder, "on_epoch_end")] == [0, 1]  # the partial epoch dropped
    assert first.control.stop_reason is not None
    assert first.control.stop_reason.startswith("preempted")
    assert not (folder / "checkpoint-10").exists()  # the Trainer's last checkpoint is the resume point

    resumed = SaraCallback(BATCH_ROWS)
    train(resumed, folder, epochs=4, resume=True, **options)
    kept, expected = resumed.manager.callbacks[1], whole.manager.callbacks[1]
    assert kept.epochs == expected.epochs == [0, 1, 2, 3]  # type: ignore[attr-defined]
    assert kept.metrics == [pytest.approx(m, rel=1e-4) for m in expected.metrics]  # type: ignore[attr-defined]
    assert _batch_rows(folder / "batches.csv") == _batch_rows(tmp_path / "whole" / "batches.csv")
