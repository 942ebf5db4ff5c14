"""``mlflow_logger``: one MLflow run per training, with its parameters, metrics, tags and final status.

MLflow is imported at ``on_train_start`` only (the ``mlflow`` extra); every request to the tracking store is made by a
background thread (see :mod:`~altametris.sara.plugins._background`), so a tracking server that is down or slow costs a
warning, never a stalled or failed training.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import time
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from altametris.sara.core.control import TrainingControl
from altametris.sara.core.exceptions import PluginParameterError
from altametris.sara.core.messages import safe_repr

from ._background import describe, redact
from ._checks import check_bool, check_float, check_str
from ._trackers import TrackerLogger
from ._writers import resolve

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import ModuleType

__all__ = ["MLflowLogger"]

_logger = logging.getLogger("altametris.sara.plugins")

_EXTRA = "mlflow"
_DATABASE = pathlib.Path("mlflow.db")
_PARAMS_PER_REQUEST = 100  # MLflow's limits for one log_batch request
_METRICS_PER_REQUEST = 1000
_PARAM_VALUE_LIMIT = 6000
_KEY_LIMIT = 250
_INVALID_NAME = re.compile(r"[^\w./\- :]")
_END_TAGS = ("sara.error", "sara.stop_reason")
_REFUSED = frozenset({"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST", "INVALID_STATE"})
_SECRET_KEY = re.compile(r"passw|secret|token|api_?key|credential", re.IGNORECASE)
"""Config keys whose values are never sent to the tracker."""
_NO_URL_PRINTED = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
_TIMEOUTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class _Start(NamedTuple):
    run_id: str | None
    step: int
    experiment: str | None
    run_name: str | None
    tags: dict[str, str]


class _Params(NamedTuple):
    params: list[tuple[str, str]]


class _Metrics(NamedTuple):
    values: dict[str, float]
    step: int
    timestamp: int


class _End(NamedTuple):
    status: str
    tags: dict[str, str]


_Record = Union[_Start, _Params, _Metrics, _End]


class MLflowLogger(TrackerLogger[_Record]):
    """Log the training to MLflow: one run per training, continued by a resumed training.

    At ``on_train_start`` the run is created in ``experiment`` (created when missing) with ``run_name`` and ``tags``,
    and its parameters are logged: the trainer's ``config`` context keyword (a mapping is flattened into dotted keys,
    ``callbacks.0.name``; anything else is logged as its ``str``; the values of keys that look like secrets, such as
    ``password`` or ``api_key``, and the credentials of URLs are masked as ``***``), ``epochs`` and ``num_batches``
    when the trainer passes them, and this plugin's own parameters under ``sara.mlflow_logger.``. Epoch metrics are
    logged with ``step = epoch``; with ``log_every_n_batches = N``, every N-th batch's metrics are logged as
    ``batch/<name>`` with ``step`` = the batches seen so far. Metric and parameter names that MLflow refuses have
    their characters replaced by ``_``.

    The run ends ``FINISHED``; ``KILLED`` when the training was stopped by a request without a source, or from
    ``"user"`` (the operator's or the trainer's own stop through the ``control`` context keyword; a callback that
    stops the training, such as ``early_stopping``, names itself and the run is ``FINISHED``), or by
    ``KeyboardInterrupt``; ``FAILED`` on ``on_exception``, with the error in the tag ``sara.error``. The run id is part
    of the callback's state: a training resumed from a checkpoint logs into the same run (back to ``RUNNING``, the
    tag ``sara.resumed_at_step`` set, the interrupted attempt's ``sara.error`` removed), its batch steps continuing
    from the checkpoint's. MLflow cannot remove metric points: those the interrupted attempt logged after its last
    checkpoint stay, so such a step may appear twice in a metric's history.

    Nothing is sent from the training thread: records go through a bounded queue to a background thread (batched,
    up to 1000 metrics a request) that retries while the tracker is unreachable. Batch rows are kept in memory up to
    ``max_pending`` rows (the start, parameters, epoch rows and end are always kept) for the rest of the training;
    ``on_train_end`` and ``on_exception`` wait at most ``flush_timeout`` seconds for them to be sent. When the tracking
    URI is a server and the environment does not set them, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is set to 0 and
    ``MLFLOW_HTTP_REQUEST_TIMEOUT`` to 10 seconds, since the background thread does the retrying.

    Args:
        tracking_uri: where to log (``http://127.0.0.1:5000``, ``sqlite:///runs.db``, ...); by default the
            ``MLFLOW_TRACKING_URI`` environment variable, else ``sqlite:///<output_dir>/mlflow.db`` (the trainer's
            ``output_dir`` context keyword, or the current directory).
        experiment: the experiment's name; by default the ``MLFLOW_EXPERIMENT_NAME`` environment variable, else
            MLflow's ``Default`` experiment.
        run_name: the run's name; MLflow makes one up when it is not given.
        tags: tags of the run (names to strings).
        log_every_n_batches: also log every N-th batch's metrics (0: epoch metrics only).
        log_params: log the config, ``epochs``, ``num_batches`` and this plugin's parameters as run parameters.
        start_timeout: the most seconds ``on_train_start`` waits for the run to be created (or resumed) and its
            parameters logged, so that the run's id is in the state of the first checkpoints.
        flush_timeout: the most seconds ``on_train_end`` and ``on_exception`` wait for the queued records.
        max_pending: the most batch rows kept in memory while the tracker is unreachable.

    Raises:
        PluginParameterError: for a parameter of the wrong type.
        TrainingError: at ``on_train_start``, when MLflow is not installed (``pip install 'sara-callbacks[mlflow]'``).

    Example:
        >>> from altametris.sara.core.base_callback import CallbackManager
        >>> manager = CallbackManager.from_config(
        ...     {"callbacks": [{"name": "mlflow_logger", "params": {"experiment": "demo", "log_every_n_batches": 10}}]}
        ... )
        >>> manager  # nothing is imported or opened before on_train_start
        CallbackManager(callbacks=[MLflowLogger(on_error='warn')])
        >>> manager.callbacks[0].state_dict()
        {'step': 0, 'run_id': None}
    """

    plugin = "mlflow_logger"
    library = "mlflow"
    extra = _EXTRA
    _TRANSIENT = ("_writer", "_client", "_mlflow")

    def __init__(
        self,
        *,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        log_every_n_batches: int = 0,
        log_params: bool = True,
        start_timeout: float = 15.0,
        flush_timeout: float = 30.0,
        max_pending: int = 100_000,
    ) -> None:
        super().__init__(log_every_n_batches=log_every_n_batches, flush_timeout=flush_timeout, max_pending=max_pending)
        self.tracking_uri = None if tracking_uri is None else check_str(self.plugin, "tracking_uri", tracking_uri)
        self.experiment = None if experiment is None else check_str(self.plugin, "experiment", experiment)
        self.run_name = None if run_name is None else check_str(self.plugin, "run_name", run_name)
        self.tags = _check_tags(self.plugin, tags)
        self.log_params = check_bool(self.plugin, "log_params", log_params)
        self.start_timeout = check_float(self.plugin, "start_timeout", start_timeout, minimum=0.0)
        self.run_id: str | None = None
        """The MLflow run's id, known once the background thread has created (or resumed) it."""
        self.uri: str | None = None
        """The tracking URI in use, known from ``on_train_start`` on."""
        self._client: Any = None
        self._mlflow: Any = None
        self._names: dict[str, str] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(experiment={self.experiment!r}, run_name={self.run_name!r}, "
            f"log_every_n_batches={self.log_every_n_batches})"
        )

    def on_train_start(self, **kwargs: Any) -> None:
        """Start (or resume) the run; wait at most ``start_timeout`` seconds for it to exist, so that its id is known.

        A tracker that does not answer in time costs a warning: the training goes on, and the run is created when
        the tracker answers (a checkpoint saved before then does not know the run's id).
        """
        super().on_train_start(**kwargs)
        writer = self.writer
        if writer is not None and not writer.wait(self.start_timeout) and self.run_id is None:
            _logger.warning(
                "%s: no MLflow run after start_timeout=%g s (the tracker at %s does not answer yet); the training "
                "goes on and the run will be created when it answers",
                self.plugin,
                self.start_timeout,
                redact(self.uri),
            )

    # -- records --------------------------------------------------------------------------------------------------

    def _open(self, module: ModuleType, context: Mapping[str, Any]) -> list[_Record]:
        self._mlflow = module
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            folder = resolve(_DATABASE, context.get("output_dir"), callback=self).parent
            folder.mkdir(parents=True, exist_ok=True)
            uri = "sqlite:///" + str(folder / "mlflow.db")
        if uri.startswith(("http://", "https://")):
            for name, value in _TIMEOUTS.items():
                os.environ.setdefault(name, value)
        if redact(uri) != uri:  # MLflow prints "View run ... at <the URI>" when a run ends: credentials and all
            os.environ[_NO_URL_PRINTED] = "true"
        self.uri = uri
        self._client = None
        experiment = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or None
        tags = {"sara.plugin": self.plugin, **self.tags}
        records: list[_Record] = [_Start(self.run_id, self.step, experiment, self.run_name, tags)]
        if self.log_params:
            params = self._params(context)
            records += [
                _Params(params[start : start + _PARAMS_PER_REQUEST])
                for start in range(0, len(params), _PARAMS_PER_REQUEST)
            ]
        return records

    def _params(self, context: Mapping[str, Any]) -> list[tuple[str, str]]:
        found: dict[str, str] = {}
        config = context.get("config")
        if config is not None:
            _flatten(found, "", config)
        for name in ("epochs", "num_batches"):
            if context.get(name) is not None:
                found.setdefault(name, str(context[name]))
        own = {
            "experiment": self.experiment,
            "run_name": self.run_name,
            "log_every_n_batches": self.log_every_n_batches,
        }
        for name, value in own.items():
            found[f"sara.{self.plugin}.{name}"] = str(value)
        return [(self._name(key), value[:_PARAM_VALUE_LIMIT]) for key, value in found.items()]

    def _batch_record(self, values: dict[str, float], step: int) -> _Record:
        return _Metrics({f"batch/{key}": value for key, value in values.items()}, step, int(time.time() * 1000))

    def _epoch_record(self, values: dict[str, float], epoch: int, step: int) -> _Record:
        return _Metrics(values, epoch, int(time.time() * 1000))

    def _close(self, error: BaseException | None, context: Mapping[str, Any]) -> list[_Record]:
        tags: dict[str, str] = {}
        if error is None:
            status = "FINISHED"
            control = context.get("control")
            if isinstance(control, TrainingControl) and control.should_stop:
                tags["sara.stop_reason"] = str(control.stop_reason or "")[:_PARAM_VALUE_LIMIT]
                if control.stop_source in (None, "user"):
                    status = "KILLED"
        elif isinstance(error, KeyboardInterrupt):
            status = "KILLED"
            tags["sara.error"] = "KeyboardInterrupt"
        else:
            status = "FAILED"
            tags["sara.error"] = describe(error)
        return [_End(status, tags)]

    # -- the background thread ------------------------------------------------------------------------------------

    def _send(self, records: Sequence[_Record]) -> int:
        first = records[0]
        client = self._connect()
        entities = self._mlflow.entities
        if isinstance(first, _Start):
            self._start(client, first)
            return 1
        run_id = self._require_run()
        if isinstance(first, _Params):
            client.log_batch(run_id, params=[entities.Param(key, value) for key, value in first.params])
            return 1
        if isinstance(first, _End):
            if first.tags:
                client.log_batch(run_id, tags=[entities.RunTag(key, value) for key, value in first.tags.items()])
            client.set_terminated(run_id, status=first.status)
            return 1
        metrics: list[Any] = []
        consumed = 0
        for record in records:
            if not isinstance(record, _Metrics) or (
                metrics and len(metrics) + len(record.values) > _METRICS_PER_REQUEST
            ):
                break
            metrics += [
                entities.Metric(self._name(key), value, record.timestamp, record.step)
                for key, value in record.values.items()
            ]
            consumed += 1
        client.log_batch(run_id, metrics=metrics)
        return consumed

    def _connect(self) -> Any:
        if self._client is None:
            self._client = self._mlflow.tracking.MlflowClient(tracking_uri=self.uri)
        return self._client

    def _start(self, client: Any, start: _Start) -> None:
        if start.run_id is not None:
            try:
                previous = client.get_run(start.run_id)
            except self._mlflow.exceptions.MlflowException as error:
                if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                _logger.warning(
                    "%s: the run %s of the saved state is not in %s; starting a new run",
                    self.plugin,
                    start.run_id,
                    redact(self.uri),
                )
            else:
                for tag in _END_TAGS:  # what the interrupted attempt said about its end no longer holds
                    if tag in previous.data.tags:
                        client.delete_tag(start.run_id, tag)
                client.update_run(start.run_id, status="RUNNING")
                client.set_tag(start.run_id, "sara.resumed_at_step", str(start.step))
                self.run_id = start.run_id
                return
        experiment_id = "0"
        if start.experiment is not None:
            found = client.get_experiment_by_name(start.experiment)
            experiment_id = found.experiment_id if found is not None else client.create_experiment(start.experiment)
        run = client.create_run(experiment_id, run_name=start.run_name, tags=start.tags)
        self.run_id = run.info.run_id

    def _require_run(self) -> str:
        if self.run_id is None:
            raise _NoRun(f"{self.plugin}: no MLflow run: it could not be created (see the warning above)")
        return self.run_id

    def _retryable(self, error: BaseException) -> bool:
        if isinstance(error, _NoRun):
            return False
        exceptions = getattr(self._mlflow, "exceptions", None)
        if exceptions is not None and isinstance(error, exceptions.MlflowException):
            return error.error_code not in _REFUSED
        return not isinstance(error, (TypeError, ValueError, AttributeError, LookupError, Warning))

    def _fresh(self) -> None:
        self.run_id = None

    def _closed(self) -> None:
        self._client = None

    def _describe(self) -> str:
        return f"{self.plugin} ({redact(self.uri)})"

    def _name(self, key: str) -> str:
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = _INVALID_NAME.sub("_", key)[:_KEY_LIMIT] or "_"
        return name

    # -- state ----------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The global step and the run's id, so that a resumed training logs into the same run."""
        return {**super().state_dict(), "run_id": self.run_id}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue the run and the steps of :meth:`state_dict`."""
        super().load_state_dict(state_dict)
        run_id = state_dict.get("run_id")
        self.run_id = None if run_id is None else check_str(self.plugin, "state_dict['run_id']", run_id)


class _NoRun(Exception):
    """The run could not be created: the records that need it are dropped."""


def _check_tags(plugin: str, tags: object) -> dict[str, str]:
    if tags is None:
        return {}

    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise PluginParameterError(
            f"{plugin}: parameter 'tags' expects a table of names to strings, got {safe_repr(tags)}",
            plugin=plugin,
            parameter="tags",
        )
    return dict(tags)


def _flatten(found: dict[str, str], prefix: str, value: object) -> None:
    """``value``'s leaves under dotted keys: ``{"a": {"b": 1}, "c": [2]}`` gives ``a.b = 1``, ``c.0 = 2``."""
    from collections.abc import Mapping as MappingType

    if isinstance(value, MappingType) and value:
        for key, item in value.items():
            _flatten(found, f"{prefix}{key}.", item)
    elif isinstance(value, (list, tuple)) and value and len(found) < 1000:
        for index, item in enumerate(value):
            _flatten(found, f"{prefix}{index}.", item)
    else:
        key = prefix[:-1] if prefix else "config"
        found[key] = "***" if _SECRET_KEY.search(key) else redact(value)
