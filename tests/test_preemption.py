"""Preemption: ``fit`` turns SIGTERM into a clean stop, says how to resume, and leaves SIGINT as it was.

Schedulers (SLURM, Kubernetes) send SIGTERM before a kill. The signal is sent to this very process, from inside a
training step, so that it arrives at a known batch.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.control import Preempted, TrainingControl
from altametris.sara.core.loop import fit

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name == "nt", reason="needs POSIX signals")


class Seen(BaseCallback):
    """Records the hooks, and what on_train_end was told."""

    def __init__(self) -> None:
        self.hooks: list[str] = []
        self.reason: str | None = None
        self.errors: list[BaseException] = []

    def on_epoch_end(self, epoch: int, metrics: Any, **kwargs: Any) -> None:
        self.hooks.append(f"epoch_end {epoch}")

    def on_batch_end(self, batch: int, metrics: Any, **kwargs: Any) -> None:
        self.hooks.append(f"batch_end {batch}")

    def on_train_end(self, **kwargs: Any) -> None:
        control: TrainingControl = kwargs["control"]
        self.reason = control.stop_reason
        self.hooks.append("train_end")

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)


def sigterm_at(epoch: int, batch: int) -> Any:
    def step(item: tuple[int, int]) -> dict[str, float]:
        if item == (epoch, batch):
            os.kill(os.getpid(), signal.SIGTERM)
        return {"loss": 1.0}

    return step


def data(epoch: int) -> list[tuple[int, int]]:
    return [(epoch, batch) for batch in range(4)]


def test_sigterm_finishes_the_batch_drops_the_partial_epoch_and_raises_preempted_after_on_train_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = Seen()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as preempted:
        fit(CallbackManager([seen]), epochs=5, data=data, train_step=sigterm_at(2, 1))
    assert preempted.value.code == 143
    assert preempted.value.last_epoch == 1
    assert seen.hooks[-4:] == ["epoch_end 1", "batch_end 0", "batch_end 1", "train_end"]  # batch 1 finished
    assert seen.reason is not None
    assert seen.reason.startswith("preempted")
    assert seen.errors == []  # a stop, not a failure
    assert "start_epoch=2" in str(preempted.value)
    assert "start_epoch=2" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back


def test_the_previous_handler_is_restored_and_opting_out_leaves_sigterm_alone() -> None:
    received: list[int] = []

    def own_handler(signum: int, frame: object) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, own_handler)
    try:
        result = fit(CallbackManager([]), epochs=2, data=data, train_step=sigterm_at(0, 0), handle_sigterm=False)
        assert result.last_epoch == 1
        assert not result.stopped
        assert received == [signal.SIGTERM]
        with pytest.raises(Preempted):
            fit(CallbackManager([]), epochs=2, data=data, train_step=sigterm_at(1, 3))
        assert signal.getsignal(signal.SIGTERM) is own_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_in_the_last_batch_of_an_epoch_keeps_that_epoch() -> None:
    seen = Seen()
    with pytest.raises(Preempted) as preempted:
        fit(CallbackManager([seen]), epochs=5, data=data, train_step=sigterm_at(1, 3))
    assert preempted.value.last_epoch == 1
    assert seen.hooks[-2:] == ["epoch_end 1", "train_end"]


def test_outside_the_main_thread_fit_installs_no_handler() -> None:
    errors: list[BaseException] = []
    installed: list[object] = []

    def train() -> None:
        try:
            fit(
                CallbackManager([]),
                epochs=1,
                batches_per_epoch=1,
                train_step=lambda b: installed.append(signal.getsignal(signal.SIGTERM)),
            )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    assert errors == []
    assert installed == [before]


def test_sigint_still_ends_the_training_as_an_error_with_on_exception() -> None:
    seen = Seen()

    def step(batch: int) -> dict[str, float]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(CallbackManager([seen]), epochs=2, batches_per_epoch=2, train_step=step)
    assert len(seen.errors) == 1
    assert isinstance(seen.errors[0], KeyboardInterrupt)
