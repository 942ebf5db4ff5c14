"""The Lightning bridge: SARA callbacks enabled by name inside a real ``lightning.pytorch.Trainer``.

Tiny real trainings (a 2-layer MLP on generated data, CPU). Skipped where Lightning is not installed, except in tox
env ``bridges`` (``SARA_REQUIRE_BRIDGES=1``), where a missing Lightning fails.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import csv_rows, events_of

if os.environ.get("SARA_REQUIRE_BRIDGES") != "1":
    pytest.importorskip("lightning")

import lightning.pytorch as pl
import torch
from altametris.sara.core import CallbackManager, TrainingControl
from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.control import Preempted, StopTraining
from altametris.sara.core.testing import EventRecorder
from altametris.sara.integrations.lightning import SaraCallback
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # Lightning's own uses of deprecated torch APIs
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval:UserWarning"),
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty:UserWarning"),  # a resume
]

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

CURVE = [0.9, 0.7, 0.6, 0.65, 0.66, 0.5, 0.4, 0.3]
"""The validation loss of epoch N that the model logs: early stopping with patience 2 stops after epoch 4."""


class MLP(pl.LightningModule):
    """A 2-layer MLP; validation logs ``val_loss`` from :data:`CURVE`; ``crash_at`` fails the training step."""

    def __init__(
        self, crash_at: int | None = None, *, sigterm_at: tuple[int, int] | None = None, crash_batch: int = 1
    ) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        self.crash_at, self.crash_batch, self.sigterm_at = crash_at, crash_batch, sigterm_at

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.current_epoch == self.crash_at and batch_idx == self.crash_batch:
            raise RuntimeError("the training step failed")
        if (self.current_epoch, batch_idx) == self.sigterm_at:
            os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler sends before it kills the job
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", CURVE[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def loader() -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def train(
    callback: SaraCallback,
    folder: Path,
    *,
    epochs: int = 4,
    model: MLP | None = None,
    ckpt_path: str | None = None,
    extra: list[Any] | None = None,
    **options: Any,
) -> pl.Trainer:
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=[callback, *(extra or [])],
        default_root_dir=folder,
        logger=False,
        enable_checkpointing=bool(extra),
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        **options,
    )
    trainer.fit(model or MLP(), loader(), loader(), ckpt_path=ckpt_path)
    return trainer


def test_the_hooks_run_in_hookspec_order_0_indexed_with_this_epochs_validation_only(tmp_path: Path) -> None:
    recorder = EventRecorder()
    callback = SaraCallback(CallbackManager([recorder]))
    train(callback, tmp_path, epochs=3, check_val_every_n_epoch=2)
    step = ["on_after_backward", "on_before_optimizer_step", "on_after_optimizer_step"]
    epoch = ["on_epoch_start", *["on_batch_start", *step, "on_batch_end"] * 4]
    validation = ["on_validation_start", *["on_validation_batch_start", "on_validation_batch_end"] * 4,
                  "on_validation_end"]  # fmt: skip
    assert recorder.hooks == [
        "on_train_start",  # the sanity check's validation calls nothing
        *epoch,
        "on_epoch_end",
        *epoch,
        *validation,
        "on_epoch_end",
        *epoch,
        "on_epoch_end",
        "on_train_end",
    ]
    assert [event.epoch for event in events_of(recorder, "on_epoch_end")] == [0, 1, 2]
    assert [event.batch for event in events_of(recorder, "on_batch_end")][:4] == [0, 1, 2, 3]
    ends = [event.arguments["metrics"] for event in events_of(recorder, "on_epoch_end")]
    # Lightning still holds epoch 1's val_loss at epoch 2: it is not passed on.
    assert [sorted(metrics) for metrics in ends] == [["loss", "train_loss"], ["loss", "train_loss", "val_loss"],
                                                     ["loss", "train_loss"]]  # fmt: skip
    assert ends[1]["val_loss"] == pytest.approx(0.7)
    assert all(type(value) is float for metrics in ends for value in metrics.values())
    assert events_of(recorder, "on_validation_end")[0].arguments["metrics"] == {"val_loss": pytest.approx(0.7)}
    context = recorder.events[0].context
    assert sorted(context) == ["control", "epochs", "global_step", "model", "num_batches", "output_dir", "rank",
                               "save_checkpoint", "start_epoch", "trainer", "world_size"]  # fmt: skip
    assert (context["start_epoch"], context["global_step"], context["rank"], context["world_size"]) == (0, 0, 0, 1)
    steps = [event.context["global_step"] for event in events_of(recorder, "on_batch_start")]
    assert steps == list(range(12))
    assert all("optimizer" in event.context for event in events_of(recorder, "on_before_optimizer_step"))
    assert (context["epochs"], context["num_batches"], context["output_dir"]) == (3, 4, tmp_path)
    assert isinstance(context["control"], TrainingControl)
    assert isinstance(context["model"], MLP)
    assert all(event.context["control"] is context["control"] for event in recorder.events)


def test_early_stopping_enabled_by_name_stops_the_trainer_at_the_right_epoch(tmp_path: Path) -> None:
    config = {"callbacks": [{"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 2}}]}
    callback = SaraCallback(config)
    trainer = train(callback, tmp_path, epochs=8)
    assert trainer.current_epoch == 5  # epochs 0..4 ran, then the stop: Lightning counts the next epoch
    assert trainer.should_stop
    assert callback.control.stop_source == "early_stopping"
    assert "stopping after epoch 4" in (callback.control.stop_reason or "")


def test_stop_training_raised_by_a_callback_stops_the_trainer(tmp_path: Path) -> None:
    class Stopper(BaseCallback):
        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            if batch == 1:
                raise StopTraining("enough", source="stopper")

    recorder = EventRecorder()
    callback = SaraCallback(CallbackManager([recorder, Stopper()]))
    trainer = train(callback, tmp_path, epochs=4)
    assert callback.control.stop_reason == "enough"
    assert [event.batch for event in events_of(recorder, "on_batch_end")] == [0, 1]  # stopped after the batch
    assert recorder.hooks[-2:] == ["on_epoch_end", "on_train_end"]
    assert trainer.should_stop


def test_csv_logger_and_checkpoint_write_through_the_trainer(tmp_path: Path) -> None:
    config = {
        "callbacks": [
            {"name": "csv_logger", "params": {"path": "metrics.csv"}},
            {"name": "checkpoint", "params": {"dirpath": "ckpt", "monitor": "val_loss", "save_top_k": 2}},
        ]
    }
    train(SaraCallback(config), tmp_path, epochs=4)
    table = csv_rows(tmp_path / "metrics.csv")
    assert [row["epoch"] for row in table] == ["0", "1", "2", "3"]
    assert [float(row["val_loss"]) for row in table] == pytest.approx(CURVE[:4])
    assert all(float(row["loss"]) > 0 and float(row["train_loss"]) > 0 for row in table)
    # val_loss 0.9, 0.7, 0.6, 0.65: the best two are epochs 2 and 3; epochs 0 and 1 were written, then pruned.
    assert sorted(path.name for path in (tmp_path / "ckpt").iterdir()) == ["epoch002.ckpt", "epoch003.ckpt"]
    saved = torch.load(tmp_path / "ckpt" / "epoch002.ckpt", weights_only=False)
    assert "state_dict" in saved
    assert "SaraCallback" in saved["callbacks"]
    resumed, recorder = SaraCallback(config), EventRecorder()
    resumed.manager.add_callback(recorder)
    train(resumed, tmp_path / "again", epochs=5, ckpt_path=str(tmp_path / "ckpt" / "epoch003.ckpt"))
    # a full checkpoint: Lightning resumes it
    assert [event.epoch for event in events_of(recorder, "on_epoch_end")] == [4]


def test_a_crash_in_the_training_step_reaches_on_exception_and_closes_files(tmp_path: Path) -> None:
    recorder = EventRecorder()
    manager = CallbackManager.from_config({"callbacks": [{"name": "csv_logger", "params": {"path": "m.csv"}}]})
    manager.add_callback(recorder)
    with pytest.raises(RuntimeError, match="the training step failed"):
        train(SaraCallback(manager), tmp_path, epochs=3, model=MLP(crash_at=1))
    assert recorder.hooks[-1] == "on_exception"
    assert recorder.events[-1].epoch == 1
    assert str(recorder.events[-1].arguments["error"]) == "the training step failed"
    assert manager.callbacks[0].file_path is not None
    assert manager.callbacks[0]._file is None  # closed
    assert [row["epoch"] for row in csv_rows(tmp_path / "m.csv")] == ["0"]


CONFIG = {
    "callbacks": [
        {"name": "csv_logger", "params": {"path": "metrics.csv", "append": True}},
        {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 2}},
        "history",
    ]
}


def _history(callback: SaraCallback) -> list[Any]:
    history = callback.manager.callbacks[2]
    return list(zip(history.epochs, history.metrics))  # type: ignore[attr-defined]


@pytest.mark.parametrize("every", [1, 2], ids=["validation-every-epoch", "validation-every-2-epochs"])
def test_a_run_interrupted_and_resumed_from_lightnings_checkpoint_ends_as_an_uninterrupted_one(
    tmp_path: Path, every: int
) -> None:
    whole = SaraCallback(CONFIG)
    train(whole, tmp_path / "whole", epochs=8, check_val_every_n_epoch=every)

    folder = tmp_path / "interrupted"
    checkpoints = ModelCheckpoint(dirpath=folder / "ckpt", save_last=True)
    with pytest.raises(RuntimeError):
        train(SaraCallback(CONFIG), folder, epochs=8, model=MLP(crash_at=3), extra=[checkpoints],
              check_val_every_n_epoch=every)  # fmt: skip
    resumed = SaraCallback(CONFIG)
    again = ModelCheckpoint(dirpath=folder / "ckpt", save_last=True)
    last = str(folder / "ckpt" / "last.ckpt")
    train(resumed, folder, epochs=8, ckpt_path=last, extra=[again], check_val_every_n_epoch=every)

    got, expected = _history(resumed), _history(whole)
    if every == 2:
        # Known limit: validating every 2 epochs, ModelCheckpoint writes at the validation, before the epoch's end;
        # Lightning then resumes at that epoch's end, and the values logged with on_epoch=True in training_step are
        # not in its checkpoint: that one epoch gets the batches' means and the validation, without them.
        got[1][1].setdefault("train_loss", expected[1][1]["train_loss"])
    assert [(epoch, sorted(metrics)) for epoch, metrics in got] == [(e, sorted(m)) for e, m in expected]
    assert [metrics for _, metrics in got] == [pytest.approx(metrics, rel=1e-5) for _, metrics in expected]
    assert resumed.control.stop_reason == whole.control.stop_reason
    assert (whole.control.stop_reason is not None) == (every == 1)  # val_loss every 2 epochs keeps improving
    if every == 1:  # the checkpoint was written after epoch 2's end: the CSV rows are those of the whole run
        keep = ("epoch", "val_loss")
        assert [{k: row[k] for k in keep} for row in csv_rows(folder / "metrics.csv")] == [
            {k: row[k] for k in keep} for row in csv_rows(tmp_path / "whole" / "metrics.csv")
        ]


def test_the_example_plugin_of_a_real_distribution_runs_by_name(tmp_path: Path, example_plugin: str) -> None:
    config = {"callbacks": [{"name": "metric_alert", "params": {"monitor": "val_loss", "threshold": 0.62,
                                                                "direction": "below"}}]}  # fmt: skip
    callback = SaraCallback(config)
    train(callback, tmp_path, epochs=4)
    alert = callback.manager.callbacks[0]
    assert type(alert).__module__ == "sara_plugin_example.metric_alert"
    assert [(epoch, metric) for epoch, metric, _ in alert.alerts] == [(2, "val_loss")]  # type: ignore[attr-defined]


def test_a_tracker_enabled_by_name_logs_a_lightning_training(tmp_path: Path) -> None:
    # The tensorboard_logger built-in through the bridge: batch scalars at the global step, epoch scalars with the
    # validation, the event files read back with TensorBoard's own reader.
    if os.environ.get("SARA_REQUIRE_BRIDGES") != "1":
        pytest.importorskip("tensorboardX")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = {"callbacks": [{"name": "tensorboard_logger", "params": {"log_dir": "tb"}, "on_error": "raise"}]}
    train(SaraCallback(config), tmp_path, epochs=3)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    batch_steps = [event.step for event in events.Scalars("batch/loss")]
    assert batch_steps == list(range(1, 13))  # 4 batches an epoch, 3 epochs, steps = batches seen
    assert [event.step for event in events.Scalars("epoch/val_loss")] == [4, 8, 12]
    assert [event.value for event in events.Scalars("epoch/val_loss")] == pytest.approx(CURVE[:3])


class CheckpointWatcher(BaseCallback):
    """Records the checkpoint hooks, with whether the file was there, and where on_train_start came."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def on_checkpoint_save(self, path: str, **kwargs: Any) -> None:
        self.seen.append(("save", path, os.path.exists(path)))

    def on_checkpoint_load(self, path: str, **kwargs: Any) -> None:
        self.seen.append(("load", path, os.path.exists(path)))

    def on_train_start(self, **kwargs: Any) -> None:
        self.seen.append(("start", str(kwargs["start_epoch"]), kwargs["global_step"] > 0))


def test_checkpoint_save_follows_the_written_file_and_a_resume_loads_before_on_train_start(tmp_path: Path) -> None:
    watcher = CheckpointWatcher()
    first = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=-1)
    train(SaraCallback(CallbackManager([watcher])), tmp_path, epochs=2, extra=[first])
    saves = [(path, there) for kind, path, there in watcher.seen if kind == "save"]
    assert saves, watcher.seen
    assert all(there for _, there in saves)  # the file existed when on_checkpoint_save ran
    assert watcher.seen[0] == ("start", "0", False)

    resumed = CheckpointWatcher()
    last = str(tmp_path / "ckpt" / "last.ckpt")
    again = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    train(SaraCallback(CallbackManager([resumed])), tmp_path, epochs=3, ckpt_path=last, extra=[again])
    assert resumed.seen[:2] == [("load", last, True), ("start", "2", True)]


def test_a_callback_overriding_a_hook_lightning_supplies_gets_no_warning(tmp_path: Path) -> None:
    class Clipper(BaseCallback):
        def on_after_backward(self, batch: int, **kwargs: Any) -> None:
            self.seen = kwargs["global_step"]

    clipper = Clipper()
    train(SaraCallback(CallbackManager([clipper])), tmp_path, epochs=1)  # filterwarnings = error: none raised
    assert clipper.seen == 3


def test_with_gradient_accumulation_the_optimizer_hooks_run_only_on_the_batches_that_step(tmp_path: Path) -> None:
    recorder = EventRecorder()
    train(SaraCallback(CallbackManager([recorder])), tmp_path, epochs=1, accumulate_grad_batches=2)
    assert [event.batch for event in events_of(recorder, "on_after_backward")] == [0, 1, 2, 3]
    assert [event.batch for event in events_of(recorder, "on_before_optimizer_step")] == [1, 3]
    assert [event.batch for event in events_of(recorder, "on_after_optimizer_step")] == [1, 3]


BATCH_ROWS = {
    "callbacks": [
        {"name": "csv_logger", "params": {"path": "batches.csv", "append": True, "per_batch": True}},
        "history",
    ]
}


def _batch_rows(path: Path) -> list[tuple[str, str]]:
    return [(row["epoch"], row["batch"]) for row in csv_rows(path)]


def test_sigterm_ends_the_batch_runs_on_train_end_then_exits_143_and_the_resume_ends_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    whole = SaraCallback(BATCH_ROWS)
    train(whole, tmp_path / "whole", epochs=4)
    folder = tmp_path / "interrupted"
    first, recorder = SaraCallback(BATCH_ROWS), EventRecorder()
    first.manager.add_callback(recorder)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as preempted:
        train(
            first,
            folder,
            epochs=4,
            model=MLP(sigterm_at=(2, 1)),
            extra=[ModelCheckpoint(folder / "ckpt", save_last=True)],
        )
    assert (preempted.value.code, preempted.value.last_epoch) == (143, 1)  # not Lightning's exit status 0
    assert "ckpt_path=" in str(preempted.value)
    assert signal.getsignal(signal.SIGTERM) is before
    assert recorder.hooks[-1] == "on_train_end"  # Lightning's own handler runs none
    assert [(event.epoch, event.batch) for event in events_of(recorder, "on_batch_end")][-1] == (2, 1)
    assert [event.epoch for event in events_of(recorder, "on_epoch_end")] == [0, 1]  # the partial epoch dropped
    assert first.control.stop_reason is not None
    assert first.control.stop_reason.startswith("preempted")

    resumed = SaraCallback(BATCH_ROWS)
    train(resumed, folder, epochs=4, ckpt_path=str(folder / "ckpt" / "last.ckpt"),
          extra=[ModelCheckpoint(folder / "ckpt", save_last=True)])  # fmt: skip
    kept, expected = resumed.manager.callbacks[1], whole.manager.callbacks[1]
    assert kept.epochs == expected.epochs == [0, 1, 2, 3]  # type: ignore[attr-defined]
    assert kept.metrics == [pytest.approx(m, rel=1e-5) for m in expected.metrics]  # type: ignore[attr-defined]
    assert _batch_rows(folder / "batches.csv") == _batch_rows(tmp_path / "whole" / "batches.csv")


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_a_run_resumed_from_a_step_checkpoint_writes_every_batch_row_once(tmp_path: Path) -> None:
    train(SaraCallback(BATCH_ROWS), tmp_path / "whole", epochs=3)
    folder = tmp_path / "interrupted"
    steps = ModelCheckpoint(folder / "ckpt", every_n_train_steps=6, save_top_k=-1)  # step 6: epoch 1, batch 1
    with pytest.raises(RuntimeError):
        train(SaraCallback(BATCH_ROWS), folder, epochs=3, model=MLP(crash_at=1, crash_batch=3), extra=[steps])
    [saved] = sorted((folder / "ckpt").glob("*.ckpt"))
    train(SaraCallback(BATCH_ROWS), folder, epochs=3, ckpt_path=str(saved),
          extra=[ModelCheckpoint(folder / "ckpt", every_n_train_steps=6, save_top_k=-1)])  # fmt: skip
    got, expected = _batch_rows(folder / "batches.csv"), _batch_rows(tmp_path / "whole" / "batches.csv")
    assert len(expected) == 3 * 4 + 3  # every batch, and every epoch's row
    assert got == expected
