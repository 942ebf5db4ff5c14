"""``jsonl_logger``: one JSON object per line for every epoch (and optionally every batch), with every metric.

JSON Lines suits metrics whose set changes during a run: each line carries its own keys. Each line is written whole
with one system call (cut back out if the write fails), so a run killed at any moment, or a full disk, leaves a file
whose lines all parse.
"""

from __future__ import annotations

import json
import math
import os  # noqa: TC003 - constructor annotations stay resolvable for tools that inspect them
from typing import IO, TYPE_CHECKING, Any

from ._writers import RowLogger

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["JSONLLogger"]


class JSONLLogger(RowLogger):
    """Write one JSON object per line for every epoch (and optionally every batch), with every metric.

    Each line holds ``epoch`` (0-indexed), ``batch`` (on batch lines, with ``per_batch``), then the metrics. The
    output is strict JSON: NaN and infinite values are written as ``null``; a value JSON cannot hold is written as
    its ``float()`` when it has one (NumPy and PyTorch scalars), else as its ``str()``.

    Args:
        path: the ``.jsonl`` file; a relative path resolves against the trainer's ``output_dir`` context keyword
            (the demo's run folder) or the current directory. Its folder is created when missing.
        per_batch: also write one line per batch.
        append: add to an existing file instead of replacing it; a last line cut by a killed run is dropped first.
            A resumed training (given the saved state) needs no ``append``: it keeps the lines up to the saved
            epoch, drops the later ones and appends.
        fsync: ``os.fsync`` every line, for files that must survive a power loss (slower).

    Raises:
        PluginParameterError: for a parameter of the wrong type.

    Example:
        >>> import pathlib, tempfile
        >>> from altametris.sara.core.base_callback import CallbackManager
        >>> folder = tempfile.mkdtemp()
        >>> manager = CallbackManager([JSONLLogger(path="metrics.jsonl")])
        >>> manager.on_train_start(output_dir=folder)
        >>> manager.on_epoch_end(0, {"loss": 0.5, "val_loss": float("nan")})
        >>> manager.on_train_end()
        >>> print(pathlib.Path(folder, "metrics.jsonl").read_text(), end="")
        {"epoch": 0, "loss": 0.5, "val_loss": null}
    """

    plugin = "jsonl_logger"

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] = "metrics.jsonl",
        per_batch: bool = False,
        append: bool = False,
        fsync: bool = False,
    ) -> None:
        super().__init__(path=path, per_batch=per_batch, append=append, fsync=fsync)

    def _kept_rows(self, source: IO[str], state: Mapping[str, Any]) -> Iterator[str]:
        """The lines up to the saved point."""
        for line in source:
            try:
                row = json.loads(line)
                epoch, batch = row.get("epoch"), row.get("batch")
            except (ValueError, AttributeError):
                continue
            if type(epoch) is int and self._keeps(state, epoch, batch if type(batch) is int else None):
                yield line

    def _write(self, row: dict[str, object]) -> None:
        if row.get("batch", 0) is None:
            del row["batch"]  # an epoch row of a per-batch log
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
        self._emit(json.dumps(row, allow_nan=False, default=_jsonable) + "\n")


def _jsonable(value: object) -> object:
    """What ``json`` writes for a value it cannot hold."""
    if hasattr(value, "__float__"):
        number = float(value)
        return number if math.isfinite(number) else None
    return str(value)
