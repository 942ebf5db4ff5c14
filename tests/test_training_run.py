"""``TrainingRun`` (``altametris.sara.core.training_run``): a loop of your own with what ``fit()`` gives."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from altametris.sara.core import BaseCallback, CallbackManager
from altametris.sara.core.control import StopTraining
from altametris.sara.core.exceptions import StateError, TrainingError
from altametris.sara.core.testing import EventRecorder
from altametris.sara.core.training_run import TrainingRun


def train(run: TrainingRun, batches: int = 2, saved: list[dict[str, Any]] | None = None) -> None:
    """A loop as a user writes it: every hook a hand-written PyTorch loop can call."""
    for _ in run.epochs():
        for _batch, item in run.batches(range(batches)):
            run.after_backward()
            run.before_optimizer_step(optimizer="sgd")
            run.after_optimizer_step()
            run.batch_end({"loss": float(item)})
        run.validation_start()
        run.validation_batch_start(0)
        run.validation_batch_end(0, {"loss": 0.5})
        run.validation_end({"val_loss": 0.5})
        run.epoch_end()
        if saved is not None:
            saved.append(json.loads(json.dumps(run.state())))  # through JSON, as a checkpoint file would


def test_the_hooks_run_in_the_documented_order_with_the_documented_context() -> None:
    recorder = EventRecorder()
    with TrainingRun(CallbackManager([recorder]), epochs=2, model="m", handle_sigterm=False) as run:
        train(run, batches=1)
    epoch = [
        "on_epoch_start", "on_batch_start", "on_after_backward", "on_before_optimizer_step",
        "on_after_optimizer_step", "on_batch_end", "on_validation_start", "on_validation_batch_start",
        "on_validation_batch_end", "on_validation_end", "on_epoch_end",
    ]  # fmt: skip
    assert recorder.hooks == ["on_train_start", *epoch, *epoch, "on_train_end"]
    start = recorder.events[0].context
    assert (start["start_epoch"], start["global_step"], start["rank"], start["world_size"]) == (0, 0, 0, 1)
    assert (start["model"], start["epochs"]) == ("m", 2)
    assert start["control"] is run.control
    steps = [event.context["global_step"] for event in recorder.events if event.hook == "on_batch_end"]
    assert steps == [0, 1]
    optimizer = next(event for event in recorder.events if event.hook == "on_before_optimizer_step")
    assert optimizer.context["optimizer"] == "sgd"
    ends = [event.arguments["metrics"] for event in recorder.events if event.hook == "on_epoch_end"]
    assert ends == [{"loss": 0.0, "val_loss": 0.5}] * 2  # the batches' means and the validation


def test_a_stop_asked_in_a_batch_ends_the_training_after_that_epoch() -> None:
    class StopAtBatch(BaseCallback):
        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            if batch == 1:
                kwargs["control"].request_stop("enough", source="me")

    recorder = EventRecorder()
    with TrainingRun(CallbackManager([recorder, StopAtBatch()]), epochs=5, handle_sigterm=False) as run:
        train(run, batches=4)
    assert [event.hook for event in recorder.events].count("on_batch_end") == 2
    assert recorder.hooks[-2:] == ["on_epoch_end", "on_train_end"]
    assert (run.control.stop_reason, run.global_step) == ("enough", 2)


def test_stop_training_raised_by_a_hook_ends_the_block_at_once_and_still_runs_train_end() -> None:
    class Raise(BaseCallback):
        def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
            raise StopTraining("now", source="raise")

    recorder = EventRecorder()
    with TrainingRun(CallbackManager([recorder, Raise()]), epochs=3, handle_sigterm=False) as run:
        train(run)
    assert recorder.hooks == ["on_train_start", "on_epoch_start", "on_train_end"]
    assert run.control.stop_source == "raise"


def test_a_resume_from_the_saved_state_ends_as_an_uninterrupted_run() -> None:
    config = {"callbacks": ["history", {"name": "early_stopping", "params": {"monitor": "val_loss", "patience": 9}}]}
    whole = CallbackManager.from_config(config)
    with TrainingRun(whole, epochs=4, handle_sigterm=False) as run:
        train(run, batches=3)

    saved: list[dict[str, Any]] = []
    first = CallbackManager.from_config(config)
    with TrainingRun(first, epochs=4, handle_sigterm=False) as run:
        for epoch in run.epochs():
            for _, item in run.batches(range(3)):
                run.batch_end({"loss": float(item)})
            run.validation_start()
            run.validation_end({"val_loss": 0.5})
            run.epoch_end()
            saved.append(json.loads(json.dumps(run.state())))
            if epoch == 1:
                break  # the process dies here: the last state saved is epoch 1's
    recorder = EventRecorder()
    resumed = CallbackManager.from_config(config)
    resumed.add_callback(recorder)
    with TrainingRun(resumed, epochs=4, state=saved[-1], resumed_from="last.pt", handle_sigterm=False) as run:
        train(run, batches=3)
    assert recorder.hooks[:3] == ["on_checkpoint_load", "on_train_start", "on_epoch_start"]
    assert recorder.events[1].context["start_epoch"] == 2
    assert recorder.events[1].context["global_step"] == 6
    assert resumed.callbacks[0].metrics == whole.callbacks[0].metrics  # type: ignore[attr-defined]
    assert run.global_step == 12


def test_a_stop_the_saved_run_had_asked_ends_the_resumed_one_at_once() -> None:
    saved: list[dict[str, Any]] = []
    stopper = CallbackManager.from_config({"callbacks": ["history"]})

    class Stop(BaseCallback):
        def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            kwargs["control"].request_stop("plateau", source="early_stopping")

    stopper.add_callback(Stop())
    with TrainingRun(stopper, epochs=5, handle_sigterm=False) as run:
        train(run, saved=saved)
    assert saved[-1]["stops"] == [["plateau", "early_stopping"]]
    recorder = EventRecorder()
    resumed = CallbackManager.from_config({"callbacks": ["history"]})
    resumed.add_callback(recorder)
    with TrainingRun(resumed, epochs=5, state=saved[-1], handle_sigterm=False) as run:
        train(run)
    assert recorder.hooks == ["on_train_start", "on_train_end"]
    assert run.control.stop_reason == "plateau"


def test_a_checkpoint_written_through_save_checkpoint_is_announced_after_the_hook(tmp_path: Path) -> None:
    recorder = EventRecorder()
    manager = CallbackManager.from_config(
        {
            "callbacks": [
                {"name": "checkpoint", "params": {"dirpath": str(tmp_path), "monitor": False, "save_top_k": -1}}
            ]
        }
    )
    manager.add_callback(recorder)
    states: list[dict[str, Any]] = []

    def save_checkpoint(path: str) -> None:
        states.append(run.state())
        Path(path).write_text("{}")

    with TrainingRun(manager, epochs=2, save_checkpoint=save_checkpoint, handle_sigterm=False) as run:
        train(run, batches=1)
    saves = [event.arguments["path"] for event in recorder.events if event.hook == "on_checkpoint_save"]
    assert [Path(path).name for path in saves] == ["epoch000.ckpt", "epoch001.ckpt"]  # the final files, not temporaries
    assert all(Path(path).is_file() for path in saves)
    assert [event.hook for event in recorder.events].index("on_checkpoint_save") == recorder.hooks.index(
        "on_epoch_end"
    ) + 1
    assert [state["epoch"] for state in states] == [0, 1]  # inside on_epoch_end, the epoch counts as done


def test_an_error_in_the_loop_runs_on_exception_and_propagates() -> None:
    recorder = EventRecorder()
    with pytest.raises(ZeroDivisionError), TrainingRun(CallbackManager([recorder]), epochs=2, handle_sigterm=False):
        1 / 0  # noqa: B018
    assert recorder.hooks == ["on_train_start", "on_exception"]


@pytest.mark.parametrize(
    ("loop", "message"),
    [
        ("no_batch_end", r"batch 0 ended without run.batch_end\(metrics\)"),
        ("no_epoch_end", r"epoch 0 ended without run.epoch_end\(\)"),
        ("outside", r"after_backward\(\): no batch in progress"),
    ],
)
def test_a_loop_that_skips_a_call_gets_an_error_saying_which(loop: str, message: str) -> None:
    def skipping(run: TrainingRun) -> None:
        for _ in run.epochs():
            if loop == "outside":
                run.after_backward()
            for _ in run.batches([1]):
                if loop != "no_batch_end":
                    run.batch_end({})
            if loop != "no_epoch_end":
                run.epoch_end()

    with TrainingRun(CallbackManager(), epochs=1, handle_sigterm=False) as run:
        with pytest.raises(TrainingError, match=message):
            skipping(run)
        run.control.request_stop("the test is done")


def test_bad_arguments_are_refused_naming_them() -> None:
    with pytest.raises(StateError, match=r"state: expected what TrainingRun.state\(\) returned"):
        TrainingRun(CallbackManager(), epochs=1, state={"epoch": 1})
    with pytest.raises(TrainingError, match=r"context cannot redefine \['control'\]"):
        TrainingRun(CallbackManager(), epochs=1, context={"control": None})
    with pytest.raises(TrainingError, match=r"epochs: expected an integer >= 0, got -1"):
        TrainingRun(CallbackManager(), epochs=-1)


# -- signals, in a real process ----------------------------------------------------------------------------------------

SCRIPT = """
import json, os, pathlib, signal, sys
from altametris.sara.core import CallbackManager
from altametris.sara.core.training_run import TrainingRun

out = pathlib.Path(sys.argv[1]); kill = sys.argv[2]; last = out / "last.json"
manager = CallbackManager.from_config({"callbacks": [{"name": "csv_logger", "params": {"path": "rows.csv"}},
                                                     {"name": "jsonl_logger", "params": {"path": "rows.jsonl"}}]})
state = json.loads(last.read_text()) if last.exists() else None
with TrainingRun(manager, epochs=4, output_dir=out, state=state) as run:
    for epoch in run.epochs():
        for batch, item in run.batches(range(4)):
            run.batch_end({"loss": epoch + item / 10})
            if kill != "none" and (epoch, batch) == (2, 1) and state is None:
                os.kill(os.getpid(), getattr(signal, kill))
        run.epoch_end()
        last.write_text(json.dumps(run.state()))
print("reason:", run.control.stop_reason)
"""


def _run(folder: Path, kill: str) -> subprocess.CompletedProcess[str]:
    script = folder / "loop.py"
    script.write_text(textwrap.dedent(SCRIPT))
    return subprocess.run(
        [sys.executable, str(script), str(folder), kill], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
@pytest.mark.parametrize("kill", ["SIGTERM", "SIGKILL"])
def test_a_signalled_run_resumed_from_its_own_state_writes_the_rows_of_an_uninterrupted_one(
    tmp_path: Path, kill: str
) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir()
    cut.mkdir()
    assert _run(whole, "none").returncode == 0
    first = _run(cut, kill)
    if kill == "SIGTERM":  # the batch finishes, on_train_end says why, exit 143 with how to resume
        assert first.returncode == 143, first.stderr
        assert "preempted (SIGTERM) after epoch 1" in first.stderr
        assert "Traceback" not in first.stderr
    else:
        assert first.returncode == -signal.SIGKILL
    second = _run(cut, "none")
    assert second.returncode == 0, second.stderr
    assert "reason: None" in second.stdout
    for name in ("rows.csv", "rows.jsonl"):
        assert (cut / name).read_text() == (whole / name).read_text(), name


# -- as fit() does -----------------------------------------------------------------------------------------------------


def test_a_failing_on_train_end_still_runs_on_exception() -> None:
    class Fails(BaseCallback):
        def on_train_end(self, **kwargs: Any) -> None:
            raise OSError("disk full")

    recorder = EventRecorder()
    with (
        pytest.raises(TrainingError, match="disk full"),
        TrainingRun(CallbackManager([Fails(), recorder]), epochs=0, handle_sigterm=False),
    ):
        pass
    assert recorder.hooks == ["on_train_start", "on_exception"]


def test_the_batch_hooks_get_batch_data_and_every_hook_gets_model_and_config() -> None:
    class Needs(BaseCallback):
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def on_batch_end(self, batch: int, metrics: dict[str, float], batch_data: Any, model: Any, config: Any) -> None:
            self.seen.append((batch_data, model, config))

    needs = Needs()
    with TrainingRun(CallbackManager([needs]), epochs=1, handle_sigterm=False) as run:
        train(run, batches=2)
    assert needs.seen == [(0, None, None), (1, None, None)]


def test_a_stop_set_as_should_stop_is_kept_in_the_state_and_a_malformed_stop_is_a_state_error() -> None:
    with TrainingRun(CallbackManager(), epochs=3, handle_sigterm=False) as run:
        for _ in run.epochs():
            run.epoch_end({})
            run.control.should_stop = True
    saved = run.state()
    assert saved["stops"] == [["stop requested (control.should_stop set)", None]]
    with TrainingRun(CallbackManager(), epochs=3, state=saved, handle_sigterm=False) as resumed:
        assert list(resumed.epochs()) == []
    with pytest.raises(StateError, match=r"state\['stops'\]: expected \[\[reason, source\], ...\]"):
        TrainingRun(CallbackManager(), epochs=3, state={**saved, "stops": [["a", "b", "c"]]})


def test_context_cannot_redefine_what_fit_passes_itself() -> None:
    with pytest.raises(TrainingError, match=r"context cannot redefine \['model_path', 'save_checkpoint'\]"):
        TrainingRun(CallbackManager(), epochs=1, context={"model_path": "m", "save_checkpoint": print})
