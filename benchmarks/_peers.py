"""The peers' dispatch, each built for N callbacks that do nothing, called as its framework calls it at a batch end.

* pluggy: ``pm.hook.on_batch_end(batch=..., metrics=...)`` over N plugins (the hookspecs are SARA's own).
* Keras 3: the real ``keras.callbacks.CallbackList.on_train_batch_end(batch, logs)`` (``KERAS_BACKEND=numpy``, which
  Keras 3.15 runs on NumPy, SciPy and JAX: no TensorFlow, no torch).
* Hugging Face Transformers: the real ``transformers.trainer_callback.CallbackHandler.on_step_end(args, state,
  control)`` (the module imports without torch).
* Lightning: it needs torch, so its loop is **transcribed**, not imported: :func:`lightning_call_callback_hooks` copies
  ``_call_callback_hooks`` from ``src/lightning/pytorch/trainer/call.py`` of Lightning 2.5 (the Lightning-AI/
  pytorch-lightning repository at commit 021e6b11), with what it reaches each call: the trainer's
  ``lightning_module`` property (through its strategy), ``Profiler.profile`` (``profilers/profiler.py``, a
  ``contextmanager``) of the default ``PassThroughProfiler`` (``start``/``stop`` that do nothing), and
  ``Callback.state_key`` (``callbacks/callback.py``, the class's ``__qualname__``).

Keras and Transformers are measured in the full run only (``tox -e bench`` installs them), and on wall-clock time only:
importing them under valgrind would take minutes (Keras imports JAX). The quick pass compares with pluggy alone.
:func:`installed` says which real peers this process can import.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

import pluggy
from altametris.sara.core import hookspecs
from altametris.sara.core.hookspecs import HOOKS

if TYPE_CHECKING:
    from collections.abc import Iterator

KERAS, HF, LIGHTNING = "Keras 3 CallbackList", "HF Transformers CallbackHandler", "Lightning _call_callback_hooks"
PLUGGY = "pluggy pm.hook"
REAL = {KERAS: "keras", HF: "transformers"}
"""The peers imported as they are, by the package each needs."""


@cache
def installed() -> tuple[str, ...]:
    """The real peers whose package is installed here."""
    return tuple(name for name, package in REAL.items() if importlib.util.find_spec(package) is not None)


def _every_hook_plugin(name: str, listed: bool) -> type:
    """A pluggy plugin class implementing every hook of the hookspecs, with its arguments; when ``listed``, its
    instances' ``dir()`` names the hooks only."""
    namespace: dict[str, Any] = {}
    for hook, spec in HOOKS.items():
        exec(f"def {hook}(self, {', '.join(spec.argnames)}): pass", namespace)
        namespace[hook] = hookspecs.hookimpl(namespace[hook])
    namespace.pop("__builtins__", None)
    if listed:
        namespace["__dir__"] = lambda self: list(HOOKS)
    return type(name, (), namespace)


EveryHookPlugin = _every_hook_plugin("EveryHookPlugin", listed=False)
"""A plugin as one writes it: what ``register`` is measured with."""
ListedPlugin = _every_hook_plugin("ListedPlugin", listed=True)
"""The same, whose ``dir()`` lists its hooks only: pluggy's ``register`` looks at every name ``dir()`` gives (about
1.5 ms a plugin, fifty times that under valgrind), so the managers of 1,000 plugins that the dispatch cases call are
built from these; a hook call is the same."""


def pluggy_manager(count: int, plugin: type = ListedPlugin) -> pluggy.PluginManager:
    """A plugin manager of SARA's hookspecs with ``count`` plugins that implement every hook."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for _ in range(count):
        pm.register(plugin())
    return pm


def keras_list(count: int) -> Any:
    """Keras 3's ``CallbackList`` over ``count`` callbacks overriding ``on_train_batch_end``."""
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    import keras

    class KerasCallback(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            pass

    return keras.callbacks.CallbackList([KerasCallback() for _ in range(count)])


def hf_handler(count: int) -> tuple[Any, tuple[Any, Any, Any]]:
    """Transformers' ``CallbackHandler`` over ``count`` callbacks overriding ``on_step_end``, and its arguments."""
    from transformers import trainer_callback
    from transformers.utils import logging as hf_logging

    class HFCallback(trainer_callback.TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            pass

    hf_logging.set_verbosity_error()  # it warns that no DefaultFlowCallback is among these callbacks
    handler = trainer_callback.CallbackHandler([HFCallback() for _ in range(count)], None, None, None, None)
    args = object()  # TrainingArguments: passed through, never read by the handler
    return handler, (args, trainer_callback.TrainerState(), trainer_callback.TrainerControl())


# -- Lightning, transcribed (see the module's docstring for the source) -------------------------------------------

log = logging.getLogger("lightning.pytorch.trainer.call")


class PassThroughProfiler:
    """``Profiler.profile`` with the default profiler's ``start``/``stop``."""

    def start(self, action_name: str) -> None:
        pass

    def stop(self, action_name: str) -> None:
        pass

    @contextmanager
    def profile(self, action_name: str) -> Iterator[str]:
        try:
            self.start(action_name)
            yield action_name
        finally:
            self.stop(action_name)


class LightningCallback:
    @property
    def state_key(self) -> str:
        return self.__class__.__qualname__

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        pass


class EarlyStopping(LightningCallback):
    pass


class Checkpoint(LightningCallback):
    pass


class LightningModule:
    _current_fx_name: str | None = None


class Strategy:
    def __init__(self) -> None:
        self._lightning_module = LightningModule()

    @property
    def lightning_module(self) -> LightningModule:
        return self._lightning_module


class Trainer:
    def __init__(self, count: int) -> None:
        self.strategy = Strategy()
        self.callbacks = [LightningCallback() for _ in range(count)]
        self.profiler = PassThroughProfiler()

    @property
    def lightning_module(self) -> LightningModule:
        return self.strategy.lightning_module


def lightning_call_callback_hooks(
    trainer: Trainer, hook_name: str, *args: Any, monitoring_callbacks: bool | None = None, **kwargs: Any
) -> None:
    log.debug(f"{trainer.__class__.__name__}: calling callback hook: {hook_name}")

    pl_module = trainer.lightning_module
    if pl_module:
        prev_fx_name = pl_module._current_fx_name
        pl_module._current_fx_name = hook_name

    callbacks = trainer.callbacks
    if monitoring_callbacks is True:
        # the list of "monitoring callbacks" is hard-coded to these two. we could add an API to define this
        callbacks = [cb for cb in callbacks if isinstance(cb, (EarlyStopping, Checkpoint))]
    elif monitoring_callbacks is False:
        callbacks = [cb for cb in callbacks if not isinstance(cb, (EarlyStopping, Checkpoint))]

    for callback in callbacks:
        fn = getattr(callback, hook_name)
        if callable(fn):
            with trainer.profiler.profile(f"[Callback]{callback.state_key}.{hook_name}"):
                fn(trainer, trainer.lightning_module, *args, **kwargs)

    if pl_module:
        # restore current_fx when nested context
        pl_module._current_fx_name = prev_fx_name


def namespace(count: int, peers: tuple[str, ...]) -> dict[str, Any]:
    """The names the peers' statements (:func:`statements`) use, for ``count`` callbacks."""
    found: dict[str, Any] = {"hook": pluggy_manager(count).hook, "logs": {"loss": 0.5}}
    if KERAS in peers:
        found["keras_list"] = keras_list(count)
    if HF in peers:
        found["hf_handler"], found["hf_args"] = hf_handler(count)
    if LIGHTNING in peers:
        found["lightning"], found["trainer"] = lightning_call_callback_hooks, Trainer(count)
    return found


def statements(peers: tuple[str, ...]) -> dict[str, str]:
    """One batch end, as each of ``peers`` (and pluggy) calls it."""
    every = {
        PLUGGY: "hook.on_batch_end(batch=1, metrics=logs)",
        KERAS: "keras_list.on_train_batch_end(1, logs)",
        HF: "hf_handler.on_step_end(*hf_args)",
        LIGHTNING: "lightning(trainer, 'on_train_batch_end', logs, None, 1)",
    }
    return {name: statement for name, statement in every.items() if name == PLUGGY or name in peers}
