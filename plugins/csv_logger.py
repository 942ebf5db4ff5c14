"""``csv_logger``: one CSV row per epoch (and optionally per batch), with every metric.

The first row fixes the header; a metric that appears later adds a column: the file is then rewritten with the new
header through a temporary file and :func:`os.replace`, so it is a valid CSV at every instant. Each row is written
whole with one system call (cut back out if the write fails), so a run killed at any moment, or a full disk, leaves a
file that parses up to its last complete row.
"""

from __future__ import annotations

import csv
import io
import os  # noqa: TC003 - constructor annotations stay resolvable for tools that inspect them
from typing import IO, TYPE_CHECKING, Any

from altametris.sara.core.exceptions import TrainingError

from ._writers import RowLogger, cause, write_atomic

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator, Mapping, Sequence

__all__ = ["CSVLogger"]


class CSVLogger(RowLogger):
    """Write one CSV row per epoch (and optionally per batch) with every metric.

    Columns are ``epoch`` (0-indexed), ``batch`` (with ``per_batch``; empty on epoch rows), then the metrics in the
    order they first appear. A missing value is an empty cell; a new metric adds a column to the whole file.

    Args:
        path: the CSV file; a relative path resolves against the trainer's ``output_dir`` context keyword (the
            demo's run folder) or the current directory. Its folder is created when missing.
        per_batch: also write one row per batch.
        append: add to an existing file instead of replacing it; a last line cut by a killed run is dropped first.
            A resumed training (given the saved state) needs no ``append``: it keeps the rows up to the saved
            epoch, drops the later ones and appends.
        fsync: ``os.fsync`` every row, for files that must survive a power loss (slower).

    Raises:
        PluginParameterError: for a parameter of the wrong type.

    Example:
        >>> import csv, pathlib, tempfile
        >>> from altametris.sara.core.base_callback import CallbackManager
        >>> folder = tempfile.mkdtemp()
        >>> manager = CallbackManager([CSVLogger(path="metrics.csv")])
        >>> manager.on_train_start(output_dir=folder)
        >>> manager.on_epoch_end(0, {"loss": 0.5})
        >>> manager.on_epoch_end(1, {"loss": 0.25, "val_loss": 0.4})
        >>> manager.on_train_end()
        >>> print(pathlib.Path(folder, "metrics.csv").read_text(), end="")
        epoch,loss,val_loss
        0,0.5,
        1,0.25,0.4
    """

    plugin = "csv_logger"

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] = "metrics.csv",
        per_batch: bool = False,
        append: bool = False,
        fsync: bool = False,
    ) -> None:
        super().__init__(path=path, per_batch=per_batch, append=append, fsync=fsync)
        self._columns: list[str] = []
        self._known: set[str] = set()
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        del state["_buffer"], state["_writer"]  # a csv.writer cannot be pickled: made again
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    @property
    def columns(self) -> list[str]:
        """The header, as written so far."""
        return list(self._columns)

    def state_dict(self) -> dict[str, Any]:
        """The last epoch whose row is in the file (and the last batch row after it), and the header as it was then."""
        return {**super().state_dict(), "columns": list(self._columns)}

    def _kept_rows(self, source: IO[str], state: Mapping[str, Any]) -> Iterator[str]:
        """The header (as saved) and the rows up to the saved point, to the saved columns."""
        reader = csv.reader(source)
        header = next(reader, [])
        columns = [str(column) for column in state.get("columns") or header]
        if (state["epoch"] is None and state.get("batch") is None) or not columns:
            return
        where = {column: index for index, column in enumerate(header)}
        at = where.get("batch")
        yield self._line(list(columns))
        for cells in reader:
            if not cells or not cells[0].isdigit():
                continue
            batch = cells[at] if at is not None and at < len(cells) else ""
            if not self._keeps(state, int(cells[0]), int(batch) if batch.isdigit() else None):
                continue
            yield self._line(
                [cells[where[column]] if where.get(column, len(cells)) < len(cells) else "" for column in columns]
            )

    def _open(self, target: pathlib.Path, *, append: bool) -> None:
        self._columns = []
        if append:
            with open(target, encoding="utf-8", newline="") as file:
                self._columns = next(csv.reader(file), [])
        self._known = set(self._columns)
        super()._open(target, append=append)

    def _line(self, cells: Sequence[object]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(cells)
        return self._buffer.getvalue()

    def _write(self, row: dict[str, object]) -> None:
        self._open_file()
        if not self._known.issuperset(row):
            new = [key for key in row if key not in self._known]
            if self._columns:
                self._add_columns(new)
            else:
                self._emit(self._line(list(new)))  # the header: the columns are known once it is in the file
                self._columns = new
            self._known.update(new)
        self._emit(self._line([_cell(row.get(column)) for column in self._columns]))

    def _add_columns(self, new: list[str]) -> None:
        """Rewrite the file with ``new`` columns added, through a temporary sibling and ``os.replace``.

        On a failure (a full disk), the file is left as it was, with its old header, and the columns are unchanged.
        """
        target = self.file_path
        if target is None:  # pragma: no cover - rows are refused before on_train_start
            return
        self._close_file()
        try:
            with open(target, encoding="utf-8", newline="") as source:
                reader = csv.reader(source)
                next(reader, None)
                padding = [""] * len(new)
                rows = (self._line(cells + padding) for cells in reader)
                write_atomic(target, _chain(self._line(self._columns + new), rows), fsync=self.fsync)
            self._columns = self._columns + new
        except OSError as error:
            raise TrainingError(
                f"{self.plugin}: cannot add the columns {new} to {target}: {cause(error)}; the file is left as it "
                f"was, with its header, and the row is not written",
                callback=self,
            ) from error
        finally:
            super()._open(target, append=True)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _cell(value: object) -> object:
    """What a cell holds: the value (floats keep their ``repr`` precision), or nothing for a missing value."""
    return "" if value is None else value
