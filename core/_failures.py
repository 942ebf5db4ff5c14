r"""What happens when a callback fails: the error the trainer sees, the error policies, and what gets logged.

Nothing here is public; :mod:`~altametris.sara.core.base_callback` re-exports :data:`ErrorPolicy`. A callback's
``Exception`` becomes a :class:`~altametris.sara.core.exceptions.TrainingError` that names the callback, the hook and
the epoch or batch, with the original as ``__cause__`` (:func:`wrap`). What happens next is the callback's error
policy, its ``on_error`` attribute:

* ``"raise"`` (the default): the error reaches the trainer;
* ``"warn"``: the error is logged with its context, and the hook goes on with the next callback;
* ``"disable"``: as ``"warn"``, and the callback is not called again for the rest of the run (it first receives
  ``on_exception`` with its own failure, so that it closes what it opened).

Failures in the cleanup hook ``on_exception`` are always logged, never raised, whatever the policy: they must not
hide the error being handled. ``BaseException``\ s that are not ``Exception``\ s (``KeyboardInterrupt``,
``SystemExit``, :class:`~altametris.sara.core.control.StopTraining`) are never caught, under any policy.

``logging`` is imported on the first failure only: a training that never fails never pays for it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal

from .exceptions import MissingArgumentError, TrainingError
from .hookspecs import HOOKS
from .messages import class_name, describe_error, safe_repr

if TYPE_CHECKING:
    import logging
    from collections.abc import Mapping

__all__: list[str] = []

ErrorPolicy = Literal["raise", "warn", "disable"]
"""What the manager does with a callback's exception: raise it, log it and go on, or log it and stop calling it."""

ERROR_POLICIES: tuple[ErrorPolicy, ...] = ("raise", "warn", "disable")
"""Every error policy, the default first."""

DEFAULT_POLICY: ErrorPolicy = "raise"

LOGGER_NAME = f"{__name__.rpartition('.')[0]}.base_callback"
"""The failures are logged under the name of the manager's module, ``altametris.sara.core.base_callback``."""


def logger() -> logging.Logger:
    """The logger of the callback machinery, made on first use."""
    import logging

    return logging.getLogger(LOGGER_NAME)


def debugging() -> bool:
    """Whether :func:`debug` would log: ``logging`` imported and DEBUG on for the manager's logger."""
    return "logging" in sys.modules and logger().isEnabledFor(10)  # logging.DEBUG


def debug(message: str, *args: object) -> None:
    """Log ``message % args`` at DEBUG, for debugging a trainer: registrations, rebuilds, stop requests.

    Free when nothing could show it: ``logging`` never imported (then no handler exists), or DEBUG off for the
    manager's logger. Never called from a hook call's path, only from changes and decisions.
    """
    if debugging():
        logger().debug(message, *args)


# -- policies ------------------------------------------------------------------------------------------------------


def policy_problem(value: object) -> str | None:
    """Why ``value`` is no error policy, or ``None`` when it is one."""
    if isinstance(value, str) and value in ERROR_POLICIES:
        return None
    expected = ", ".join(repr(policy) for policy in ERROR_POLICIES)
    hint = (
        "; on_error is the error policy, not a hook: to be told that the training failed, override on_exception"
        if callable(value)
        else ""
    )
    return f"expected one of {expected}, got {safe_repr(value)}{hint}"


def policy_of(callback: object) -> ErrorPolicy:
    """``callback``'s error policy, as validated at registration (``"raise"`` when it has none)."""
    policy: ErrorPolicy = getattr(callback, "on_error", DEFAULT_POLICY)
    return policy


def set_policy(callback: object, policy: object, where: str) -> None:
    """Set ``callback.on_error`` to ``policy``, after checking it.

    Raises:
        TrainingError: ``policy`` is no error policy, or the callback does not let it be set.
    """
    problem = policy_problem(policy)
    if problem is not None:
        raise TrainingError(f"{where}: on_error: {problem}", callback=callback)
    try:
        callback.on_error = policy  # type: ignore[attr-defined]
    except Exception as error:
        raise TrainingError(
            f"{where}: cannot set the error policy of {class_name(callback)!r} ({describe_error(error)}); set on_error "
            "in its class instead",
            callback=callback,
        ) from error


def check_policy(callback: object, where: str) -> None:
    """Check the error policy that ``callback`` carries.

    Raises:
        TrainingError: naming ``where``, the callback's class and the value found.
    """
    try:
        policy: object = getattr(callback, "on_error", DEFAULT_POLICY)
    except Exception as error:
        policy = error
    problem = policy_problem(policy)
    if problem is not None:
        raise TrainingError(f"{where}: {class_name(callback)}.on_error: {problem}", callback=callback)


# -- the error the trainer sees, and the logs --------------------------------------------------------------------


def wrap(
    callback: object, hook: str, error: BaseException, arguments: Mapping[str, object], position: Mapping[str, object]
) -> TrainingError:
    """The :class:`TrainingError` for ``callback``'s ``error`` in ``hook``, with ``error`` as ``__cause__``.

    ``arguments`` are the hook's arguments (``epoch``, ``batch`` ... and the context); ``position`` holds the current
    epoch, for hooks that do not receive it.
    """
    epoch = arguments.get("epoch", position.get("epoch"))
    batch = arguments.get("batch")
    spec = HOOKS.get(hook)
    batch_name = "batch" if spec is None or spec.scope == "batch" else "validation batch"  # by the hook's scope
    where = ", ".join(
        f"{name} {value}" for name, value in (("epoch", epoch), (batch_name, batch)) if isinstance(value, int)
    )
    prefix = f"callback {class_name(callback)!r} failed in {hook}" + (f" ({where})" if where else "")
    missing = isinstance(error, MissingArgumentError)
    failure = (MissingArgumentError if missing else TrainingError)(
        f"{prefix}: {error if missing else describe_error(error)}",
        callback=callback,
        hook=hook,
        epoch=epoch if isinstance(epoch, int) else None,
        batch=batch if isinstance(batch, int) else None,
    )
    # What ``raise ... from error`` would do; a missing argument is our own finding and needs no cause.
    failure.__cause__ = None if missing else error
    failure.__suppress_context__ = True
    return failure


def log_cleanup_failure(failure: TrainingError, hook: str) -> None:
    """Log a failure of a cleanup hook, which must not hide the error being handled."""
    logger().error("%s (ignored: %s must reach every callback)", failure, hook, exc_info=failure)


def log_tolerated(failure: TrainingError, *, traceback: bool, repeated: int = 0) -> None:
    """Log a failure that the ``"warn"`` policy lets pass; the traceback only when asked (the first time).

    Args:
        failure: the failure.
        traceback: log its traceback too.
        repeated: how many times the same callback failed in the same hook since the last report, this time included
            (0 for a first report).
    """
    again = f"; it failed {repeated} times in this hook since the last report" if repeated else ""
    logger().warning(
        "%s (on_error='warn': the training goes on%s)", failure, again, exc_info=failure if traceback else None
    )


def log_disabled(failure: TrainingError) -> None:
    """Say, once, that a callback is disabled for the rest of the run."""
    logger().warning(
        "%s (on_error='disable': %r is not called again in this run)",
        failure,
        class_name(failure.callback),
        exc_info=failure,
    )
