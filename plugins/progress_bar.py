"""``progress_bar``: epoch and batch progress with the latest metrics, through tqdm when it is installed."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from typing import IO, TYPE_CHECKING, Any, Union

from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.exceptions import PluginParameterError

from ._checks import check_bool, check_choice, check_float, check_int
from ._metrics import format_metrics

if TYPE_CHECKING:
    from altametris.sara.core.hookspecs import Metrics

__all__ = ["ProgressBar"]

Stream = Union[str, IO[str]]
"""Where the progress goes: ``"stderr"``, ``"stdout"`` (looked up when the training starts), or an open text file."""

_BACKENDS = ("auto", "tqdm", "plain")
_STREAMS = ("stderr", "stdout")
_EXTRA = "pip install 'sara-callbacks[progress]'"
_WIDTH = 20


def _tqdm_installed() -> bool:
    if "tqdm" in sys.modules:
        return sys.modules["tqdm"] is not None
    return importlib.util.find_spec("tqdm") is not None


class ProgressBar(BaseCallback):
    """Show the progress of every epoch with the latest metrics; silent when the output is not a terminal.

    On a terminal it draws one bar per epoch that fills as the batches run, with the latest batch metrics, and ends
    with the epoch's metrics (training and validation). It uses tqdm when it is installed (the ``progress`` extra:
    ``pip install 'sara-callbacks[progress]'``), and its own line otherwise. When the output is not a terminal (a log
    file, CI) it prints nothing, unless ``force`` is set: it then prints one plain line per epoch. At the end of a
    training stopped early it says who stopped it and why.

    It reads the trainer's ``epochs`` and ``num_batches`` context keywords, when given, to show totals.

    Args:
        force: print even when the output is not a terminal.
        backend: ``"auto"`` (tqdm on a terminal when installed, else plain), ``"tqdm"`` (required), or ``"plain"``.
        stream: ``"stderr"`` or ``"stdout"``, looked up when the training starts, or an open text file.
        refresh_seconds: the shortest time between two redraws of a bar.
        digits: significant digits of the metrics shown.

    Raises:
        PluginParameterError: for a parameter of the wrong type or value, or ``backend="tqdm"`` without tqdm.

    Example:
        >>> import io
        >>> output = io.StringIO()
        >>> bar = ProgressBar(force=True, stream=output)
        >>> bar.on_train_start(epochs=2, num_batches=10)
        >>> bar.on_epoch_start(0)
        >>> bar.on_epoch_end(0, {"loss": 0.51234, "val_loss": 0.6})
        >>> print(output.getvalue(), end="")
        epoch 0 (1/2) loss=0.5123 val_loss=0.6
    """

    rank_zero_only = True  # it writes files or prints: once, on rank 0, in a training of several processes

    plugin = "progress_bar"

    def __init__(
        self,
        *,
        force: bool = False,
        backend: str = "auto",
        stream: Stream = "stderr",
        refresh_seconds: float = 0.1,
        digits: int = 4,
    ) -> None:
        self.force = check_bool(self.plugin, "force", force)
        self.backend = check_choice(self.plugin, "backend", backend, _BACKENDS)
        if not isinstance(stream, str) and not callable(getattr(stream, "write", None)):
            raise PluginParameterError(
                f"{self.plugin}: parameter 'stream' expects 'stderr', 'stdout' or an open text file, got {stream!r}",
                plugin=self.plugin,
                parameter="stream",
            )
        self.stream = check_choice(self.plugin, "stream", stream, _STREAMS) if isinstance(stream, str) else stream
        self.refresh_seconds = check_float(self.plugin, "refresh_seconds", refresh_seconds, minimum=0.0)
        self.digits = check_int(self.plugin, "digits", digits, minimum=1)
        if self.backend == "tqdm" and not _tqdm_installed():
            raise PluginParameterError(
                f"{self.plugin}: backend='tqdm' needs tqdm, which is not installed; install the extra with: {_EXTRA} "
                f"(or use backend='auto', which falls back to plain lines)",
                plugin=self.plugin,
                parameter="backend",
            )
        self._out: IO[str] | None = None
        self._live = False  # redraw in place (a terminal), rather than one line per epoch
        self._tqdm: Any = None  # the tqdm class, when it draws
        self._bar: Any = None  # the current epoch's tqdm bar
        self._epochs: int | None = None
        self._batches: int | None = None
        self._label = ""
        self._done = 0
        self._shown = 0.0
        self._width = 0

    def __repr__(self) -> str:
        stream = self.stream if isinstance(self.stream, str) else type(self.stream).__name__
        return f"{type(self).__name__}(force={self.force}, backend={self.backend!r}, stream={stream!r})"

    # -- hooks ----------------------------------------------------------------------------------------------------

    def on_train_start(self, **kwargs: Any) -> None:
        """Decide whether and how to draw: a terminal, or ``force``."""
        out = getattr(sys, self.stream) if isinstance(self.stream, str) else self.stream
        try:
            terminal = bool(out.isatty())
        except (AttributeError, ValueError):
            terminal = False
        self._out = out if (terminal or self.force) else None
        self._live = terminal
        use_tqdm = self.backend == "tqdm" or (self.backend == "auto" and terminal and _tqdm_installed())
        self._tqdm = importlib.import_module("tqdm").tqdm if self._out is not None and use_tqdm else None
        epochs, batches = kwargs.get("epochs"), kwargs.get("num_batches")
        self._epochs = epochs if isinstance(epochs, int) else None
        self._batches = batches if isinstance(batches, int) else None

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        """Start the epoch's bar."""
        if self._out is None:
            return
        self._label = f"epoch {epoch}" + (f" ({epoch + 1}/{self._epochs})" if self._epochs else "")
        self._done, self._shown = 0, time.monotonic()
        if self._tqdm is not None:
            self._bar = self._tqdm(
                total=self._batches, desc=self._label, file=self._out, leave=True, unit="batch", dynamic_ncols=True
            )

    def on_batch_end(self, batch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Advance the bar; show the batch metrics, at most every ``refresh_seconds``."""
        if self._out is None:
            return
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif not self._live:
            return
        now = time.monotonic()
        if now - self._shown < self.refresh_seconds:
            return
        self._shown = now
        text = format_metrics(metrics, self.digits)
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
        else:
            self._redraw(f"{self._label} {self._counter()} {text}")

    def on_epoch_end(self, epoch: int, metrics: Metrics, **kwargs: Any) -> None:
        """Finish the epoch's line with the epoch's metrics."""
        if self._out is None:
            return
        text = format_metrics(metrics, self.digits)
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)
            self._close_bar()
        elif self._live:
            self._redraw(f"{self._label} {self._counter()} {text}")
            self._write("\n")
            self._width = 0
        else:
            self._write(f"{self._label} {text}\n")

    def on_train_end(self, **kwargs: Any) -> None:
        """Close the bar; say who stopped the training early, and why."""
        self._finish()
        control = kwargs.get("control")
        reason = getattr(control, "stop_reason", None)
        if self._out is not None and reason:
            source = getattr(control, "stop_source", None)
            self._write(f"stopped early{f' by {source}' if source else ''}: {reason}\n")
        self._out = None

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        """Close the bar, so that the error's traceback starts on a line of its own."""
        self._finish()
        self._out = None

    # -- drawing --------------------------------------------------------------------------------------------------

    def _counter(self) -> str:
        if not self._batches:
            return f"{self._done} batches"
        filled = min(_WIDTH, _WIDTH * self._done // self._batches)
        return f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {self._done}/{self._batches}"

    def _redraw(self, line: str) -> None:
        padding = " " * max(0, self._width - len(line))
        self._width = len(line)
        self._write(f"\r{line}{padding}")

    def _write(self, text: str) -> None:
        if self._out is not None:
            self._out.write(text)
            self._out.flush()

    def _close_bar(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()

    def _finish(self) -> None:
        self._close_bar()
        if self._width:
            self._write("\n")
            self._width = 0
