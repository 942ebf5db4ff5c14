"""The documented context: what the seed API promises each hook, passed by the reference loop.

Issue 13, reproduction 5: the seed documentation gives ``on_train_end``'s context as "final metrics, model path, etc."
with ``def on_train_end(self, metrics, **kwargs)``, ``on_train_start``'s as "model, config, etc." with
``def on_train_start(self, model, epochs, **kwargs)``, and the batch hooks' as "batch data". The examples run as
written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.loop import fit


class Seed(BaseCallback):
    """The seed documentation's examples, as written there."""

    def on_train_start(self, model, epochs, **kwargs):
        print(f"Training {model} for {epochs} epochs")

    def on_train_end(self, metrics, **kwargs):
        print(f"Training complete: {metrics}")


def test_issue13_repro5_the_seed_examples_of_on_train_start_and_on_train_end_run_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fit(
        CallbackManager([Seed()]),
        epochs=2,
        data=[1.0, 3.0],
        train_step=lambda x: {"loss": x},
        validate=lambda: {"val_loss": 0.5},
        model="mlp",
    )
    assert capsys.readouterr().out == ("Training mlp for 2 epochs\nTraining complete: {'loss': 2.0, 'val_loss': 0.5}\n")


def test_on_train_end_gets_empty_metrics_when_no_epoch_ended_and_no_model_path_without_checkpoint() -> None:
    seen: list[dict[str, Any]] = []

    class End(BaseCallback):
        def on_train_end(self, **kwargs: Any) -> None:
            seen.append(kwargs)

    fit(CallbackManager([End()]), epochs=0, batches_per_epoch=1, train_step=lambda b: {})
    assert seen[0]["metrics"] == {}
    assert "model_path" not in seen[0]


@pytest.mark.parametrize(("monitor", "expected"), [("val_loss", "e1.json"), (None, "e2.json")])
def test_on_train_end_gets_the_best_checkpoint_else_the_last_as_model_path(
    monitor: str | None, expected: str, tmp_path: Path
) -> None:
    paths: list[Path] = []

    class End(BaseCallback):
        def on_train_end(self, metrics: Any, model_path: Path, **kwargs: Any) -> None:
            paths.append(model_path)

    losses = iter([0.5, 0.2, 0.4])
    manager = CallbackManager.from_config(
        {
            "callbacks": [
                {
                    "name": "checkpoint",
                    "params": {"dirpath": str(tmp_path), "monitor": monitor, "filename": "e{epoch}.json"},
                }
            ]
        }
    )
    manager.add_callback(End())
    fit(
        manager,
        epochs=3,
        batches_per_epoch=1,
        train_step=lambda b: {},
        validate=lambda: {"val_loss": next(losses)},
        save_checkpoint=lambda path: Path(path).write_text(json.dumps({})),
    )
    assert paths == [tmp_path / expected]


def test_the_batch_hooks_get_the_batch_data_and_its_index() -> None:
    seen: list[tuple[str, int, Any]] = []

    class Batches(BaseCallback):
        def on_batch_start(self, batch: int, batch_data: Any, **kwargs: Any) -> None:
            seen.append(("start", batch, batch_data))

        def on_batch_end(self, batch: int, metrics: Any, batch_data: Any, **kwargs: Any) -> None:
            seen.append(("end", batch, batch_data))

    fit(CallbackManager([Batches()]), epochs=1, data=[("x0", 0), ("x1", 1)], train_step=lambda b: {})
    assert seen == [("start", 0, ("x0", 0)), ("end", 0, ("x0", 0)), ("start", 1, ("x1", 1)), ("end", 1, ("x1", 1))]


def test_a_callback_cannot_give_fit_a_context_that_redefines_the_documented_keywords() -> None:
    with pytest.raises(TrainingError, match=r"context cannot redefine \['batch_data', 'model_path'\]"):
        fit(
            CallbackManager([]),
            epochs=1,
            batches_per_epoch=1,
            train_step=lambda b: {},
            context={"batch_data": 1, "model_path": "x"},
        )
