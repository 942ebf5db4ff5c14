"""mlflow_logger against the real MLflow: runs read back with ``MlflowClient``, from the SQLite store in the output
folder and through a real ``mlflow server`` started here, including one killed in the middle of a training.

Runs where MLflow is installed (``tox -e trackers``, which CI runs, sets ``SARA_REQUIRE_TRACKERS=1`` so that a missing
MLflow fails there instead of skipping).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import BATCHES, StateSaver, batch_loss, epoch_loss, fit_known_losses, with_state_saver
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.loop import FitResult, fit

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

if os.environ.get("SARA_REQUIRE_TRACKERS") != "1":
    pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient

pytestmark = [
    # MLflow 3's SQL store still uses a SQLAlchemy loader option that SQLAlchemy 2.1 deprecates.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]


def make(params: dict[str, Any]) -> tuple[CallbackManager, StateSaver]:
    return with_state_saver({"callbacks": [{"name": "mlflow_logger", "params": params}]})


PARAMS = {"callbacks": ["mlflow_logger"], "lr": 0.01, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}}
"""The config the trainings pass to ``fit()``: the run's params."""


def train(manager: CallbackManager, folder: Path, **options: Any) -> FitResult:
    """:func:`_helpers.fit_known_losses`, passing :data:`PARAMS`; may fail, stop or act at chosen points."""
    return fit_known_losses(manager, folder, config=PARAMS, **options)


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((metric.step, metric.value) for metric in client.get_metric_history(run_id, key))


# -- where the runs go: the SQLite store in the output folder, or a real server ------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A real ``mlflow server`` on 127.0.0.1 with a SQLite backend, in its own process group.

    The server starts worker processes of its own: :meth:`stop` ends the whole group and waits until no process of
    it is left.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server process holds it
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)),
                *("--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}", "--workers", "1"),
                *("--default-artifact-root", str(self.folder / "artifacts")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        log.close()
        self.processes.append(self.process)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"mlflow server exited: {(self.folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        pytest.fail(f"mlflow server did not answer /health within {timeout} s")

    def stop(self) -> None:
        """End every process group started, SIGTERM then SIGKILL, and wait until none of their processes is left."""
        for group in [process.pid for process in self.processes]:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not self._alive(group):
                    break
                os.killpg(group, sig)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self._alive(group):
                    time.sleep(0.1)
        for process in self.processes:
            process.wait(timeout=30)  # the leaders are our children: reap them

    def gone(self) -> bool:
        return not any(self._alive(process.pid) for process in self.processes)

    def _alive(self, group: int) -> bool:
        """Whether a process of ``group`` still runs (zombies waiting to be reaped do not count)."""
        for process in self.processes:
            process.poll()  # reap the group leaders that have exited
        return bool(processes_of(group))


def processes_of(group: int) -> list[int]:
    """The processes of process group ``group`` that are not zombies, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as file:
                fields = file.read().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        running.start()
        running.wait_healthy()
        yield running
    finally:
        running.stop()
    assert running.gone(), "mlflow server processes left behind"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the tests that do not look at where the store is (MLflow sets up a new one slowly)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow-shared') / 'mlflow.db'}"


@pytest.fixture(params=["sqlite", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """The ``mlflow_logger`` params and the URI to read from: the default SQLite store, or a real server."""
    if request.param == "sqlite":
        return {}, f"sqlite:///{tmp_path / 'mlflow.db'}"
    running: Server = request.getfixturevalue("server")
    return {"tracking_uri": running.uri}, running.uri


# -- a training, read back -----------------------------------------------------------------------------------------


def test_a_training_is_one_finished_run_with_its_params_and_its_metrics_per_step(
    store: tuple[dict[str, Any], str], tmp_path: Path
) -> None:
    params, uri = store
    manager, _ = make(
        {**params, "experiment": "reading", "run_name": "first", "tags": {"team": "rails"}, "log_every_n_batches": 2}
    )
    train(manager, tmp_path, epochs=3)
    logger = manager.callbacks[0]
    client = MlflowClient(uri)
    run = client.get_run(logger.run_id)  # type: ignore[attr-defined]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "first"
    assert client.get_experiment(run.info.experiment_id).name == "reading"
    assert run.data.tags["team"] == "rails"
    assert run.data.params == {
        "callbacks.0": "mlflow_logger",
        "lr": "0.01",
        "optimizer.name": "adam",
        "optimizer.betas.0": "0.9",
        "optimizer.betas.1": "0.99",
        "epochs": "3",
        "sara.mlflow_logger.experiment": "reading",
        "sara.mlflow_logger.run_name": "first",
        "sara.mlflow_logger.log_every_n_batches": "2",
    }
    assert history(client, run.info.run_id, "loss") == [(epoch, epoch_loss(epoch)) for epoch in range(3)]
    assert history(client, run.info.run_id, "val_loss") == [(epoch, 0.5 + epoch) for epoch in range(3)]
    assert history(client, run.info.run_id, "batch/loss") == [
        (step, batch_loss(*divmod(step - 1, BATCHES))) for step in range(2, 13, 2)
    ]
    if not params:
        assert (tmp_path / "mlflow.db").is_file()  # the default store: in the output folder


def test_a_resumed_training_continues_the_same_run_and_its_steps(
    store: tuple[dict[str, Any], str], tmp_path: Path
) -> None:
    params, uri = store
    manager, saver = make({**params, "log_every_n_batches": 2})
    with pytest.raises(RuntimeError, match="caught fire"):
        train(manager, tmp_path, epochs=4, fail_at=(2, 1))  # after epoch 1's checkpoint, before step 10 is logged
    run_id = manager.callbacks[0].run_id  # type: ignore[attr-defined]
    client = MlflowClient(uri)
    failed = client.get_run(run_id)
    assert failed.info.status == "FAILED"
    assert "RuntimeError: the GPU caught fire" in failed.data.tags["sara.error"]

    resumed, _ = make({**params, "log_every_n_batches": 2})
    resumed.load_state_dict(saver.saved[1])
    train(resumed, tmp_path, epochs=4, start_epoch=2)
    assert resumed.callbacks[0].run_id == run_id  # type: ignore[attr-defined]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["sara.resumed_at_step"] == "8"
    assert "sara.error" not in run.data.tags
    assert len(client.search_runs([run.info.experiment_id])) == 1
    assert history(client, run_id, "loss") == [(epoch, epoch_loss(epoch)) for epoch in range(4)]
    assert [step for step, _ in history(client, run_id, "batch/loss")] == list(range(2, 17, 2))


@pytest.mark.parametrize(
    ("source", "status"),
    [(None, "KILLED"), ("user", "KILLED"), ("early_stopping", "FINISHED")],
    ids=["stop without a source", "stop by the user", "stop by a callback"],
)
def test_a_stop_by_the_user_ends_the_run_killed_and_a_callbacks_stop_finished(
    source: str | None, status: str, tmp_path: Path, shared: str
) -> None:
    manager, _ = make({"tracking_uri": shared})
    result = train(manager, tmp_path, epochs=5, stop_at=(1, 2, source))
    assert result.stopped
    assert result.last_epoch == 1
    run = MlflowClient(shared).get_run(manager.callbacks[0].run_id)  # type: ignore[attr-defined]
    assert run.info.status == status
    assert run.data.tags["sara.stop_reason"] == "stop requested"


def test_the_tracking_uri_and_the_experiment_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    manager, _ = make({})
    train(manager, tmp_path / "out", epochs=1)
    client = MlflowClient(uri)
    run = client.get_run(manager.callbacks[0].run_id)  # type: ignore[attr-defined]
    assert client.get_experiment(run.info.experiment_id).name == "from-env"
    assert not (tmp_path / "out" / "mlflow.db").exists()


def test_a_new_training_of_the_same_callbacks_is_a_new_run(tmp_path: Path, shared: str) -> None:
    manager, _ = make({"tracking_uri": shared})
    train(manager, tmp_path, epochs=1)
    first = manager.callbacks[0].run_id  # type: ignore[attr-defined]
    train(manager, tmp_path, epochs=1)
    assert manager.callbacks[0].run_id not in (None, first)  # type: ignore[attr-defined]


def test_metric_names_mlflow_refuses_are_made_valid(tmp_path: Path, shared: str) -> None:
    config = {"callbacks": [{"name": "mlflow_logger", "params": {"tracking_uri": shared}}]}
    (logger,) = CallbackManager.from_config(config).callbacks
    manager = CallbackManager([logger])
    manager.on_train_start(output_dir=tmp_path)
    manager.on_epoch_end(0, {"acc@1 (%)": 0.5, "note": "text is skipped", "flag": True})
    manager.on_train_end()
    client = MlflowClient(shared)
    assert client.get_run(logger.run_id).data.metrics == {"acc_1 ___": 0.5}  # type: ignore[attr-defined]


# -- the server goes away in the middle of a training --------------------------------------------------------------


@pytest.mark.slow
def test_a_server_killed_in_the_middle_of_a_training_costs_a_warning_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = Server(tmp_path)
    seen: dict[str, Any] = {}
    manager, _ = make({"tracking_uri": running.uri, "log_every_n_batches": 1, "flush_timeout": 180.0})
    logger = manager.callbacks[0]

    def kill() -> None:
        running.stop()
        seen["gone"] = running.gone()

    def restart() -> None:
        seen["waiting"] = logger.writer.pending  # type: ignore[attr-defined]
        running.start()  # the training does not wait for it to answer

    try:
        running.start()
        running.wait_healthy()
        with caplog.at_level(logging.WARNING, logger="altametris.sara.plugins"):
            result = train(manager, tmp_path, epochs=6, at_epoch_start={2: kill, 4: restart}, pause=0.05)
        assert result.epochs_run == 6
        client = MlflowClient(running.uri)
        run = client.get_run(logger.run_id)  # type: ignore[attr-defined]
        assert run.info.status == "FINISHED"
        assert history(client, run.info.run_id, "loss") == [(epoch, epoch_loss(epoch)) for epoch in range(6)]
        assert history(client, run.info.run_id, "batch/loss") == [
            (step, batch_loss(*divmod(step - 1, BATCHES))) for step in range(1, 25)
        ]
    finally:
        running.stop()
    assert running.gone(), "mlflow server processes left behind"
    assert seen["gone"] is True
    assert seen["waiting"] >= 2 * BATCHES  # epochs 2 and 3 went on while their rows waited for the server
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len([text for text in warnings if "is unreachable" in text]) == 1
    assert any("answers again" in text for text in warnings)


def test_secrets_in_the_config_never_reach_the_tracker(tmp_path: Path, shared: str) -> None:
    config = {"callbacks": [{"name": "mlflow_logger", "params": {"tracking_uri": shared}}]}
    (logger,) = CallbackManager.from_config(config).callbacks
    manager = CallbackManager([logger])
    config = {"db": {"password": "hunter2", "url": "postgresql://bob:hunter2@db.internal/runs"}, "api_key": "k-123"}
    manager.on_train_start(output_dir=tmp_path, config=config)
    manager.on_train_end()
    params = MlflowClient(shared).get_run(logger.run_id).data.params  # type: ignore[attr-defined]
    assert params["db.password"] == "***"
    assert params["api_key"] == "***"
    assert params["db.url"] == "postgresql://***@db.internal/runs"
    assert "hunter2" not in json.dumps(params)


def test_an_interrupted_training_ends_the_run_killed(tmp_path: Path, shared: str) -> None:
    manager, _ = make({"tracking_uri": shared})

    def interrupt(batch: int) -> dict[str, float]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(manager, epochs=2, batches_per_epoch=2, train_step=interrupt, output_dir=tmp_path)
    run = MlflowClient(shared).get_run(manager.callbacks[0].run_id)  # type: ignore[attr-defined]
    assert run.info.status == "KILLED"
    assert run.data.tags["sara.error"] == "KeyboardInterrupt"


def test_a_trained_logger_copies_and_pickles_without_its_thread_or_connection(tmp_path: Path, shared: str) -> None:
    manager, _ = make({"tracking_uri": shared})
    train(manager, tmp_path, epochs=1)
    logger = manager.callbacks[0]
    copy = pickle.loads(pickle.dumps(logger))
    assert copy.state_dict() == logger.state_dict()
    assert copy.writer is None  # type: ignore[attr-defined]


# -- secrets in the tracking URI are never printed (issue 25, item 3) ------------------------------------------------

SECRET = "S3cretPW"
TOKEN = "t0kenValue"

SECRET_DEMO = """\
[[callbacks]]
name = "mlflow_logger"
params = {{ {params}start_timeout = 2.0, flush_timeout = 3.0 }}

[demo]
epochs = 2
points = 40
batch_size = 20
pause_seconds = 0
"""


def demo_printing(tmp_path: Path, params: str, env: dict[str, str]) -> str:
    """Run the demo with ``mlflow_logger`` in a subprocess: everything it printed (stdout, stderr) and logged."""
    (tmp_path / "demo.toml").write_text(SECRET_DEMO.format(params=params), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "demo", "--config", "demo.toml", "--output", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    logs = [path.read_text(encoding="utf-8") for path in (tmp_path / "run").rglob("*.log")]
    assert logs, "the demo writes train.log"
    return "\n".join([done.stdout, done.stderr, *logs])


def down_uri() -> str:
    return f"http://alice:{SECRET}@127.0.0.1:{free_port()}/?token={TOKEN}"


@pytest.mark.parametrize("where", ["param", "environment"])
def test_a_password_and_a_token_in_the_uri_of_a_server_that_is_down_are_never_printed_or_logged(
    tmp_path: Path, where: str
) -> None:
    uri = down_uri()
    if where == "param":
        everything = demo_printing(tmp_path, f'tracking_uri = "{uri}", ', {})
    else:
        everything = demo_printing(tmp_path, "", {"MLFLOW_TRACKING_URI": uri})
    assert "the tracker is unreachable" in everything  # MLflow's own error text is quoted: redacted
    assert "API request to http://***@127.0.0.1" in everything
    assert SECRET not in everything
    assert TOKEN not in everything


def test_mlflows_view_run_line_does_not_print_the_password_of_a_live_server(tmp_path: Path, server: Server) -> None:
    uri = server.uri.replace("http://", f"http://alice:{SECRET}@")
    everything = demo_printing(tmp_path, f'tracking_uri = "{uri}", ', {})
    assert SECRET not in everything
    runs = MlflowClient(tracking_uri=server.uri).search_runs(
        ["0"], filter_string="tags.`sara.plugin` = 'mlflow_logger'"
    )
    assert any(run.info.status == "FINISHED" for run in runs)  # the run went through: only the secret was kept out
