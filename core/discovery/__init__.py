"""Plugins by name: the ``sara.callbacks`` entry-point group, read once per process, imported only when used.

A plugin is an entry point of the group :data:`GROUP`; its name is the plugin's name and its object is a
:class:`~altametris.sara.core.base_callback.BaseCallback` subclass, or a callable returning a ``BaseCallback``
instance. A distribution registers it in its own ``pyproject.toml``::

    [project.entry-points."sara.callbacks"]
    metric_alert = "sara_plugin_example.metric_alert:MetricAlert"

:func:`available_plugins` reads the installed distributions' metadata once per process and imports nothing, so a
plugin that is broken, or whose name clashes with another distribution's, harms nothing until it is used.
:func:`find_plugin` resolves one name, and :meth:`PluginInfo.load` imports and checks one plugin.
:func:`create_callback` does both and builds the callback, with its parameters checked before the call.

Example:
    >>> from altametris.sara.core import discovery
    >>> info = discovery.find_plugin("history")
    >>> info.name, info.distribution, info.target
    ('history', 'sara-callbacks', 'altametris.sara.plugins.history:History')
    >>> callback = discovery.create_callback("history")
    >>> type(callback).__name__
    'History'
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .._callback import BaseCallback
from ..exceptions import DuplicatePluginError, PluginLoadError, PluginTypeError, TrainingError, UnknownPluginError
from ..hookimpls import HookimplCallback, hookimpls, is_hookimpl_plugin
from ..messages import close_matches, describe_error, did_you_mean, safe_repr
from . import _scan, _signature

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "GROUP",
    "PluginFactory",
    "PluginInfo",
    "available_plugins",
    "clear_cache",
    "create_callback",
    "find_plugin",
    "load_plugin",
]

GROUP = "sara.callbacks"
"""The entry-point group in which distributions register their callbacks."""

PluginFactory = Callable[..., BaseCallback]
"""What a plugin loads to: a ``BaseCallback`` subclass, or a callable that returns a ``BaseCallback`` instance."""


class PluginInfo(NamedTuple):
    """One plugin as its distribution declares it: known from metadata alone, nothing imported.

    Attributes:
        name: the plugin's name (the entry point's name).
        target: what it loads, ``"module:attribute"``.
        distribution: the name of the distribution that registers it, ``None`` for an import path given in code.
        version: that distribution's version, when known.
    """

    name: str
    target: str
    distribution: str | None = None
    version: str | None = None

    @property
    def requirement(self) -> str | None:
        """``"distribution==version"`` (or the bare distribution name when its version is unknown)."""
        if self.distribution is None:
            return None
        return f"{self.distribution}=={self.version}" if self.version else self.distribution

    def error_fields(self) -> dict[str, str | None]:
        """The ``plugin``, ``distribution`` and ``target`` keywords of a :class:`PluginError` about this plugin."""
        return {"plugin": self.name, "distribution": self.requirement, "target": self.target}

    def describe(self, *, target: bool = True) -> str:
        """The plugin as error messages name it: ``"plugin 'name' (distribution==version, target 'module:attr')"``.

        Args:
            target: also name the target (always named when there is no distribution).
        """
        parts = [self.requirement] if self.requirement else []
        if target or not parts:
            parts.append(f"target {self.target!r}")
        return f"plugin {safe_repr(self.name)} ({', '.join(parts)})"

    def load(self) -> PluginFactory:
        """Import the plugin's target and check that it can build callbacks.

        Returns:
            The ``BaseCallback`` subclass, or the callable that returns one.

        Raises:
            PluginLoadError: importing the target failed (the original exception is ``__cause__``).
            PluginTypeError: the target is neither a ``BaseCallback`` subclass nor a callable.
        """
        return _check_factory(_import_target(self), self)


# -- reading the group ---------------------------------------------------------------------------------------------


@functools.cache
def _registry() -> dict[str, tuple[PluginInfo, ...]]:
    """Every plugin of the group, by name, read once per process (see :func:`clear_cache`)."""
    seen: set[tuple[str, str, str]] = set()
    by_name: dict[str, list[PluginInfo]] = {}
    for entry in _scan.entries(GROUP):
        # The same distribution reachable twice on sys.path (an editable install next to a regular one) is one plugin.
        key = (entry.name, _scan.normalize(entry.distribution or ""), entry.value)
        if key in seen:
            continue
        seen.add(key)
        by_name.setdefault(entry.name, []).append(PluginInfo(*entry))
    return {name: tuple(by_name[name]) for name in sorted(by_name)}


def clear_cache() -> None:
    """Forget what was read from the group: the next lookup reads the installed distributions again.

    Call it after installing or removing a distribution in a running process.
    """
    _registry.cache_clear()


def available_plugins() -> tuple[PluginInfo, ...]:
    """Every plugin of the group, sorted by name, from metadata only: nothing is imported.

    A name that two distributions register appears once for each of them: see :func:`find_plugin`.

    Example:
        >>> names = [info.name for info in available_plugins()]
        >>> "history" in names and names == sorted(names)
        True
    """
    return tuple(info for infos in _registry().values() for info in infos)


def _where_plugins_come_from() -> str:
    return f"the entry-point group {GROUP!r} of the distributions installed for {sys.executable}"


def find_plugin(name: str) -> PluginInfo:
    """The plugin registered under ``name``, from metadata only: nothing is imported.

    Raises:
        UnknownPluginError: no installed distribution registers ``name`` (the message suggests the closest names).
        DuplicatePluginError: two distributions register ``name``; both are named, none is picked.

    Example:
        >>> find_plugin("histroy")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        altametris.sara.core.exceptions.UnknownPluginError: unknown plugin 'histroy'; did you mean 'history'? ...
    """
    registry = _registry()
    infos = registry.get(name) if isinstance(name, str) else None
    if not infos:
        raise _unknown(name, list(registry))
    if len(infos) > 1:
        requirements = [info.requirement or "?" for info in infos]
        listed = " and ".join(f"{info.requirement!r} (target {info.target!r})" for info in infos)
        raise DuplicatePluginError(
            f"plugin {name!r} is registered by {len(infos)} distributions: {listed}; SARA does not pick one: "
            f"uninstall all but one of them (pip uninstall {infos[-1].distribution}), or name the class you want "
            f"as an import path with allow_import_paths=True",
            plugin=name,
            distributions=requirements,
            targets=[info.target for info in infos],
        )
    return infos[0]


def _unknown(name: object, available: list[str]) -> UnknownPluginError:
    suggestions = close_matches(name, available, n=3)
    hint = f"did you mean {suggestions[0]!r}? " if suggestions else ""
    shown = ", ".join(available[:30]) + (f", ... ({len(available) - 30} more)" if len(available) > 30 else "")
    installed = f"installed plugins: {shown}" if available else "no plugin is installed"
    return UnknownPluginError(
        f"unknown plugin {safe_repr(name)}; {hint}{installed} (from {_where_plugins_come_from()}); install the "
        f"distribution that provides it in this environment, or fix the name (`sara-callbacks list` shows them all)",
        plugin=name if isinstance(name, str) else safe_repr(name),
        suggestions=suggestions,
        available=available,
    )


# -- loading one plugin ----------------------------------------------------------------------------------------------


def _import_target(info: PluginInfo) -> object:
    """Import ``info.target`` (``module:attr.attr``, extras in brackets ignored) and return the object."""
    import importlib

    value = info.target.split("[", 1)[0].strip()
    module_name, _, attributes = value.partition(":")
    module_name, attributes = module_name.strip(), attributes.strip()
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise PluginLoadError(
            f"{info.describe()} cannot be imported: {value!r} is not a 'module:attribute' target; the "
            f"distribution declares it wrongly in its entry points: report it to its authors",
            **info.error_fields(),
        )
    with _SigintWatch() as watch:
        try:
            found: object = importlib.import_module(module_name)
            for attribute in filter(None, attributes.split(".")):
                found = getattr(found, attribute)
        except (Exception, SystemExit, KeyboardInterrupt) as error:
            if isinstance(error, KeyboardInterrupt) and watch.interrupted:
                raise  # the user's Ctrl-C while it imported: the command stops, as it should
            raise PluginLoadError(
                f"{info.describe()} failed to import: {describe_error(error)}; {_import_fix(info, module_name, error)}",
                **info.error_fields(),
            ) from error
    return found


class _SigintWatch:
    """Tells a ``KeyboardInterrupt`` from a real SIGINT (the user's Ctrl-C) from one a plugin's code raises itself.

    While it is entered in the main thread, SIGINT goes through a handler that notes it, then does what the previous
    handler does; elsewhere (signals reach the main thread only) any ``KeyboardInterrupt`` counts as a real one.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: object = None

    def __enter__(self) -> _SigintWatch:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            self.interrupted = True
            return self
        self._previous = signal.signal(signal.SIGINT, self._note)
        return self

    def _note(self, signum: int, frame: object) -> None:
        import signal

        self.interrupted = True
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # SIG_DFL, or a handler not set from Python: Python's own behaviour
            raise KeyboardInterrupt

    def __exit__(self, *exc_info: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]  # what signal.signal returned


def _import_fix(info: PluginInfo, module_name: str, error: BaseException) -> str:
    """What to do about ``error``, raised by importing ``module_name`` for ``info``: whose mistake it is, and the fix.

    A module missing from the plugin's own package (its entry point names ``pkg.grad_alrt``, and ``pkg`` has no such
    module) is its authors' mistake in the entry point; a missing top-level package of the target means the
    distribution's files are missing; any other missing module is a dependency that is not installed.
    """
    remove = "or remove it from the config"
    if info.distribution is None:
        return f"check the import path, {remove}"
    reinstall = f"pip install --force-reinstall {info.distribution}"
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if isinstance(error, (SystemExit, KeyboardInterrupt)):
        what = "end the process" if isinstance(error, SystemExit) else "raise KeyboardInterrupt (the user's Ctrl-C)"
        return f"importing it must not {what}: report it to the authors of {info.distribution}, {remove}"
    if not isinstance(missing, str):
        return f"reinstall or upgrade it ({reinstall}), {remove}"
    package = module_name.partition(".")[0]
    own = missing == package or missing.startswith(f"{package}.")
    if not own:
        return (
            f"it needs the module {missing!r}, which is not installed: install the distribution that provides it (a "
            f"dependency {info.distribution} does not declare, or one of its extras), {remove}"
        )
    if missing == package:
        return (
            f"{info.distribution} is installed without its package {package!r}: reinstall it ({reinstall}); if that "
            f"does not help, its entry point names the wrong module: report it to its authors, {remove}"
        )
    parent, _, leaf = missing.rpartition(".")
    hint = did_you_mean(leaf, _submodules(parent))
    whose = "its entry point" if module_name == missing or module_name.startswith(f"{missing}.") else "its code"
    return (
        f"{whose} names the module {missing!r}, which its own package does not have; {hint}"
        f"this is a mistake of {info.distribution} (for its authors: fix the entry point in "
        f'[project.entry-points."{GROUP}"] of pyproject.toml, or the import, and reinstall), {remove}'
    )


def _submodules(package: str) -> list[str]:
    """The names of the modules in ``package`` (already imported by the failed import), or none."""
    import pkgutil

    found = sys.modules.get(package)
    path = getattr(found, "__path__", None)
    return [module.name for module in pkgutil.iter_modules(path)] if path is not None else []


def _check_factory(found: object, info: PluginInfo) -> PluginFactory:
    """Return ``found`` when it can build callbacks: a concrete ``BaseCallback`` subclass or a plain callable.

    A plain pluggy plugin (a module, object or class with ``@hookimpl`` functions) is turned into a factory of
    :class:`~altametris.sara.core.hookimpls.HookimplCallback`: a class is built with the params, then wrapped.
    """
    if is_hookimpl_plugin(found):
        return _hookimpl_factory(found, info)
    expected = "expected a BaseCallback subclass or a callable returning a BaseCallback instance"
    problem = hint = ""
    if isinstance(found, type):
        if not issubclass(found, BaseCallback):
            problem = f"class {found.__module__}.{found.__qualname__}, which does not derive from BaseCallback"
            hint = "derive it from altametris.sara.core.base_callback.BaseCallback"
        elif getattr(found, "__abstractmethods__", None):
            missing = ", ".join(sorted(found.__abstractmethods__))
            problem = f"abstract class {found.__qualname__} (abstract: {missing})"
            hint = "implement the abstract methods"
    elif isinstance(found, BaseCallback):
        problem = f"an instance of {type(found).__qualname__}"
        hint = "register the class, not an instance"
    elif not callable(found):
        problem = f"{type(found).__qualname__} {safe_repr(found)}"
        hint = "point the entry point at the callback class"
    if problem:
        raise PluginTypeError(
            f"{info.describe()} is not a callback: {expected}, got {problem}; {hint}",
            **info.error_fields(),
            found=found,
        )
    factory: PluginFactory = found  # type: ignore[assignment]  # checked above: a callable that builds callbacks
    return factory


def _hookimpl_factory(plugin: object, info: PluginInfo) -> PluginFactory:
    """A factory of callbacks for a pluggy plugin, whose rules are checked now (at load), not at the first call."""
    try:
        hookimpls(plugin)
    except TrainingError as error:
        raise PluginTypeError(
            f"{info.describe()} is not a valid pluggy plugin: {error}", **info.error_fields()
        ) from None
    if not isinstance(plugin, type):

        def build() -> BaseCallback:
            return HookimplCallback(plugin, name=info.name)

        build.__doc__ = inspect.getdoc(plugin)
        return build

    def build_from_class(*args: Any, **params: Any) -> BaseCallback:
        return HookimplCallback(plugin(*args, **params), name=info.name)

    # The class's own parameters, for the config checks and `sara-callbacks show`.
    build_from_class.__signature__ = inspect.signature(plugin)  # type: ignore[attr-defined]
    constructor = _signature.constructor(plugin)
    if constructor is not None:
        build_from_class.__wrapped__ = constructor  # type: ignore[attr-defined]  # where the annotations are
    build_from_class.__doc__ = inspect.getdoc(plugin)
    return build_from_class


def load_plugin(name: str) -> PluginFactory:
    """Import the plugin registered under ``name`` and return its class (or factory).

    Raises:
        UnknownPluginError: no distribution registers ``name``.
        DuplicatePluginError: several distributions register ``name``.
        PluginLoadError: its import failed.
        PluginTypeError: it is not a callback class nor a callable.
    """
    return find_plugin(name).load()


def create_callback(plugin: str | PluginInfo, params: Mapping[str, object] | None = None) -> BaseCallback:
    """Build the callback of a plugin with ``params`` as keyword arguments, checked before the call.

    Args:
        plugin: a plugin name, or a :class:`PluginInfo` (from :func:`find_plugin`, or made for an import path).
        params: the constructor's keyword arguments.

    Raises:
        PluginError: any of :func:`load_plugin`'s errors.
        PluginParameterError: a parameter is unknown, missing or of the wrong type, or the constructor raised.
        PluginTypeError: a factory returned something that is not a ``BaseCallback`` instance.
    """
    info = plugin if isinstance(plugin, PluginInfo) else find_plugin(plugin)
    return _signature.build(info.load(), dict(params or {}), info)


def _import_path_plugin(path: str) -> PluginInfo:
    """A :class:`PluginInfo` for a ``module:Class`` import path that no distribution registers."""
    return PluginInfo(path, path)


def _check_name(name: object) -> str | None:
    """Why ``name`` cannot be a plugin name, or ``None`` when it can."""
    if not isinstance(name, str):
        return f"expected a string, got {type(name).__qualname__}"
    if not name:
        return "the name is empty"
    if len(name) > 100:
        return f"the name is {len(name)} characters long; a plugin name has at most 100"
    if not all(char.isascii() and (char.isalnum() or char in "_-.") for char in name):
        return "a plugin name has letters, digits, '_', '-' and '.' only"
    return None
