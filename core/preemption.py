"""Preemption: SIGTERM as a request to stop after the current batch, a second signal as an exit naming the hook.

Schedulers (SLURM, Kubernetes) send SIGTERM, wait a grace period, then kill. Every trainer (``fit``,
:class:`~altametris.sara.core.training_run.TrainingRun`, each bridge) runs its training inside
:func:`sigterm_stops`, so that preemption means the same everywhere:

* the first SIGTERM asks for a stop (``control.stop_reason`` starts with ``"preempted"``, ``control.stop_source``
  is ``"SIGTERM"``): the current batch finishes, ``on_train_end`` runs, and the trainer then raises
  :class:`~altametris.sara.core.control.Preempted`, which ends the process with status 143 as SIGTERM would have;
* once it came, a second SIGTERM or a SIGINT (Ctrl-C) ends the process at once, with status 143, after one line on
  stderr naming the callback and the hook that was running, which is what a hung hook needs: without it, the
  process would wait for the scheduler's kill and say nothing. The hook is read from the interrupted frames when the
  signal comes; nothing on the hook path keeps track of it. A hook stuck inside C code that never returns to the
  interpreter cannot run a Python signal handler: the scheduler's kill ends it.

Files written by the built-in callbacks are complete or untouched at any point (written whole, or through a
temporary file and a rename), so ending at once loses nothing written so far.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Callable, Optional, Protocol

from .control import Preempted
from .hookspecs import HOOKS
from .order import placement_of

if TYPE_CHECKING:
    import types
    from collections.abc import Iterator

    from .control import TrainingControl

__all__ = ["EXIT_STATUS", "Preemptible", "is_preemption", "running_hook", "sigterm_stops"]

EXIT_STATUS = 143
"""The exit status of a preempted process: 128 + SIGTERM, what the process would have ended with."""


class Preemptible(Protocol):
    """What :func:`sigterm_stops` stops: a training with a control object and a ``preempted`` flag."""

    preempted: bool

    @property
    def control(self) -> TrainingControl:
        """The training's control object, asked for the stop."""
        ...


Alive = Callable[[Optional["types.FrameType"]], bool]
"""Whether the training is still running, judged from the interrupted frame."""


@contextlib.contextmanager
def sigterm_stops(run: Preemptible, reason: str, *, alive: Alive | None = None) -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM asks ``run`` to stop instead of ending the process.

    The first SIGTERM sets ``run.preempted`` and asks ``run.control`` for a stop with ``reason`` (which starts with
    ``"preempted"``); after it, a second SIGTERM or a SIGINT ends the process at once with status 143, naming the
    hook that was running. The previous handlers are restored when the block ends (those still in place: a handler
    set meanwhile by someone else is left alone). Outside the main thread, where Python cannot set signal handlers,
    nothing is installed.

    Args:
        run: the training.
        reason: the stop reason, starting with ``"preempted"``.
        alive: for a block that may be left without being closed (a bridge, whose framework says nothing when it
            fails): called with the interrupted frame, ``False`` hands the signal to the previous handler.
    """
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.getsignal(signal.SIGTERM), signal.SIGINT: signal.getsignal(signal.SIGINT)}

    def restore() -> None:
        for signum, handler in previous.items():
            if signal.getsignal(signum) in (preempt, again):
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def again(signum: int, frame: types.FrameType | None) -> None:
        name = signal.Signals(signum).name
        message = f"sara: {name} after SIGTERM, {running_hook(frame)}: ending the process now, with status 143\n"
        with contextlib.suppress(Exception):  # a full pipe or a closed stream must not keep the process alive
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            os.write(2, message.encode("utf-8", "replace"))
        os._exit(EXIT_STATUS)

    def preempt(signum: int, frame: types.FrameType | None) -> None:
        if alive is not None and not alive(frame):  # the training is over: the signal is not ours
            restore()
            signal.raise_signal(signum)
            return
        if run.preempted:
            again(signum, frame)
        run.preempted = True
        run.control.request_stop(reason, source=Preempted.source)
        signal.signal(signal.SIGINT, again)

    signal.signal(signal.SIGTERM, preempt)
    try:
        yield
    finally:
        restore()


def is_preemption(run: Preemptible) -> bool:
    """Whether ``run``'s stop, once agreed, is a preemption: SIGTERM here, or on the rank whose reason it took.

    Under ``torchrun``, the rank that did not receive SIGTERM (or not yet) learns the stop from the one that did
    (:func:`~altametris.sara.core.distributed.agree_stop`): it ends as a preemption too, so that every rank drops
    the same partial epoch and exits with 143. Sets ``run.preempted`` then.
    """
    if not run.preempted and run.control.stop_source == Preempted.source:
        run.preempted = True
    return run.preempted


def running_hook(frame: types.FrameType | None) -> str:
    """Which callback's hook ``frame`` (the interrupted one) is inside, in words, for the exit message.

    Example: ``"while callback 'slow_upload' (Uploader) was running on_batch_end"``; ``"while no SARA hook was
    running (the trainer's own code)"`` outside the hooks.
    """
    while frame is not None:
        code, local = frame.f_code, frame.f_locals
        if code.co_name in HOOKS and code.co_filename.startswith("<sara "):  # a manager's hook method
            calls, call = local.get("calls"), local.get("call")
            callback = calls.callback_of(call) if calls is not None and call is not None else None
            return _words(callback, code.co_name)
        if code.co_name == "_call_by_name" and isinstance(local.get("hook"), str):  # a hook called by name
            return _words(local.get("callback"), local["hook"])
        frame = frame.f_back
    return "while no SARA hook was running (the trainer's own code)"


def _words(callback: object, hook: str) -> str:
    if callback is None:
        return f"while the manager was running {hook}"
    cls = type(callback).__name__
    placement = placement_of(callback)  # type: ignore[arg-type]  # any callback object
    name = None if placement is None else placement.name  # its config item's name (no metadata read here)
    who = f"callback {name!r} ({cls})" if name is not None and name != cls else f"callback {cls}"
    return f"while {who} was running {hook}"
