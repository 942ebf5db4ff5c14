"""checkpoint: saves through the trainer's save_checkpoint, atomically, keeps the best K; the list survives a resume."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.exceptions import PluginParameterError, TrainingError
from altametris.sara.core.loop import fit
from altametris.sara.plugins.checkpoint import LOCK_NAME, Checkpoint, SavedCheckpoint


class Saver:
    """A trainer's save_checkpoint: writes the epoch it is at, and remembers the paths it was given."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.epoch = -1

    def __call__(self, path: str) -> None:
        self.paths.append(path)
        Path(path).write_text(json.dumps({"epoch": self.epoch}))


def train(checkpoint: Checkpoint, scores: list[float], folder: Path, start: int = 0, key: str = "val_loss") -> Saver:
    saver = Saver()
    checkpoint.on_train_start(save_checkpoint=saver, output_dir=folder)
    for epoch, score in enumerate(scores, start):
        saver.epoch = epoch
        checkpoint.on_epoch_end(epoch, {key: score}, save_checkpoint=saver)
    return saver


def files(folder: Path) -> list[str]:
    """The files in ``folder``, but the lock file a training in progress holds there (tested on its own)."""
    return sorted(path.name for path in folder.iterdir() if path.name != LOCK_NAME)


def test_it_keeps_the_best_k_files_and_deletes_the_others(tmp_path: Path) -> None:
    checkpoint = Checkpoint(dirpath=tmp_path, save_top_k=2)
    train(checkpoint, [0.5, 0.4, 0.6, 0.3, 0.35], tmp_path)
    assert files(tmp_path) == ["epoch003.ckpt", "epoch004.ckpt"]
    assert checkpoint.saved == [SavedCheckpoint("epoch003.ckpt", 3, 0.3), SavedCheckpoint("epoch004.ckpt", 4, 0.35)]
    assert checkpoint.best_model_path == tmp_path / "epoch003.ckpt"
    assert checkpoint.best_model_score == 0.3
    assert json.loads((tmp_path / "epoch003.ckpt").read_text()) == {"epoch": 3}


def test_with_one_file_it_saves_only_on_improvement(tmp_path: Path) -> None:
    saver = train(Checkpoint(dirpath=tmp_path), [0.5, 0.6, 0.4, 0.4], tmp_path)
    assert len(saver.paths) == 2
    assert files(tmp_path) == ["epoch002.ckpt"]


def test_mode_max_keeps_the_highest(tmp_path: Path) -> None:
    checkpoint = Checkpoint(dirpath=tmp_path, monitor="val_accuracy", mode="max")
    train(checkpoint, [0.5, 0.9, 0.7], tmp_path, key="val_accuracy")
    assert files(tmp_path) == ["epoch001.ckpt"]


def test_save_top_k_minus_one_keeps_everything_and_nan_is_never_saved(tmp_path: Path) -> None:
    train(Checkpoint(dirpath=tmp_path, save_top_k=-1), [0.5, math.nan, 0.7], tmp_path)
    assert files(tmp_path) == ["epoch000.ckpt", "epoch002.ckpt"]


def test_without_monitor_it_saves_every_n_epochs_and_keeps_the_most_recent(tmp_path: Path) -> None:
    checkpoint = Checkpoint(dirpath=tmp_path, monitor=None, every_n_epochs=2, save_top_k=2)
    train(checkpoint, [0.0] * 7, tmp_path)
    assert files(tmp_path) == ["epoch003.ckpt", "epoch005.ckpt"]
    assert checkpoint.best_model_path == tmp_path / "epoch005.ckpt"


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (
            ".toml",
            'callbacks = [{ name = "checkpoint", params = { monitor = false, every_n_epochs = 2, save_top_k = -1 } }]',
        ),
        (".yaml", "callbacks:\n  - {name: checkpoint, params: {monitor: false, every_n_epochs: 2, save_top_k: -1}}"),
        (
            ".json",
            '{"callbacks": [{"name": "checkpoint", '
            '"params": {"monitor": false, "every_n_epochs": 2, "save_top_k": -1}}]}',
        ),
    ],
)
def test_monitor_false_is_a_per_epoch_save_point_any_config_format_can_write(
    tmp_path: Path, suffix: str, text: str
) -> None:
    config = tmp_path / f"train{suffix}"
    config.write_text(text + "\n")
    manager = CallbackManager.from_config(config)
    assert manager.callbacks[0].monitor is None  # type: ignore[attr-defined]
    fit(manager, epochs=5, batches_per_epoch=1, train_step=lambda batch: {"loss": 1.0}, save_checkpoint=Saver(),
        output_dir=tmp_path)  # fmt: skip
    assert files(tmp_path / "checkpoints") == ["epoch001.ckpt", "epoch003.ckpt"]  # no metric needed, none monitored


def test_the_trainer_writes_a_temporary_file_in_dirpath_that_the_callback_renames(tmp_path: Path) -> None:
    saver = train(Checkpoint(dirpath=tmp_path), [0.5], tmp_path)
    written = Path(saver.paths[0])
    assert written.parent == tmp_path
    assert written.name != "epoch000.ckpt"
    assert not written.exists()
    assert files(tmp_path) == ["epoch000.ckpt"]


def test_a_failing_save_leaves_neither_a_temporary_nor_a_final_file(tmp_path: Path) -> None:
    def broken(path: str) -> None:
        Path(path).write_text("half")
        raise OSError("disk full")

    checkpoint = Checkpoint(dirpath=tmp_path)
    checkpoint.on_train_start(save_checkpoint=broken)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.on_epoch_end(0, {"val_loss": 0.5}, save_checkpoint=broken)
    assert files(tmp_path) == []
    assert checkpoint.saved == []


def test_a_save_that_writes_nothing_is_an_error(tmp_path: Path) -> None:
    def lazy(path: str) -> None:
        pass

    checkpoint = Checkpoint(dirpath=tmp_path)
    checkpoint.on_train_start(save_checkpoint=lazy)
    with pytest.raises(TrainingError, match="returned without writing that file"):
        checkpoint.on_epoch_end(0, {"val_loss": 0.5}, save_checkpoint=lazy)


def test_it_needs_the_trainer_to_pass_save_checkpoint_and_says_so_at_train_start() -> None:
    manager = CallbackManager([Checkpoint()])
    with pytest.raises(TrainingError) as caught:
        manager.on_train_start()
    assert "fit(..., save_checkpoint=...)" in str(caught.value)
    assert caught.value.hook == "on_train_start"


def test_relative_dirpath_resolves_in_the_output_dir_and_templates_use_metrics(tmp_path: Path) -> None:
    checkpoint = Checkpoint(dirpath="ckpt", filename="e{epoch}-{val_loss:.2f}.json")
    saver = Saver()
    fit(
        CallbackManager([checkpoint]),
        epochs=1,
        batches_per_epoch=1,
        train_step=lambda batch: {},
        validate=lambda: {"val_loss": 0.25},
        save_checkpoint=saver,
        output_dir=tmp_path,
    )
    assert files(tmp_path / "ckpt") == ["e0-0.25.json"]


def test_a_template_naming_an_unknown_metric_is_an_error_listing_the_metrics(tmp_path: Path) -> None:
    checkpoint = Checkpoint(dirpath=tmp_path, filename="{epoch}-{acc}.ckpt")
    with pytest.raises(TrainingError, match=r"cannot format the file name .* metrics \['val_loss'\]"):
        train(checkpoint, [0.5], tmp_path)


def test_building_it_creates_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Checkpoint(dirpath="checkpoints")
    assert list(tmp_path.iterdir()) == []


def test_the_kept_files_survive_a_resume_and_the_ranking_goes_on(tmp_path: Path) -> None:
    first = Checkpoint(dirpath=tmp_path, save_top_k=2)
    train(first, [0.5, 0.4, 0.6], tmp_path)
    saved = json.loads(json.dumps(first.state_dict()))
    resumed = Checkpoint(dirpath=tmp_path, save_top_k=2)
    resumed.load_state_dict(saved)
    train(resumed, [0.45, 0.3], tmp_path, start=3)
    assert files(tmp_path) == ["epoch001.ckpt", "epoch004.ckpt"]  # epoch000 of the first run was deleted
    assert [entry.epoch for entry in resumed.saved] == [4, 1]


def test_a_resume_removes_the_files_saved_after_its_state_and_keeps_what_an_uninterrupted_run_keeps(
    tmp_path: Path,
) -> None:
    def checkpoint(folder: str) -> Checkpoint:
        return Checkpoint(dirpath=tmp_path / folder, save_top_k=3, filename="epoch{epoch:03d}-{val_loss:.2f}.ckpt")

    interrupted = checkpoint("run")
    train(interrupted, [0.5, 0.4], tmp_path / "run")
    state = json.loads(json.dumps(interrupted.state_dict()))  # the state saved with epoch 1
    train(interrupted, [0.3], tmp_path / "run", start=2)  # epoch 2 saved a file, then the process died
    resumed = checkpoint("run")
    resumed.load_state_dict(state)
    # The redone epoch 2 scores otherwise (a training on a GPU is not the same bit for bit): another file name.
    train(resumed, [0.45, 0.35], tmp_path / "run", start=2)
    train(checkpoint("uninterrupted"), [0.5, 0.4, 0.45, 0.35], tmp_path / "uninterrupted")
    assert files(tmp_path / "run") == files(tmp_path / "uninterrupted")
    assert files(tmp_path / "run") == ["epoch001-0.40.ckpt", "epoch002-0.45.ckpt", "epoch003-0.35.ckpt"]


def test_files_gone_before_a_resume_are_forgotten(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = Checkpoint(dirpath=tmp_path)
    train(first, [0.5], tmp_path)
    (tmp_path / "epoch000.ckpt").unlink()
    resumed = Checkpoint(dirpath=tmp_path)
    resumed.load_state_dict(first.state_dict())
    resumed.on_train_start(save_checkpoint=Saver())
    assert resumed.saved == []
    assert "epoch000.ckpt" in caplog.text


def test_two_instances_keep_two_states() -> None:
    assert Checkpoint(dirpath="a").state_key != Checkpoint(dirpath="b").state_key


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"dirpath": 5}, "dirpath"),
        ({"monitor": ""}, "monitor"),
        ({"mode": "best"}, "mode"),
        ({"save_top_k": 0}, "save_top_k"),
        ({"save_top_k": -2}, "save_top_k"),
        ({"save_top_k": "1"}, "save_top_k"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"filename": "sub/{epoch}.ckpt"}, "filename"),
        ({"filename": "{epoch.ckpt"}, "filename"),
        ({"filename": "best.ckpt", "save_top_k": 2}, "filename"),
        ({"filename": ""}, "filename"),
    ],
)
def test_bad_parameters_are_refused_naming_the_plugin_and_the_parameter(params: dict[str, Any], parameter: str) -> None:
    with pytest.raises(PluginParameterError) as caught:
        Checkpoint(**params)
    assert (caught.value.plugin, caught.value.parameter) == ("checkpoint", parameter)


def test_a_constant_file_name_with_one_file_kept_is_overwritten_in_place(tmp_path: Path) -> None:
    train(Checkpoint(dirpath=tmp_path, filename="best.ckpt"), [0.5, 0.4], tmp_path)
    assert files(tmp_path) == ["best.ckpt"]
    assert json.loads((tmp_path / "best.ckpt").read_text()) == {"epoch": 1}


def test_a_training_holds_the_folders_lock_file_until_it_ends_or_fails(tmp_path: Path) -> None:
    """Another process is refused meanwhile (tests/test_one_writer.py); the file is gone once the training ends."""
    checkpoint = Checkpoint(dirpath=tmp_path, monitor="val_loss")
    saver = Saver()
    checkpoint.on_train_start(save_checkpoint=saver)
    assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    checkpoint.on_epoch_end(0, {"val_loss": 0.5}, save_checkpoint=saver)
    checkpoint.on_train_end()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch000.ckpt"]
    checkpoint.on_train_start(save_checkpoint=saver)
    assert (tmp_path / LOCK_NAME).exists()
    checkpoint.on_exception(RuntimeError("the training failed"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch000.ckpt"]


@pytest.mark.parametrize("save_top_k", [1, 2])
def test_on_tied_scores_the_earlier_file_stays_the_best(tmp_path: Path, save_top_k: int) -> None:
    checkpoint = Checkpoint(dirpath=tmp_path, save_top_k=save_top_k)
    train(checkpoint, [0.5, 0.4, 0.4, 0.4], tmp_path)
    checkpoint.on_train_end()
    assert checkpoint.best_model_path is not None
    assert checkpoint.best_model_path.name == "epoch001.ckpt"
    assert [entry.epoch for entry in checkpoint.saved] == [1, 2][:save_top_k]
