"""Stopping a training without failing it.

A callback that decides the training should end (early stopping, a NaN guard, a time budget) is not failing: it asks
for a stop. There are two ways to ask, and the built-in callbacks use the first that is available:

* a :class:`TrainingControl` object, which the trainer passes to every hook as the context keyword ``control``
  (as the reference loop :func:`~altametris.sara.core.loop.fit` does) and checks after each batch and each epoch;
* a :class:`StopTraining` exception, for trainers that pass no control object. It derives from
  :class:`BaseException`, not :class:`Exception`, so the manager lets it through unwrapped (it is no callback failure),
  and the trainer catches it to end the training cleanly.

:func:`stop_training` picks the right one for a callback.

Example:
    >>> control = TrainingControl()
    >>> control.request_stop("val_loss stopped improving", source="early_stopping")
    >>> control.request_stop("time budget spent", source="timer")
    >>> control.should_stop, control.stop_reason, control.stop_source
    (True, 'val_loss stopped improving', 'early_stopping')
    >>> [request.source for request in control.requests]
    ['early_stopping', 'timer']
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from ._failures import debug

__all__ = ["Preempted", "StopControl", "StopRequest", "StopTraining", "TrainingControl", "stop_training"]


class StopRequest(NamedTuple):
    """One request to stop: why, and who asked (a plugin name, say), when known."""

    reason: str
    source: str | None = None


class StopControl(Protocol):
    """What a callback needs from a trainer's control object: a way to ask for a stop."""

    def request_stop(self, reason: str, *, source: str | None = None) -> None:
        """Ask the trainer to end the training after the current batch or epoch."""


class TrainingControl:
    """Decisions that callbacks hand to the trainer: for now, whether the training should stop, and why.

    The trainer creates one per training, passes it to every hook as the context keyword ``control``, and checks
    :attr:`should_stop` after each batch and each epoch. The first request's reason is the stop reason; later
    requests are kept in :attr:`requests`, in order.

    Attributes:
        should_stop: whether a stop was requested. Setting it to ``True`` directly also stops the training (with no
            reason recorded).
        requests: every stop request, in the order they were made.
    """

    __slots__ = ("requests", "should_stop")

    def __init__(self) -> None:
        self.should_stop = False
        self.requests: list[StopRequest] = []

    def request_stop(self, reason: str, *, source: str | None = None) -> None:
        """Ask the trainer to stop after the current batch (the epoch is completed) or epoch.

        Args:
            reason: a sentence saying why, shown to the user.
            source: who asks, such as the plugin's name.
        """
        self.requests.append(StopRequest(reason, source))
        self.should_stop = True
        debug("stop requested by %s: %s", source or "an unnamed source", reason)

    @property
    def stop_reason(self) -> str | None:
        """The first request's reason, or ``None`` when no stop was requested (or none with a reason)."""
        return self.requests[0].reason if self.requests else None

    @property
    def stop_source(self) -> str | None:
        """Who made the first request, when known."""
        return self.requests[0].source if self.requests else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(should_stop={self.should_stop!r}, stop_reason={self.stop_reason!r})"


class StopTraining(BaseException):
    """Raised by a callback to end the training when the trainer passed no control object.

    Not an :class:`Exception`: the manager lets it through untouched (it is not a callback failure), the way it lets
    ``KeyboardInterrupt`` through. A trainer catches it and ends the training as after a stop request (the reference
    loop does, and still calls ``on_train_end``). The other callbacks of the hook being called do not run: prefer
    the control object when the trainer offers one.

    Attributes:
        reason: why the training should stop.
        source: who asks, when known.
    """

    def __init__(self, reason: str = "", *, source: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.source = source


class Preempted(SystemExit):
    """Raised by :func:`~altametris.sara.core.loop.fit` after a training stopped by SIGTERM ended cleanly.

    Schedulers (SLURM, Kubernetes) send SIGTERM before they kill a job. ``fit`` turns it into a stop request: the
    current batch finishes, the partial epoch is dropped, ``on_train_end`` runs (its ``control.stop_reason`` starts
    with ``"preempted"``), and then this exception ends the process, as SIGTERM would have, with exit status 143
    (128 + 15), after the message saying how to resume was logged. A :class:`SystemExit`, so that code written for a
    finished training (``except Exception``, "save the final model") does not run on a preempted one; catch it to
    do otherwise (the demo does, to print its own ``--resume`` command).

    Attributes:
        code: 143, the exit status.
        message: what happened and how to resume.
        last_epoch: the last epoch whose ``on_epoch_end`` ran (the resume point), ``None`` when none did.
    """

    source = "SIGTERM"
    """The ``source`` of the stop request that a preemption makes (``control.stop_source``)."""

    def __init__(self, message: str, *, last_epoch: int | None) -> None:
        super().__init__(143)
        self.message = message
        self.last_epoch = last_epoch

    def __str__(self) -> str:
        return self.message


def stop_training(control: StopControl | None, reason: str, *, source: str | None = None) -> None:
    """Ask for a stop through ``control`` when the trainer gave one, else raise :class:`StopTraining`.

    Args:
        control: the hook's ``control`` context keyword, ``None`` when the trainer passed none.
        reason: why the training should stop.
        source: who asks, such as the plugin's name.

    Raises:
        StopTraining: when ``control`` is ``None``.

    Example:
        >>> control = TrainingControl()
        >>> stop_training(control, "enough", source="me")
        >>> control.stop_reason
        'enough'
        >>> stop_training(None, "enough", source="me")
        Traceback (most recent call last):
        ...
        altametris.sara.core.control.StopTraining: enough
    """
    if control is None:
        raise StopTraining(reason, source=source)
    control.request_stop(reason, source=source)
