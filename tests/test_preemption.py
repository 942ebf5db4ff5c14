"""Preemption: SIGTERM is a clean stop that says how to resume; a second signal ends a hung hook, naming it.

Schedulers (SLURM, Kubernetes) send SIGTERM before a kill. The signal is sent to this very process, from inside a
training step, so that it arrives at a known batch; a hung hook runs in a child process, which the test signals once
the hook says it hangs. The bridges' preemption is tested with each bridge (``tests/test_integrations_*.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.control import Preempted, TrainingControl
from altametris.sara.core.loop import fit
from altametris.sara.core.order import Placement, place
from altametris.sara.core.preemption import running_hook, sigterm_stops

if TYPE_CHECKING:
    from pathlib import Path

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


HANGING = textwrap.dedent(
    """
    import pathlib, sys, time
    from altametris.sara.core import BaseCallback, CallbackManager, fit

    marker = pathlib.Path(sys.argv[1])

    class Uploader(BaseCallback):
        def on_batch_end(self, batch, metrics, **kwargs):
            if batch == 2:
                marker.write_text("hanging")
                while True:  # a hung upload: only the second signal ends it
                    if kwargs["control"].should_stop:
                        marker.write_text("asked to stop")
                    time.sleep(0.01)

    fit(CallbackManager([Uploader()]), epochs=1, batches_per_epoch=4, train_step=lambda batch: {"loss": 1.0})
    """
)


def _wait_for(path: Path, text: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not (path.exists() and path.read_text() == text):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"the child never wrote {text!r}"
        time.sleep(0.01)


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_signal_while_a_hook_hangs_ends_the_process_with_143_naming_the_callback_and_the_hook(
    tmp_path: Path, second: signal.Signals
) -> None:
    marker = tmp_path / "marker"
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING, str(marker)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(marker, "hanging", child)
        child.send_signal(signal.SIGTERM)  # the first: a stop request, which the hung hook never reaches
        _wait_for(marker, "asked to stop", child)
        child.send_signal(second)
        _, stderr = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 143
    assert f"sara: {second.name} after SIGTERM, while callback Uploader was running on_batch_end" in stderr
    assert "Traceback" not in stderr


class Where(BaseCallback):
    """Records what :func:`running_hook` says from inside its hooks."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def on_batch_end(self, batch: int, metrics: Any, **kwargs: Any) -> None:
        self.said.append(running_hook(sys._getframe()))

    def on_validation_end(self, metrics: Any = None, **kwargs: Any) -> None:
        self.said.append(running_hook(sys._getframe()))


def test_running_hook_names_the_plugin_and_the_hook_on_the_method_path_and_the_by_name_path() -> None:
    where = Where()
    manager = CallbackManager([where])
    manager.on_batch_end(0, {})
    manager._execute_callback_hook("on_validation_end")  # no metrics: the callbacks are called by name
    assert where.said == [
        "while callback Where was running on_batch_end",
        "while callback Where was running on_validation_end",
    ]
    assert running_hook(sys._getframe()) == "while no SARA hook was running (the trainer's own code)"


def test_running_hook_names_a_callback_of_a_config_item_by_its_plugin_name() -> None:
    where = Where()
    place(where, Placement(name="uploader"))  # what a config item named "uploader" gives its callback
    CallbackManager([where]).on_batch_end(0, {})
    assert where.said == ["while callback 'uploader' (Where) was running on_batch_end"]


class Run:
    def __init__(self) -> None:
        self.control = TrainingControl()
        self.preempted = False


def test_a_training_that_ended_unseen_hands_sigterm_to_the_handler_before_it() -> None:
    received: list[int] = []

    def before(signum: int, frame: object) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, before)
    run = Run()
    try:
        with sigterm_stops(run, "preempted: test", alive=lambda frame: False):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the handler runs in the main thread, at the next instruction
            assert received == [signal.SIGTERM]
            assert not run.preempted
            assert run.control.stop_reason is None
            assert signal.getsignal(signal.SIGTERM) is before  # handed back at once
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_handler_set_by_someone_else_meanwhile_is_left_in_place() -> None:
    def theirs(signum: int, frame: object) -> None:  # pragma: no cover - never called
        pass

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_stops(Run(), "preempted: test"):
        signal.signal(signal.SIGTERM, theirs)
    try:
        assert signal.getsignal(signal.SIGTERM) is theirs
    finally:
        signal.signal(signal.SIGTERM, before)
