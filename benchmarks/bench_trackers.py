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

from ._harness import Row, interleaved

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


def run(quick: bool = False) -> list[Row]:
    number = 5_000 if quick else 20_000
    rounds = 5 if quick else 9
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        managers = {name: CallbackManager.from_config({"callbacks": [item]}) for name, item in CONTENDERS.items()}
        for name, manager in managers.items():
            manager.on_train_start(output_dir=Path(folder, name))
            manager.on_epoch_start(0)
        names = {"managers": managers, "metrics": METRICS}
        statements = {name: f"managers[{name!r}].on_batch_end(1, metrics)" for name in managers}
        timings = interleaved(statements, number=number, rounds=rounds, globals_=names)
        for manager in managers.values():
            manager.on_train_end()  # sends what is queued (not timed)
    case = "on_batch_end, one logger recording every batch (3 metrics)"
    for contender, (low, median) in timings.items():
        rows.append(Row("trackers", case, contender, low * 1e6, median * 1e6))
    baseline = timings["csv_logger"]
    for contender in ("mlflow_logger", "tensorboard_logger"):
        ratio = timings[contender][0] / baseline[0]
        rows.append(
            Row(
                "trackers (ratios)",
                case,
                f"{contender} / csv_logger",
                timings[contender][0] * 1e6,
                timings[contender][1] * 1e6,
                baseline="csv_logger",
                ratio=ratio,
                target=f"<= {TARGET:g}",
                met=ratio <= TARGET,
                notes="the tracker's background thread runs meanwhile",
            )
        )
    return rows
