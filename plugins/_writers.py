"""File writing shared by the built-in plugins: row loggers and atomic replacement.

The guarantees, for every writer built on this module:

* nothing is opened or created before ``on_train_start`` (building a callback has no side effects);
* a relative path resolves against the trainer's ``output_dir`` context keyword when it passes one, else against the
  current directory, and never leads outside that folder: ``../x.csv`` is refused when the callback is built, a
  symbolic link that leads outside when the training starts; an absolute path is taken as given, on purpose;
* every row is written with one ``write`` of its encoded bytes on an unbuffered file, so a process killed at any
  moment leaves a file whose complete lines all parse; a write that fails (a full disk, any ``OSError``) or comes
  short is cut back to the end of the last whole row, so the file ends at its last whole row under every error
  policy, and the error names the file and the cause;
* one writer per file: a row logger holds an advisory lock (:class:`~altametris.sara.core.files.WriterLock`, the
  lock file ``.<name>.lock`` next to its file) from ``on_train_start`` to its end; a second training that opens a
  file another live process writes is refused, naming the file and that process; the kernel drops the lock of a
  killed process, so a killed run never blocks its resume;
* a file is only ever replaced through a temporary sibling and :func:`os.replace`
  (:func:`~altametris.sara.core.files.write_atomic`), never rewritten in place; temporary files live next to their
  target, so a writer never writes outside the directory it was given;
* files are closed (and their locks released) on ``on_train_end`` and on ``on_exception``;
* a row logger's state (:meth:`RowLogger.state_dict`) is the last epoch it wrote, and, in the middle of an epoch,
  its last batch row: given that state, a resumed training keeps the rows up to that point, drops the rows an
  interrupted run wrote after it (a redone epoch's batch rows included), and appends, with no change of config;
  without a state, ``append`` decides. A trainer that resumes inside an epoch (a step checkpoint) so keeps the
  epoch's batch rows written before the checkpoint, and the ones after it are written again.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
from typing import IO, TYPE_CHECKING, Any, ClassVar

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.files import FileLockedError, WriterLock, temporary_sibling, write_atomic

from ._checks import check_bool, check_path

if TYPE_CHECKING:
    import io
    from collections.abc import Iterable, Mapping

    from altametris.sara.core.hookspecs import Metrics

__all__: list[str] = []

_CHUNK = 4096


def resolve(path: pathlib.Path, output_dir: object, *, callback: BaseCallback | None = None) -> pathlib.Path:
    """``path``, made absolute against ``output_dir`` (a ``str`` or ``os.PathLike``) or else the current directory.

    An absolute ``path`` is taken as given. A relative one must stay inside that folder, symbolic links followed
    (``../`` is already refused by the parameter checks).

    Raises:
        TrainingError: a relative ``path`` leads outside the folder, through a symbolic link.
    """
    if path.is_absolute():
        return path
    base = pathlib.Path(output_dir) if isinstance(output_dir, (str, os.PathLike)) else pathlib.Path()
    target = (base / path).absolute()
    real_base, real_target = os.path.realpath(base), os.path.realpath(target)
    if os.path.commonpath([real_base, real_target]) != real_base:
        plugin = getattr(callback, "plugin", type(callback).__name__)
        raise TrainingError(
            f"{plugin}: the relative path {str(path)!r} leads to {real_target}, outside {real_base} (through a "
            f"symbolic link); relative paths stay inside the folder they resolve against: give an absolute path to "
            f"write there on purpose",
            callback=callback,
        )
    return target


__all__ += ["temporary_sibling", "write_atomic"]  # re-exported for the plugins: one helper, in the core


def replace(temporary: pathlib.Path, target: pathlib.Path) -> None:
    """Move ``temporary`` (a file another function wrote, such as a trainer's checkpoint) over ``target`` atomically."""
    os.replace(temporary, target)


def lock_writer(callback: BaseCallback, lock_path: pathlib.Path, guarded: pathlib.Path) -> WriterLock:
    """Take the one-writer lock of ``guarded`` for ``callback``, or a ``TrainingError`` naming it and its holder."""
    plugin = getattr(callback, "plugin", type(callback).__name__)
    try:
        return WriterLock.acquire(lock_path)
    except FileLockedError as locked:
        raise TrainingError(
            f"{plugin}: {guarded} is being written by {locked.holder} (lock file {lock_path}); two trainings writing "
            f"the same files lose rows: give this one another path or output folder, or wait for the other to end",
            callback=callback,
        ) from locked
    except OSError as error:
        raise TrainingError(
            f"{plugin}: cannot open {guarded} for writing: {cause(error)} (creating its lock file {lock_path.name})",
            callback=callback,
        ) from error


def cause(error: BaseException) -> str:
    """An ``OSError`` in words (its ``strerror`` without the file name, which the message names already)."""
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: [Errno {error.errno}] {error.strerror}"
    return f"{type(error).__name__}: {error}"


def discard_temporaries(target: pathlib.Path) -> None:
    """Remove the temporaries that killed processes left next to ``target`` (see :func:`temporary_sibling`)."""
    for path in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        if path.name[len(target.name) + 2 : -4].isdigit():
            discard(path)


def discard(path: pathlib.Path) -> None:
    """Remove ``path`` if it exists (a leftover temporary file, say)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def cut_partial_line(path: pathlib.Path) -> None:
    """Drop a last line that has no newline: what a process killed in the middle of a write may leave."""
    with open(path, "rb+") as file:
        end = file.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - _CHUNK)
            file.seek(start)
            chunk = file.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        else:
            keep = 0
        if keep != end:
            file.truncate(keep)


class RowLogger(BaseCallback):
    """Base of the loggers that write one row per epoch (and optionally per batch) to a file.

    Subclasses set :attr:`plugin`, and implement :meth:`_write` and :meth:`_kept_rows` (and may extend
    :meth:`_open`); they call :meth:`_emit` to write one whole line.
    """

    rank_zero_only = True  # it writes files or prints: once, on rank 0, in a training of several processes

    plugin: ClassVar[str]

    def __init__(self, *, path: str | os.PathLike[str], per_batch: bool, append: bool, fsync: bool) -> None:
        self.path = check_path(self.plugin, "path", path)
        self.per_batch = check_bool(self.plugin, "per_batch", per_batch)
        self.append = check_bool(self.plugin, "append", append)
        self.fsync = check_bool(self.plugin, "fsync", fsync)
        self.file_path: pathlib.Path | None = None
        """Where the rows go: the resolved :attr:`path`, known from ``on_train_start`` on."""
        self._file: io.FileIO | None = None  # unbuffered: one write() of a row is one system call
        self._size = 0  # where the last whole row of the file ends: a failed write is cut back to it
        self._lock: WriterLock | None = None
        self._open_failure: str | None = None  # why the last on_train_start could not open the file
        self._epoch = 0
        self._last_written: int | None = None  # the last epoch whose epoch row is in the file
        self._partial: tuple[int, int] | None = None  # the last batch row after it: (epoch, batch)
        self._resume: dict[str, Any] | None = None  # the state given by load_state_dict, until on_train_start

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r}, per_batch={self.per_batch}, append={self.append})"

    @property
    def closed(self) -> bool:
        """Whether the file is closed (before ``on_train_start``, and after ``on_train_end`` or a failure)."""
        return self._file is None

    # -- hooks ----------------------------------------------------------------------------------------------------

    def on_train_start(self, **kwargs: Any) -> None:
        """Take the file's lock and open it: continued after a resume, appended to with ``append``, else created anew.

        A resume is a state given by :meth:`load_state_dict`; ``append`` adds to the file when it exists.

        Raises:
            TrainingError: another live training writes the file (naming it and that process), or the file cannot
                be opened (naming it and the cause).
        """
        self._close()
        self._open_failure = None
        try:
            self._start(kwargs)
        except BaseException as error:
            self._close()
            self._open_failure = cause(
                error.__cause__ if isinstance(error, TrainingError) and error.__cause__ else error
            )
            if isinstance(error, OSError):
                raise TrainingError(
                    f"{self.plugin}: cannot open {self.file_path or self.path} for writing: {cause(error)}",
                    callback=self,
                ) from error
            raise

    def _start(self, context: Mapping[str, Any]) -> None:
        target = resolve(self.path, context.get("output_dir"), callback=self)
        self.file_path = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self._lock = lock_writer(self, target.with_name(f".{target.name}.lock"), target)
        resume, self._resume = self._resume, None
        exists = target.is_file() and target.stat().st_size > 0
        if exists and (resume is not None or self.append):
            cut_partial_line(target)
        if resume is not None:
            discard_temporaries(target)
        if exists and resume is not None:
            self._keep_rows(target, resume)
        append = (resume is not None or self.append) and target.is_file() and target.stat().st_size > 0
        self._open(target, append=append)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Remember the epoch, for the batch rows."""
        self._epoch = epoch

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Write a batch row when ``per_batch`` is set."""
        if self.per_batch:
            self._write(self._row({"epoch": self._epoch, "batch": batch}, metrics))
            self._partial = (self._epoch, batch)

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Write the epoch's row."""
        self._write(self._row({"epoch": epoch, "batch": None} if self.per_batch else {"epoch": epoch}, metrics))
        self._last_written, self._partial = epoch, None

    def on_train_end(self, **kwargs: Any) -> None:
        """Close the file and release its lock."""
        self._close()

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Close the file and release its lock: every complete row is already on disk."""
        self._close()

    # -- state ----------------------------------------------------------------------------------------------------

    @property
    def state_key(self) -> str:
        """Unique per file, so that two loggers of one class keep two states."""
        return f"{type(self).__qualname__}{{path={str(self.path)!r}}}"

    def state_dict(self) -> dict[str, Any]:
        """The last epoch whose row is in the file (``None`` before the first); inside an epoch, its last batch row."""
        state: dict[str, Any] = {"epoch": self._last_written}
        if self._partial is not None:
            state["batch"] = list(self._partial)
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue the file at the next ``on_train_start``: keep the rows up to the saved point, and append.

        The rows written after it (those the resumed training writes again) are dropped.
        """
        epoch, partial = state_dict["epoch"], state_dict.get("batch")
        if partial is not None and not (
            isinstance(partial, (list, tuple)) and len(partial) == 2 and all(type(item) is int for item in partial)
        ):
            raise TrainingError(
                f"{self.plugin}: state 'batch': expected [epoch, batch], got {partial!r:.80}", callback=self
            )
        self._resume = dict(state_dict)
        self._resume["epoch"] = self._last_written = None if epoch is None else int(epoch)
        self._partial = None if partial is None else (partial[0], partial[1])

    @staticmethod
    def _keeps(state: Mapping[str, Any], epoch: int, batch: int | None) -> bool:
        """Whether a resume from ``state`` keeps the row of ``epoch`` (and ``batch``, ``None`` for an epoch row)."""
        last, partial = state["epoch"], state.get("batch")
        if last is not None and epoch <= last:
            return True
        return partial is not None and batch is not None and epoch == partial[0] and batch <= partial[1]

    def _keep_rows(self, target: pathlib.Path, state: Mapping[str, Any]) -> None:
        """Rewrite ``target`` with the rows of epochs up to ``state["epoch"]`` only (through a temporary sibling)."""
        with open(target, encoding="utf-8", newline="") as source:
            write_atomic(target, self._kept_rows(source, state), fsync=self.fsync)

    def _kept_rows(self, source: IO[str], state: Mapping[str, Any]) -> Iterable[str]:
        """The lines of ``source`` that a resume from ``state`` keeps."""
        raise NotImplementedError

    # -- for subclasses -------------------------------------------------------------------------------------------

    @staticmethod
    def _row(position: dict[str, object], metrics: Mapping[str, object]) -> dict[str, object]:
        for key, value in metrics.items():
            if key not in position:  # a metric named "epoch" or "batch" cannot hide where the row comes from
                position[key] = value
        return position

    def _open(self, target: pathlib.Path, *, append: bool) -> None:
        """Open ``target`` (subclasses first read what an appended file already holds)."""
        self._file = open(target, "ab" if append else "wb", buffering=0)  # noqa: SIM115 - closed by _close
        self._size = os.fstat(self._file.fileno()).st_size

    def _write(self, row: dict[str, object]) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        # A copy (pickle, deepcopy, a spawned process) holds no open file: it reopens the same file, to append, at its
        # first row, when the original had it open (the run continues there). The original keeps the lock.
        state = dict(self.__dict__)
        state["_file"] = state["_lock"] = None
        state["_reopen"] = self._file is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _open_file(self) -> io.FileIO:
        """The open file, or an error saying why there is none."""
        if self._file is None and self.__dict__.pop("_reopen", False) and self.file_path is not None:
            self._open(self.file_path, append=True)
        if self._file is None:
            if self._open_failure is not None:
                why = (
                    f"on_train_start failed to open {self.file_path or self.path} ({self._open_failure}); its rows "
                    f"are not written: fix the cause (see the error of on_train_start) and run again"
                )
            else:
                why = (
                    "on_train_start was not called, or the training already ended; call the manager's "
                    "on_train_start before the other hooks"
                )
            raise TrainingError(f"{self.plugin} has no open file: {why}", callback=self)
        return self._file

    def _emit(self, line: str) -> None:
        """Write one whole line (one system call), and ``fsync`` it when asked; on any failure, cut it back out.

        Raises:
            TrainingError: the line could not be written whole; the file ends at its last whole row, as before.
        """
        file = self._open_file()
        encoded = line.encode("utf-8")
        data, start = memoryview(encoded), self._size
        try:
            while data:
                written = file.write(data)
                if not written:  # a regular file does not do this; never loop on it
                    raise OSError(f"write() wrote nothing of the {len(data)} bytes left")
                data = data[written:]
            if self.fsync:
                os.fsync(file.fileno())
        except OSError as error:
            self._cut_back(file, start, error)
        self._size = start + len(encoded)

    def _cut_back(self, file: io.FileIO, size: int, error: OSError) -> None:
        """After a failed write: truncate the file to ``size`` (its last whole row), and raise the error, named."""
        try:
            file.truncate(size)
            file.seek(size)  # a file not opened to append would write its next row past a hole
        except OSError as second:
            raise TrainingError(
                f"{self.plugin}: cannot write a row to {self.file_path}: {cause(error)}; cutting the partial row "
                f"back out failed too ({cause(second)}): the file may end with a partial row",
                callback=self,
            ) from error
        raise TrainingError(
            f"{self.plugin}: cannot write a row to {self.file_path}: {cause(error)}; the row is not written and the "
            f"file ends at its last whole row (free space, then a resume continues it)",
            callback=self,
        ) from error

    def _close(self) -> None:
        """Close the file and release the lock."""
        self._close_file()
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _close_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
