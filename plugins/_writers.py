"""File writing shared by the built-in plugins: row loggers and atomic replacement.

The guarantees, for every writer built on this module:

* nothing is opened or created before ``on_train_start`` (building a callback has no side effects);
* a relative path resolves against the trainer's ``output_dir`` context keyword when it passes one, else against the
  current directory, and never leads outside that folder: ``../x.csv`` is refused when the callback is built, a
  symbolic link that leads outside when the training starts; an absolute path is taken as given, on purpose;
* every row is written with one ``write`` of a whole line, then flushed (and ``fsync``-ed on request), so a process
  killed at any moment leaves a file whose complete lines all parse;
* a file is only ever replaced through a temporary sibling and :func:`os.replace`, never rewritten in place; temporary
  files live next to their target, so a writer never writes outside the directory it was given;
* files are closed on ``on_train_end`` and on ``on_exception``;
* a row logger's state (:meth:`RowLogger.state_dict`) is the last epoch it wrote: given that state, a resumed
  training keeps the rows up to that epoch, drops the rows an interrupted run wrote after it (a redone epoch's
  batch rows included), and appends, with no change of config; without a state, ``append`` decides.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
from typing import IO, TYPE_CHECKING, Any, ClassVar

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.exceptions import TrainingError

from ._checks import check_bool, check_path

if TYPE_CHECKING:
    from collections.abc import Mapping

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


def temporary_sibling(target: pathlib.Path) -> pathlib.Path:
    """A temporary path in ``target``'s directory, private to this process: ``.name.<pid>.tmp``."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def replace(temporary: pathlib.Path, target: pathlib.Path, *, fsync: bool = False) -> None:
    """Move ``temporary`` over ``target`` atomically; with ``fsync``, flush the file to disk first."""
    if fsync and temporary.is_file():
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
    os.replace(temporary, target)


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

    Subclasses set :attr:`plugin`, and implement :meth:`_open` and :meth:`_write`; they call :meth:`_emit` to write
    one whole line.
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
        self._file: IO[str] | None = None
        self._epoch = 0
        self._last_written: int | None = None  # the last epoch whose epoch row is in the file
        self._resume: dict[str, Any] | None = None  # the state given by load_state_dict, until on_train_start

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r}, per_batch={self.per_batch}, append={self.append})"

    @property
    def closed(self) -> bool:
        """Whether the file is closed (before ``on_train_start``, and after ``on_train_end`` or a failure)."""
        return self._file is None

    # -- hooks ----------------------------------------------------------------------------------------------------

    def on_train_start(self, **kwargs: Any) -> None:
        """Open the file: continued after a resume, appended to with ``append``, else created anew.

        A resume is a state given by :meth:`load_state_dict`; ``append`` adds to the file when it exists.
        """
        self._close()
        target = resolve(self.path, kwargs.get("output_dir"), callback=self)
        target.parent.mkdir(parents=True, exist_ok=True)
        resume, self._resume = self._resume, None
        exists = target.is_file() and target.stat().st_size > 0
        if exists and (resume is not None or self.append):
            cut_partial_line(target)
        if resume is not None:
            discard_temporaries(target)
        if exists and resume is not None:
            self._keep_rows(target, resume)
        append = (resume is not None or self.append) and target.is_file() and target.stat().st_size > 0
        self.file_path = target
        self._open(target, append=append)

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Remember the epoch, for the batch rows."""
        self._epoch = epoch

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Write a batch row when ``per_batch`` is set."""
        if self.per_batch:
            self._write(self._row({"epoch": self._epoch, "batch": batch}, metrics))

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Write the epoch's row."""
        self._write(self._row({"epoch": epoch, "batch": None} if self.per_batch else {"epoch": epoch}, metrics))
        self._last_written = epoch

    def on_train_end(self, **kwargs: Any) -> None:
        """Close the file."""
        self._close()

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Close the file: every complete row is already on disk."""
        self._close()

    # -- state ----------------------------------------------------------------------------------------------------

    @property
    def state_key(self) -> str:
        """Unique per file, so that two loggers of one class keep two states."""
        return f"{type(self).__qualname__}{{path={str(self.path)!r}}}"

    def state_dict(self) -> dict[str, Any]:
        """The last epoch whose row is in the file (``None`` before the first)."""
        return {"epoch": self._last_written}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue the file at the next ``on_train_start``: keep the rows up to the saved epoch, and append.

        The rows of later epochs (those the resumed training redoes) are dropped.
        """
        epoch = state_dict["epoch"]
        self._resume = dict(state_dict)
        self._resume["epoch"] = self._last_written = None if epoch is None else int(epoch)

    def _keep_rows(self, target: pathlib.Path, state: Mapping[str, Any]) -> None:
        """Rewrite ``target`` with the rows of epochs up to ``state["epoch"]`` only (through a temporary sibling)."""
        temporary = temporary_sibling(target)
        try:
            with (
                open(target, encoding="utf-8", newline="") as source,
                open(temporary, "w", encoding="utf-8", newline="") as copy,
            ):
                self._copy_rows(source, copy, state)
            replace(temporary, target, fsync=self.fsync)
        finally:
            discard(temporary)

    def _copy_rows(self, source: IO[str], copy: IO[str], state: Mapping[str, Any]) -> None:
        raise NotImplementedError

    # -- for subclasses -------------------------------------------------------------------------------------------

    @staticmethod
    def _row(position: dict[str, object], metrics: Mapping[str, object]) -> dict[str, object]:
        for key, value in metrics.items():
            if key not in position:  # a metric named "epoch" or "batch" cannot hide where the row comes from
                position[key] = value
        return position

    def _open(self, target: pathlib.Path, *, append: bool) -> None:
        """Open ``target`` (and read what an appended file already holds)."""
        self._file = open(target, "a" if append else "w", encoding="utf-8", newline="")  # noqa: SIM115

    def _write(self, row: dict[str, object]) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        # A copy (pickle, deepcopy, a spawned process) holds no open file: it reopens the same file, to append, at its
        # first row, when the original had it open (the run continues there).
        state = dict(self.__dict__)
        state["_file"] = None
        state["_reopen"] = self._file is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _open_file(self) -> IO[str]:
        """The open file, or an error saying that the hooks were called out of order."""
        if self._file is None and self.__dict__.pop("_reopen", False) and self.file_path is not None:
            self._file = open(self.file_path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed by _close
        if self._file is None:
            raise TrainingError(
                f"{self.plugin} has no open file: on_train_start was not called, or the training already ended; "
                f"call the manager's on_train_start before the other hooks",
                callback=self,
            )
        return self._file

    def _emit(self, line: str) -> None:
        """Write one whole line, flush it, and ``fsync`` it when asked."""
        file = self._open_file()
        file.write(line)
        file.flush()
        if self.fsync:
            os.fsync(file.fileno())

    def _close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
