"""Helpers that several test files share, each written once: import them as ``from _helpers import ...``.

(conftest.py puts this folder on ``sys.path``: pytest runs with ``--import-mode=importlib``, which does not.)
Each block belongs to the tests named in its title; a helper used by one file only stays in that file.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.control import TrainingControl
from altametris.sara.core.loop import fit

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from altametris.sara.core.loop import FitResult
    from altametris.sara.core.testing import Event, EventRecorder

# ==================================================================================================================
# Reading what the writers wrote (loggers, bridges, resumes)
# ==================================================================================================================

TIMER_COLUMNS = frozenset({"epoch_seconds", "elapsed_seconds", "batches_per_second"})
"""The timer's metrics: wall times, never equal in two runs, so left out when two runs are compared."""


def csv_rows(path: Path, *, drop: Collection[str] = ()) -> list[dict[str, str]]:
    """The rows of the CSV file at ``path`` as dicts by column, without the columns in ``drop``."""
    with open(path, newline="", encoding="utf-8") as file:
        return [{key: value for key, value in row.items() if key not in drop} for row in csv.DictReader(file)]


def json_lines(path: Path, *, drop: Collection[str] = ()) -> list[dict[str, Any]]:
    """The records of the JSON Lines file at ``path``, without the keys in ``drop``."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{key: value for key, value in line.items() if key not in drop} for line in lines]


def events_of(recorder: EventRecorder, hook: str) -> list[Event]:
    """The events of ``hook`` that ``recorder`` recorded, in order."""
    return [event for event in recorder.events if event.hook == hook]


# ==================================================================================================================
# Trackers (test_mlflow_logger.py, test_tensorboard_logger.py): a training of known losses, its state per epoch
# ==================================================================================================================

BATCHES = 4
"""Batches per epoch of the trackers' trainings."""


def batch_loss(epoch: int, batch: int) -> float:
    """The training loss of ``batch`` in ``epoch``: different at every step, so that a step logged twice shows."""
    return 1.0 / (1 + epoch * BATCHES + batch)


def epoch_loss(epoch: int) -> float:
    """The mean of the epoch's batch losses, as the reference loop reports it."""
    return sum(batch_loss(epoch, batch) for batch in range(BATCHES)) / BATCHES


class StateSaver(BaseCallback):
    """Keeps the manager's state after every epoch, as a checkpoint would (through JSON, as it would be stored)."""

    def __init__(self, manager: CallbackManager) -> None:
        self.manager = manager
        self.saved: dict[int, Any] = {}

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.saved[epoch] = json.loads(json.dumps(self.manager.state_dict()))


def fit_known_losses(
    manager: CallbackManager,
    folder: Path,
    *,
    epochs: int,
    start_epoch: int = 0,
    fail_at: tuple[int, int] | None = None,
    stop_at: tuple[int, int, str | None] | None = None,
    at_epoch_start: Mapping[int, Callable[[], object]] | None = None,
    pause: float = 0.0,
    offset: float = 0.0,
    config: Mapping[str, Any] | None = None,
) -> FitResult:
    """``fit()`` over :data:`BATCHES` batches an epoch whose loss is :func:`batch_loss` (plus ``offset``), validation
    ``val_loss = 0.5 + epoch``, into ``folder``.

    It may fail at a batch (``fail_at=(epoch, batch)``), request a stop at one (``stop_at=(epoch, batch, source)``),
    call a function when an epoch starts (``at_epoch_start``), pause after each batch, and pass ``config`` to ``fit``.
    """
    control = TrainingControl()
    where = {"epoch": start_epoch}

    def batches(epoch: int) -> range:
        where["epoch"] = epoch
        if at_epoch_start and epoch in at_epoch_start:
            at_epoch_start[epoch]()
        return range(BATCHES)

    def step(batch: int) -> dict[str, float]:
        epoch = where["epoch"]
        if fail_at == (epoch, batch):
            raise RuntimeError("the GPU caught fire")
        if stop_at is not None and stop_at[:2] == (epoch, batch):
            control.request_stop("stop requested", source=stop_at[2])
        if pause:
            time.sleep(pause)
        return {"loss": batch_loss(epoch, batch) + offset}

    return fit(
        manager,
        epochs=epochs,
        start_epoch=start_epoch,
        data=batches,
        train_step=step,
        validate=lambda: {"val_loss": 0.5 + where["epoch"]},
        output_dir=folder,
        config=config,
        control=control,
    )


def with_state_saver(config: Mapping[str, Any]) -> tuple[CallbackManager, StateSaver]:
    """The manager of ``config``, with a :class:`StateSaver` added last."""
    manager = CallbackManager.from_config(config)
    saver = StateSaver(manager)
    manager.add_callback(saver)
    return manager, saver


# ==================================================================================================================
# Killed demos (test_kill_resume.py, test_crash_safety.py, test_write_boundaries.py): the config and the process
# ==================================================================================================================


KILL_AT_WRITE = Path(__file__).with_name("kill_at_write.py")
"""The child that runs a workload and kills itself right after a chosen change to a file (see its docstring)."""


def demo_config(
    *,
    before: Sequence[str] = (),
    after: Sequence[str | tuple[str, Mapping[str, Any]]] = (),
    save_top_k: int = 2,
    jsonl_per_batch: bool = True,
    **demo: float,
) -> str:
    """A ``sara-callbacks demo`` config whose run folder the kill tests read back.

    The writers: ``metrics.csv`` (a row per batch and per epoch), ``logs/metrics.jsonl`` (per epoch, and per batch
    with ``jsonl_per_batch``) and ``checkpoints/epochNNN.json`` (the best ``save_top_k`` by ``val_loss``); the
    plugins named in ``before`` come before them and those in ``after`` (names, or ``(name, params)``) after them;
    ``demo`` are the ``[demo]`` settings (``epochs``, ``points``, ``batch_size``, ``learning_rate``,
    ``pause_seconds``).
    """
    writers: list[tuple[str, Mapping[str, Any]]] = [
        ("csv_logger", {"path": "metrics.csv", "per_batch": True}),
        ("jsonl_logger", {"path": "logs/metrics.jsonl", **({"per_batch": True} if jsonl_per_batch else {})}),
        (
            "checkpoint",
            {
                "dirpath": "checkpoints",
                "monitor": "val_loss",
                "save_top_k": save_top_k,
                "filename": "epoch{epoch:03d}.json",
            },
        ),
    ]
    items = (
        [(name, {}) for name in before] + writers + [(item, {}) if isinstance(item, str) else item for item in after]
    )
    blocks = []
    for name, params in items:
        block = f'[[callbacks]]\nname = "{name}"\n'
        if params:  # JSON's strings, numbers and booleans are TOML's too
            block += "params = { " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in params.items()) + " }\n"
        blocks.append(block)
    blocks.append("[demo]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in demo.items()))
    return "\n".join(blocks)


def start_demo(*args: str, stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """``sara-callbacks demo ARGS`` started in a child process (``python -m altametris.sara.core``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "altametris.sara.core", "demo", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",  # a process killed in the middle of a character leaves half of it
    )


# ==================================================================================================================
# Two ranks under torchrun (test_torchrun.py, test_integrations_torchrun.py)
# ==================================================================================================================


def torchrun(script: Path, *args: str, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node=2 SCRIPT ARGS``, one thread a rank, unbuffered, ``env`` added.

    The timeout turns a hang (one rank waiting at a collective) into a failure instead of blocking CI.
    """
    launcher = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    assert launcher is not None, "torch is installed but its torchrun launcher is not on PATH"
    return subprocess.run(
        [launcher, "--standalone", "--nproc_per_node=2", str(script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **env},
        timeout=timeout,
        check=False,
    )


def add_typo_hook_plugin(site: Any) -> None:
    """Install ``typo_hook`` into the fake site: a plugin whose ``on_epoch_ends`` is a misspelt hook (never called)."""
    site.add_distribution(
        "sara-test-typo-hook",
        "1.0",
        {"typo_hook": "sara_test_typo_hook:TypoHook"},
        {
            "sara_test_typo_hook": """
                from altametris.sara.core.base_callback import BaseCallback

                class TypoHook(BaseCallback):
                    def on_epoch_ends(self, epoch, metrics):
                        pass
            """
        },
    )
