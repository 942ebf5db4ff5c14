"""The hookspecs are the one description of the lifecycle; everything else is held to them here."""

from __future__ import annotations

import inspect

import pluggy
import pytest
from altametris.sara.core import hookspecs
from altametris.sara.core.base_callback import BaseCallback, CallbackManager

LIFECYCLE = (
    "on_train_start",
    "on_train_end",
    "on_epoch_start",
    "on_epoch_end",
    "on_batch_start",
    "on_batch_end",
    "on_validation_start",
    "on_validation_end",
)


FINER = (
    "on_checkpoint_load",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_after_optimizer_step",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_checkpoint_save",
)
"""The finer hooks of issue 22, beyond the seed's eight."""


def test_the_eight_lifecycle_hooks_the_finer_ones_and_on_exception_are_specified_in_lifecycle_order() -> None:
    assert tuple(hookspecs.HOOKS) == (
        "on_checkpoint_load",
        "on_train_start",
        "on_train_end",
        "on_epoch_start",
        "on_epoch_end",
        "on_batch_start",
        "on_after_backward",
        "on_before_optimizer_step",
        "on_after_optimizer_step",
        "on_batch_end",
        "on_validation_start",
        "on_validation_batch_start",
        "on_validation_batch_end",
        "on_validation_end",
        "on_checkpoint_save",
        "on_exception",
    )
    assert set(hookspecs.HOOKS) == {*LIFECYCLE, *FINER, "on_exception"}


def test_the_finer_hooks_scopes_put_the_training_batch_ones_under_triggers_and_timings_and_the_others_not() -> None:
    scopes = {name: hookspecs.HOOKS[name].scope for name in FINER}
    assert scopes == {
        "on_checkpoint_load": "run",
        "on_after_backward": "batch",
        "on_before_optimizer_step": "batch",
        "on_after_optimizer_step": "batch",
        "on_validation_batch_start": "epoch",  # gated by every_n_epochs, not counted as training batches
        "on_validation_batch_end": "epoch",
        "on_checkpoint_save": "run",  # never gated: a tracker flushes at every checkpoint
    }
    # a resumed run starts at on_checkpoint_load: a callback disabled there stays disabled in on_train_start
    assert [name for name in FINER if hookspecs.HOOKS[name].boundary] == ["on_checkpoint_load"]
    assert hookspecs.HOOKS["on_checkpoint_load"].starts("run")


def test_hook_arguments_are_those_of_the_contract() -> None:
    assert {name: spec.argnames for name, spec in hookspecs.HOOKS.items()} == {
        "on_checkpoint_load": ("path",),
        "on_after_backward": ("batch",),
        "on_before_optimizer_step": ("batch",),
        "on_after_optimizer_step": ("batch",),
        "on_validation_batch_start": ("batch",),
        "on_validation_batch_end": ("batch", "metrics"),
        "on_checkpoint_save": ("path",),
        "on_train_start": (),
        "on_train_end": (),
        "on_epoch_start": ("epoch",),
        "on_epoch_end": ("epoch", "metrics"),
        "on_batch_start": ("batch",),
        "on_batch_end": ("batch", "metrics"),
        "on_validation_start": (),
        "on_validation_end": ("metrics",),
        "on_exception": ("error",),
    }


def test_only_on_exception_is_a_cleanup_hook() -> None:
    assert [name for name, spec in hookspecs.HOOKS.items() if spec.cleanup] == ["on_exception"]


def test_markers_belong_to_the_sara_project() -> None:
    assert hookspecs.PROJECT_NAME == "sara"
    assert hookspecs.hookspec.project_name == "sara"
    assert hookspecs.hookimpl.project_name == "sara"


def test_pluggy_accepts_the_specs_and_validates_implementations_against_them() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)

    class Good:
        @hookspecs.hookimpl
        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            pass

    class Bad:
        @hookspecs.hookimpl
        def on_epoch_end(self, epoch: int, lr: float) -> None:
            pass

    pm.register(Good())
    with pytest.raises(pluggy.PluginValidationError, match="lr"):
        pm.register(Bad())


def _arguments(function: object) -> list[tuple[str, object]]:
    parameters = list(inspect.signature(function).parameters.values())  # type: ignore[arg-type]
    return [(p.name, p.kind) for p in parameters if p.name != "self"]


@pytest.mark.parametrize("owner", [BaseCallback, CallbackManager])
@pytest.mark.parametrize("name", list(hookspecs.HOOKS))
def test_base_callback_and_manager_hooks_take_the_spec_arguments_plus_kwargs(owner: type, name: str) -> None:
    spec = hookspecs.HOOKS[name]
    expected = [(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for arg in spec.argnames]
    expected.append(("kwargs", inspect.Parameter.VAR_KEYWORD))
    assert _arguments(getattr(owner, name)) == expected


@pytest.mark.parametrize("owner", [BaseCallback, CallbackManager])
def test_no_hook_exists_beyond_the_specs(owner: type) -> None:
    hooks_defined = {name for name, value in vars(owner).items() if name.startswith("on_") and callable(value)}
    assert hooks_defined == set(hookspecs.HOOKS)
    # The one other ``on_`` name is the error policy, a string: it can never be mistaken for a hook by dispatch.
    assert {name for name in vars(owner) if name.startswith("on_")} - hooks_defined <= {"on_error"}


def test_a_compiled_dispatcher_keeps_the_spec_signature() -> None:
    class Callback(BaseCallback):
        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: object) -> None:
            pass

    manager = CallbackManager([Callback()])
    manager.on_train_start()  # compiles the dispatchers
    for name, spec in hookspecs.HOOKS.items():
        assert _arguments(getattr(manager, name))[:-1] == [
            (arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for arg in spec.argnames
        ]
