"""tensorboard_logger against the real TensorBoard: the event files read back with tensorboard's EventAccumulator.

Runs where tensorboardX and tensorboard are installed (``tox -e trackers``, which CI runs, sets
``SARA_REQUIRE_TRACKERS=1`` so that a missing library fails there instead of skipping).
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import BATCHES, StateSaver, batch_loss, epoch_loss, fit_known_losses, with_state_saver

if TYPE_CHECKING:
    from pathlib import Path

    from altametris.sara.core.base_callback import CallbackManager

if os.environ.get("SARA_REQUIRE_TRACKERS") != "1":
    pytest.importorskip("tensorboardX")
    pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def make(params: dict[str, Any] | None = None) -> tuple[CallbackManager, StateSaver]:
    return with_state_saver({"callbacks": [{"name": "tensorboard_logger", "params": params or {}}]})


def scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def float32(pairs: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """``pairs`` with their values as TensorBoard stores them (32-bit floats)."""
    return [(step, struct.unpack("f", struct.pack("f", value))[0]) for step, value in pairs]


def tags(folder: Path) -> list[str]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return sorted(events.Tags()["scalars"])


def test_batch_scalars_at_the_batches_seen_and_epoch_scalars_at_the_epochs_last_step(tmp_path: Path) -> None:
    manager, _ = make()
    fit_known_losses(manager, tmp_path, epochs=3)
    folder = tmp_path / "tensorboard"
    assert tags(folder) == ["batch/loss", "epoch/loss", "epoch/val_loss"]
    assert scalars(folder, "batch/loss") == float32(
        [(step, batch_loss(*divmod(step - 1, BATCHES))) for step in range(1, 13)]
    )
    assert scalars(folder, "epoch/loss") == float32([(4 * (epoch + 1), epoch_loss(epoch)) for epoch in range(3)])
    assert scalars(folder, "epoch/val_loss") == [(4, 0.5), (8, 1.5), (12, 2.5)]


def test_every_n_batches_and_epoch_scalars_only(tmp_path: Path) -> None:
    manager, _ = make({"log_dir": "every3", "log_every_n_batches": 3})
    fit_known_losses(manager, tmp_path, epochs=2)
    assert [step for step, _ in scalars(tmp_path / "every3", "batch/loss")] == [3, 6]
    manager, _ = make({"log_dir": "epochs", "log_every_n_batches": 0})
    fit_known_losses(manager, tmp_path, epochs=2)
    assert tags(tmp_path / "epochs") == ["epoch/loss", "epoch/val_loss"]


def test_a_resumed_training_continues_the_steps_and_every_step_is_shown_once(tmp_path: Path) -> None:
    manager, saver = make()
    with pytest.raises(RuntimeError, match="caught fire"):  # steps 9 and 10 written, then it fails
        fit_known_losses(manager, tmp_path, epochs=4, fail_at=(2, 2), offset=100.0)
    folder = tmp_path / "tensorboard"
    assert [step for step, _ in scalars(folder, "batch/loss")] == list(range(1, 11))

    resumed, _ = make()
    resumed.load_state_dict(saver.saved[1])  # the checkpoint of epoch 1: step 8
    fit_known_losses(resumed, tmp_path, epochs=4, start_epoch=2)
    batch = scalars(folder, "batch/loss")
    assert [step for step, _ in batch] == list(range(1, 17))  # continued from 9, never from 0; 9 and 10 once
    assert batch[8:] == float32([(step, batch_loss(*divmod(step - 1, BATCHES))) for step in range(9, 17)])
    assert [step for step, _ in scalars(folder, "epoch/loss")] == [4, 8, 12, 16]
    assert len(list(folder.iterdir())) == 2  # one event file per run, in the same folder


def test_a_trained_logger_copies_and_pickles_without_its_thread_or_files(tmp_path: Path) -> None:
    manager, _ = make()
    fit_known_losses(manager, tmp_path, epochs=1)
    logger = manager.callbacks[0]
    copy = pickle.loads(pickle.dumps(logger))
    assert copy.state_dict() == {"step": 4}
    assert copy.writer is None  # type: ignore[attr-defined]
