"""``tensorboard_logger``: scalar event files for TensorBoard, with steps that continue after a resume.

The events are written with ``tensorboardX`` (the ``tensorboard`` extra), the lightest library that writes TensorBoard's
standard event files: it needs neither TensorFlow nor PyTorch. It is imported at ``on_train_start`` only; the writing
happens in a background thread (see :mod:`~altametris.sara.plugins._background`).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from ._checks import check_path
from ._trackers import TrackerLogger
from ._writers import resolve

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Mapping, Sequence
    from types import ModuleType

__all__ = ["TensorBoardLogger"]


class _Open(NamedTuple):
    log_dir: str
    purge_step: int | None


class _Scalars(NamedTuple):
    prefix: str
    values: dict[str, float]
    step: int
    walltime: float


class _Finish(NamedTuple):
    pass


_Record = Union[_Open, _Scalars, _Finish]


class TensorBoardLogger(TrackerLogger[_Record]):
    """Write the metrics as TensorBoard scalars: global step = batches seen, continued after a resume.

    Every ``log_every_n_batches`` batches, the batch's metrics are written as ``batch/<name>`` at the global step
    (the number of batches seen since the training started, 1 after the first batch); each epoch's metrics as
    ``epoch/<name>`` at the epoch's last step. The global step is part of the callback's state: a training resumed
    from a checkpoint goes on from the checkpoint's step (never from 0), in a new event file of the same folder
    that tells TensorBoard to drop the steps the interrupted run wrote after that checkpoint (``purge_step``), so
    that every step is shown once.

    Writing happens in a background thread, behind a bounded queue: batch rows are kept up to ``max_pending`` while
    the disk refuses them (epoch rows always); ``on_train_end`` and ``on_exception`` wait at most ``flush_timeout``
    seconds for everything to be written and the files closed. Look at the runs with ``tensorboard --logdir``.

    Args:
        log_dir: the folder of the event files, created at ``on_train_start``; a relative path resolves against the
            trainer's ``output_dir`` context keyword (the demo's run folder) or the current directory.
        log_every_n_batches: write every N-th batch's metrics (0: epoch metrics only).
        flush_timeout: the most seconds ``on_train_end`` and ``on_exception`` wait for the queued records.
        max_pending: the most batch rows kept in memory while they cannot be written.

    Raises:
        PluginParameterError: for a parameter of the wrong type.
        TrainingError: at ``on_train_start``, when tensorboardX is not installed
            (``pip install 'sara-callbacks[tensorboard]'``).

    Example:
        >>> logger = TensorBoardLogger(log_dir="tb", log_every_n_batches=10)
        >>> logger, logger.on_error  # nothing is imported or opened before on_train_start
        (TensorBoardLogger(log_dir='tb', log_every_n_batches=10), 'warn')
        >>> logger.load_state_dict({"step": 1200})  # a resumed training goes on from step 1201
        >>> logger.state_dict()
        {'step': 1200}
    """

    plugin = "tensorboard_logger"
    library = "tensorboardX"
    extra = "tensorboard"
    _TRANSIENT = ("_writer", "_module", "_summary")

    def __init__(
        self,
        *,
        log_dir: str | os.PathLike[str] = "tensorboard",
        log_every_n_batches: int = 1,
        flush_timeout: float = 30.0,
        max_pending: int = 100_000,
    ) -> None:
        super().__init__(log_every_n_batches=log_every_n_batches, flush_timeout=flush_timeout, max_pending=max_pending)
        self.log_dir = check_path(self.plugin, "log_dir", log_dir)
        self.directory: pathlib.Path | None = None
        """The resolved :attr:`log_dir`, known from ``on_train_start`` on."""
        self._module: Any = None
        self._summary: Any = None  # the tensorboardX SummaryWriter, made and used by the background thread

    def __repr__(self) -> str:
        return f"{type(self).__name__}(log_dir={str(self.log_dir)!r}, log_every_n_batches={self.log_every_n_batches})"

    @property
    def state_key(self) -> str:
        """Unique per event folder, so that two loggers writing to two folders keep two states."""
        return f"{type(self).__qualname__}{{log_dir={str(self.log_dir)!r}}}"

    # -- records --------------------------------------------------------------------------------------------------

    def _open(self, module: ModuleType, context: Mapping[str, Any]) -> list[_Record]:
        self._module = module
        self.directory = directory = resolve(self.log_dir, context.get("output_dir"), callback=self)
        directory.mkdir(parents=True, exist_ok=True)
        return [_Open(str(directory), self.step + 1 if self.resumed else None)]

    def _batch_record(self, values: dict[str, float], step: int) -> _Record:
        return _Scalars("batch/", values, step, time.time())

    def _epoch_record(self, values: dict[str, float], epoch: int, step: int) -> _Record:
        return _Scalars("epoch/", values, step, time.time())

    def _close(self, error: BaseException | None, context: Mapping[str, Any]) -> list[_Record]:
        return [_Finish()]

    # -- the background thread ------------------------------------------------------------------------------------

    def _send(self, records: Sequence[_Record]) -> int:
        first = records[0]
        if isinstance(first, _Open):
            self._close_summary()
            # tensorboardX names event files by the second: a suffix in nanoseconds keeps two trainings started in
            # the same second (a quick resume) in two files, sorted in the order they were written.
            self._summary = self._module.SummaryWriter(
                logdir=first.log_dir,
                purge_step=first.purge_step,
                flush_secs=5,
                filename_suffix=f".{time.time_ns():020d}.{os.getpid()}",
            )
            return 1
        summary = self._summary
        if summary is None:
            raise _NotOpen(f"{self.plugin}: no event file is open (see the warning above)")
        if isinstance(first, _Finish):
            self._close_summary()
            return 1
        consumed = 0
        for record in records:
            if not isinstance(record, _Scalars):
                break
            for key, value in record.values.items():
                summary.add_scalar(record.prefix + key, value, record.step, record.walltime)
            consumed += 1
        return consumed

    def _close_summary(self) -> None:
        summary, self._summary = self._summary, None
        if summary is not None:
            summary.close()

    def _retryable(self, error: BaseException) -> bool:
        return isinstance(error, OSError)

    def _describe(self) -> str:
        return f"{self.plugin} ({self.directory})"

    def _closed(self) -> None:
        self._close_summary()


class _NotOpen(Exception):
    """The event file could not be opened: the records that need it are dropped."""
