"""The library's errors and warnings.

Every error SARA raises derives from :class:`SaraError`, so ``except SaraError`` catches all of them and nothing else.
None of them derives from :class:`KeyError`, :class:`AttributeError` or :class:`IndexError`: their ``str()`` and their
meaning would mislead. Each error keeps the objects involved as attributes (``.callback``, ``.hook``, ``.plugin``,
``.distribution``, ``.path``, ``.key`` ...) and its message says what was expected, what was found and what to do.

Example:
    >>> from altametris.sara.core.exceptions import SaraError, TrainingError
    >>> error = TrainingError("boom", hook="on_epoch_end", epoch=3)
    >>> isinstance(error, SaraError), error.hook, error.epoch
    (True, 'on_epoch_end', 3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "ConformanceError",
    "DuplicatePluginError",
    "HookNameWarning",
    "MissingArgumentError",
    "OrderError",
    "PluginError",
    "PluginLoadError",
    "PluginParameterError",
    "PluginTypeError",
    "SaraError",
    "SaraWarning",
    "StateError",
    "TrainingError",
    "UnknownPluginError",
    "UnsuppliedHookWarning",
]


class SaraError(Exception):
    """Base class of every error raised by SARA callbacks."""


class TrainingError(SaraError):
    """A callback failed, or was used in a way the lifecycle does not allow.

    Raised by :class:`~altametris.sara.core.base_callback.CallbackManager` for a callback's exception (kept as
    ``__cause__``), for an object that is not a callback, and for a hook the caller named wrongly.

    Attributes:
        callback: the callback involved, when there is one.
        hook: the hook's name (``"on_epoch_end"``), when known.
        epoch: the 0-indexed epoch during which it happened, when known.
        batch: the 0-indexed batch during which it happened, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        callback: object = None,
        hook: str | None = None,
        epoch: int | None = None,
        batch: int | None = None,
    ) -> None:
        super().__init__(message)
        self.callback = callback
        self.hook = hook
        self.epoch = epoch
        self.batch = batch


class MissingArgumentError(TrainingError):
    """A callback requires an argument that the trainer did not pass.

    The message names the callback, the hook and the missing argument; it is the manager's own finding, so it has no
    ``__cause__``.
    """


class StateError(SaraError):
    """A callback state could not be saved or restored (duplicate ``state_key``, unknown or malformed entries).

    Attributes:
        key: the ``state_key`` involved.
        callbacks: the callbacks involved (two for a duplicate key).
    """

    def __init__(self, message: str, *, key: str | None = None, callbacks: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.key = key
        self.callbacks = tuple(callbacks)


class PluginError(SaraError):
    """A plugin of the ``sara.callbacks`` entry-point group could not be used.

    Attributes:
        plugin: the plugin's (entry point's) name.
        distribution: the distribution that declares it, ``"name==version"`` when known.
        target: the entry point's ``module:attribute`` value, when known.
        path: the config file that named the plugin, when the error comes from one.
        key: where in that config, e.g. ``"callbacks[2].params.patience"``, when the error comes from a config.
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        distribution: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.distribution = distribution
        self.target = target
        self.path: str | None = None
        self.key: str | None = None


class UnknownPluginError(PluginError):
    """No installed distribution registers a plugin under that name.

    Attributes:
        suggestions: the closest available names, best first.
        available: every available name.
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str,
        suggestions: Sequence[str] = (),
        available: Sequence[str] = (),
    ) -> None:
        super().__init__(message, plugin=plugin)
        self.suggestions = tuple(suggestions)
        self.available = tuple(available)


class PluginLoadError(PluginError):
    """Importing a plugin's target failed; the original exception is ``__cause__``."""


class PluginTypeError(PluginError):
    """A plugin's target is not a ``BaseCallback`` subclass, nor a callable returning a ``BaseCallback`` instance.

    Attributes:
        found: the object the entry point loaded (or the factory returned).
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        distribution: str | None = None,
        target: str | None = None,
        found: Any = None,
    ) -> None:
        super().__init__(message, plugin=plugin, distribution=distribution, target=target)
        self.found = found


class DuplicatePluginError(PluginError):
    """Two or more distributions register a plugin under the same name; SARA never picks one silently.

    Attributes:
        distributions: every ``"name==version"`` that registers the name.
        targets: the ``module:attribute`` each of them registers, in the same order.
    """

    def __init__(self, message: str, *, plugin: str, distributions: Sequence[str], targets: Sequence[str] = ()) -> None:
        super().__init__(message, plugin=plugin)
        self.distributions = tuple(distributions)
        self.targets = tuple(targets)


class PluginParameterError(PluginError):
    """A plugin's constructor refused its parameters (unknown, missing, wrong type) or raised while building.

    Attributes:
        parameter: the parameter's name, when one is to blame.
        expected: what the parameter accepts (its annotation, as text), for a wrong type.
        found: the value given, for an unknown parameter or a wrong type.
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        distribution: str | None = None,
        target: str | None = None,
        parameter: str | None = None,
        expected: str | None = None,
        found: Any = None,
    ) -> None:
        super().__init__(message, plugin=plugin, distribution=distribution, target=target)
        self.parameter = parameter
        self.expected = expected
        self.found = found


class ConfigError(SaraError):
    """A configuration file or mapping is malformed.

    Attributes:
        path: the file, or ``None`` for a mapping given in code.
        key: where in the config, e.g. ``"callbacks[2].params"``.
        line: the 1-indexed line of a syntax error, when the parser tells it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.key = key
        self.line = line


class OrderError(ConfigError):
    """The declared order of the callbacks has a cycle (:mod:`~altametris.sara.core.order`): no order satisfies it.

    Attributes:
        cycle: the names of the callbacks in the cycle, each to run after the one before it (the first repeated last).
    """

    def __init__(self, message: str, *, cycle: Sequence[str], path: str | None = None, key: str | None = None) -> None:
        super().__init__(message, path=path, key=key)
        self.cycle = tuple(cycle)


class SaraWarning(UserWarning):
    """Base class of SARA's warnings."""


class HookNameWarning(SaraWarning):
    """A callback defines an ``on_*`` method that is no hook: it would silently never run (a misspelling?)."""


class UnsuppliedHookWarning(SaraWarning):
    """A callback overrides a hook that its trainer never calls (:data:`~altametris.sara.core.trainers.SUPPLIED`)."""


class ConformanceError(PluginError):
    """A callback does not fit the contract checked by :func:`~altametris.sara.core.testing.check_callback`.

    The message lists every problem on its own line: hook signatures that do not fit the hookspecs, a misspelt hook,
    constructor parameters that ``sara-callbacks show`` and the config checks cannot read, a state that does not
    survive a JSON round trip.

    Attributes:
        callback: the callback (class, instance or factory) that was checked.
        problems: every problem found, one sentence each.
    """

    def __init__(
        self, message: str, *, callback: object = None, problems: Sequence[str] = (), plugin: str | None = None
    ) -> None:
        super().__init__(message, plugin=plugin)
        self.callback = callback
        self.problems = tuple(problems)
