"""One consistent snapshot: the state saved inside ``save_checkpoint`` describes the training as of that checkpoint.

Issue 13, reproduction 1: the state a trainer saves inside its ``save_checkpoint`` (the natural place) must list the
checkpoint being written and hold every other callback's end-of-epoch state, whatever the callbacks' order; a failed
save leaves no record of a file that does not exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.loop import fit
from altametris.sara.plugins.checkpoint import Checkpoint

VAL_LOSS = [0.9, 0.5, 0.3, 0.6]


class Crash(Exception):
    """The interruption of the first run."""


def run(
    folder: Path, *, save_top_k: int, crash_in: int | None = None, state: dict[str, Any] | None = None, start: int = 0
) -> CallbackManager:
    """Train with ``checkpoint`` listed *before* ``history``; each checkpoint file holds the manager's state."""
    manager = CallbackManager.from_config(
        {
            "callbacks": [
                {
                    "name": "checkpoint",
                    "params": {
                        "dirpath": str(folder),
                        "save_top_k": save_top_k,
                        "filename": "epoch{epoch:03d}.json",
                    },
                },
                "history",
            ]
        }
    )
    if state is not None:
        manager.load_state_dict(state)
    epoch_now = [start]

    def save_checkpoint(path: str) -> None:  # what the issue calls the natural place: the state inside the file
        Path(path).write_text(json.dumps({"epoch": epoch_now[0], "state": manager.state_dict()}))

    def batches(epoch: int) -> list[int]:
        epoch_now[0] = epoch
        if epoch == crash_in:
            raise Crash(f"crash in epoch {epoch}")
        return [epoch]

    fit(
        manager,
        epochs=len(VAL_LOSS),
        start_epoch=start,
        data=batches,
        train_step=lambda epoch: {"loss": 1.0},
        validate=lambda: {"val_loss": VAL_LOSS[epoch_now[0]]},
        save_checkpoint=save_checkpoint,
    )
    return manager


def checkpoint_of(manager: CallbackManager) -> Checkpoint:
    (checkpoint,) = (callback for callback in manager.callbacks if isinstance(callback, Checkpoint))
    return checkpoint


@pytest.mark.parametrize("save_top_k", [1, 2])
def test_issue13_repro1_the_state_inside_a_checkpoint_lists_it_and_a_resume_from_it_keeps_the_best(
    save_top_k: int, tmp_path: Path
) -> None:
    uninterrupted = run(tmp_path / "uninterrupted", save_top_k=save_top_k)
    with pytest.raises(Crash):
        run(tmp_path / "run", save_top_k=save_top_k, crash_in=3)
    saved = json.loads((tmp_path / "run" / "epoch002.json").read_text())
    (key,) = (key for key in saved["state"] if key.startswith("Checkpoint"))
    listed = [entry[0] for entry in saved["state"][key]["saved"]]
    assert listed[0] == "epoch002.json"
    assert saved["state"]["History"]["epochs"] == [0, 1, 2]  # listed after checkpoint, yet up to date

    resumed = run(tmp_path / "run", save_top_k=save_top_k, state=saved["state"], start=saved["epoch"] + 1)

    assert checkpoint_of(resumed).best_model_path is not None
    assert checkpoint_of(resumed).best_model_path.name == "epoch002.json"  # 0.3, not 0.6
    assert checkpoint_of(resumed).saved == checkpoint_of(uninterrupted).saved
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == sorted(
        path.name for path in (tmp_path / "uninterrupted").iterdir()
    )


def test_callbacks_that_save_checkpoints_run_after_the_others_and_the_list_keeps_its_order() -> None:
    seen: list[str] = []

    class Saves(BaseCallback):
        saves_checkpoints = True

        def on_epoch_end(self, epoch: int, metrics: Any) -> None:
            seen.append("saves")

    class Logs(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: Any) -> None:
            seen.append("logs")

    saves, logs = Saves(), Logs()
    manager = CallbackManager([saves, logs])
    manager.on_epoch_end(0, {})
    assert seen == ["logs", "saves"]
    assert manager.callbacks == [saves, logs]


def test_a_failed_save_leaves_no_record_of_its_file(tmp_path: Path) -> None:
    checkpoint = Checkpoint(dirpath=tmp_path, save_top_k=2, filename="e{epoch}.json")
    states: list[Any] = []

    def save(path: str) -> None:
        states.append(checkpoint.state_dict())
        if len(states) == 2:
            raise OSError("disk full")
        Path(path).write_text("{}")

    checkpoint.on_train_start(save_checkpoint=save)
    checkpoint.on_epoch_end(0, {"val_loss": 0.5}, save_checkpoint=save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.on_epoch_end(1, {"val_loss": 0.4}, save_checkpoint=save)
    assert [entry[0] for entry in states[1]["saved"]] == ["e1.json", "e0.json"]  # recorded while it was written
    assert [entry.filename for entry in checkpoint.saved] == ["e0.json"]  # and forgotten when it failed
    checkpoint.on_exception(OSError("disk full"))  # what the manager does next: the folder's lock is released
    assert sorted(path.name for path in tmp_path.iterdir()) == ["e0.json"]
