"""Per-batch cost of the experiment trackers (``mlflow_logger``, ``tensorboard_logger``) against ``csv_logger``.

Each contender is a manager holding one logger that records every batch (``csv_logger`` with ``per_batch``, the
trackers with ``log_every_n_batches=1``), started with ``on_train_start`` as a training would; what is timed is
``manager.on_batch_end(batch, metrics)``, the whole cost a training pays per batch. The trackers' background threads
run meanwhile (MLflow writes to a SQLite store, TensorBoard to event files), so their share of the interpreter is
in the figures. Needs the ``mlflow`` and ``tensorboard`` extras: ``tox -e bench-trackers``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from altametris.sara.core.base_callback import CallbackManager

from ._harness import Budget, Case, Samples, Target, timed

METRICS = {"loss": 0.25, "accuracy": 0.75, "lr": 0.001}

CONTENDERS = {
    "csv_logger": {"name": "csv_logger", "params": {"path": "metrics.csv", "per_batch": True}},
    "mlflow_logger": {
        "name": "mlflow_logger",
        "params": {"log_every_n_batches": 1, "flush_timeout": 600.0, "max_pending": 10_000_000},
    },
    "tensorboard_logger": {
        "name": "tensorboard_logger",
        "params": {"log_every_n_batches": 1, "flush_timeout": 600.0, "max_pending": 10_000_000},
    },
}

TARGET = 1.0
"""A tracker costs a training no more per batch than ``csv_logger``'s row (a ``write`` and a ``flush``)."""


def _measure(budget: Budget) -> Samples:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        managers = {name: CallbackManager.from_config({"callbacks": [item]}) for name, item in CONTENDERS.items()}
        for name, manager in managers.items():
            manager.on_train_start(output_dir=Path(folder, name))
            manager.on_epoch_start(0)
        statements = {name: f"managers[{name!r}].on_batch_end(1, metrics)" for name in managers}
        samples = timed(statements, {"managers": managers, "metrics": METRICS}, budget)
        for manager in managers.values():
            manager.on_train_end()  # sends what is queued (not timed)
    return samples


def cases(budget: Budget) -> list[Case]:
    """The trackers' per-batch cost, each against ``csv_logger``, their background threads running meanwhile."""
    return [
        Case(
            "trackers",
            "on_batch_end, one logger recording every batch (3 metrics)",
            _measure,
            tuple(Target(tracker, "csv_logger", TARGET) for tracker in ("mlflow_logger", "tensorboard_logger")),
            quick=False,
        )
    ]
