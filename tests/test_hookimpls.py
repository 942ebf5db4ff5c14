"""Plain pluggy plugins: functions marked ``@hookimpl`` run as callbacks, registered in code or enabled by name."""

from __future__ import annotations

import copy
import logging
import pickle
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core import BaseCallback, CallbackManager, HookimplCallback, hookimpl
from altametris.sara.core.config import load_callbacks
from altametris.sara.core.exceptions import PluginTypeError, TrainingError

if TYPE_CHECKING:
    from conftest import FakeSite


class Recorder:
    """A pluggy plugin object: names some of the hookspec's arguments, in any order, and one hook by specname."""

    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    @hookimpl
    def on_epoch_end(self, metrics: dict[str, float], epoch: int) -> None:
        self.calls.append(("plugin", "on_epoch_end", epoch, metrics["loss"]))

    @hookimpl(specname="on_batch_end")
    def after_batch(self, batch: int) -> None:
        self.calls.append(("plugin", "on_batch_end", batch))

    def helper(self) -> None:
        """Not marked: never a hook."""


class Listener(BaseCallback):
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.calls.append(("callback", "on_epoch_end", epoch))


# -- registered in code ----------------------------------------------------------------------------------------------


def test_a_pluggy_plugin_runs_in_registration_order_with_the_arguments_it_names() -> None:
    calls: list[Any] = []
    manager = CallbackManager([Listener(calls)])
    manager.register(Recorder(calls))
    manager.add_callback(Listener(calls))
    manager.on_batch_end(3, {"loss": 1.0}, model="m")
    manager.on_epoch_end(0, {"loss": 0.5}, model="m")
    assert calls == [
        ("plugin", "on_batch_end", 3),
        ("callback", "on_epoch_end", 0),
        ("plugin", "on_epoch_end", 0, 0.5),
        ("callback", "on_epoch_end", 0),
    ]
    assert repr(manager) == "CallbackManager(callbacks=[Listener, Recorder, Listener])"


def test_a_module_is_a_plugin(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "unused",
        "1.0",
        {},
        {
            "sara_test_module_hooks": """
                from altametris.sara.core import hookimpl
                seen = []

                @hookimpl
                def on_train_start():
                    seen.append("start")

                @hookimpl
                def on_validation_end(metrics):
                    seen.append(metrics)
            """
        },
    )
    import sara_test_module_hooks  # type: ignore[import-not-found]

    manager = CallbackManager()
    callback = manager.register(sara_test_module_hooks)
    manager.on_train_start(model="m")
    manager.on_validation_end({"val_loss": 0.1})
    assert sara_test_module_hooks.seen == ["start", {"val_loss": 0.1}]
    assert type(callback).__name__ == "sara_test_module_hooks"


def test_a_failing_implementation_is_a_training_error_naming_the_plugin_and_the_hook() -> None:
    class Broken:
        @hookimpl
        def on_epoch_end(self, epoch: int) -> None:
            raise ValueError("no loss")

    manager = CallbackManager()
    manager.register(Broken(), name="broken_plugin")
    with pytest.raises(TrainingError) as caught:
        manager.on_epoch_end(2, {})
    assert str(caught.value) == "callback 'broken_plugin' failed in on_epoch_end (epoch 2): ValueError: no loss"
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.hook == "on_epoch_end"


def test_error_policies_apply_to_pluggy_plugins(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky:
        @hookimpl
        def on_batch_end(self) -> None:
            raise TimeoutError("server")

    manager = CallbackManager()
    callback = manager.register(Flaky(), on_error="disable")
    with caplog.at_level(logging.WARNING):
        manager.on_batch_end(0, {})
        manager.on_batch_end(1, {})
    assert manager.disabled == (callback,)
    assert sum("TimeoutError: server" in record.getMessage() for record in caplog.records) == 1


def test_context_reaches_an_implementation_that_takes_kwargs() -> None:
    seen: list[Any] = []

    class Plugin:
        @hookimpl
        def on_train_start(self, **kwargs: Any) -> None:
            seen.append(kwargs)

    manager = CallbackManager()
    manager.register(Plugin())
    manager.on_train_start(model="m", epochs=3)
    assert seen == [{"model": "m", "epochs": 3}]


def test_a_wrapped_plugin_survives_pickle_and_copy() -> None:
    callback = HookimplCallback(Recorder([]), name="rec")
    callback.on_error = "warn"
    for clone in (pickle.loads(pickle.dumps(callback)), copy.deepcopy(callback)):
        assert isinstance(clone, HookimplCallback)
        assert (clone.name, clone.on_error, type(clone).__name__) == ("rec", "warn", "rec")
        CallbackManager([clone]).on_batch_end(4, {})
        assert clone.plugin.calls == [("plugin", "on_batch_end", 4)]


# -- pluggy's rules, checked when the plugin is wrapped ----------------------------------------------------------------


def test_an_argument_that_the_hookspec_lacks_is_refused_as_pluggy_refuses_it() -> None:
    class Wrong:
        @hookimpl
        def on_epoch_end(self, epoch: int, lr: float) -> None: ...

    with pytest.raises(
        TrainingError, match=r"argument\(s\) \['lr'\] are declared in the hookimpl but can not be found"
    ):
        HookimplCallback(Wrong())


def test_an_unknown_hook_is_refused_with_a_suggestion_unless_optional() -> None:
    class Misspelt:
        @hookimpl
        def on_epoch_ned(self, epoch: int) -> None: ...

    with pytest.raises(
        TrainingError, match="'on_epoch_ned', which is no hook of SARA callbacks; did you mean 'on_epoch_end'"
    ):
        HookimplCallback(Misspelt())

    class Optional:
        @hookimpl(optionalhook=True)
        def on_future_hook(self) -> None: ...

        @hookimpl
        def on_train_end(self) -> None: ...

    assert not hasattr(HookimplCallback(Optional()), "on_future_hook")


@pytest.mark.parametrize("option", ["hookwrapper", "wrapper", "tryfirst", "trylast"])
def test_ordering_and_wrapper_options_are_refused_with_the_reason(option: str) -> None:
    class Ordered:
        @hookimpl(**{option: True})
        def on_train_end(self) -> None: ...

    with pytest.raises(TrainingError, match=f"{option}=True .*registration order"):
        HookimplCallback(Ordered())


def test_a_plugin_without_implementations_is_refused() -> None:
    with pytest.raises(TrainingError, match="has no @hookimpl function"):
        HookimplCallback(object())


def test_add_callback_refuses_a_raw_plugin_and_points_at_register() -> None:
    with pytest.raises(
        TrainingError, match=r"a pluggy plugin with @hookimpl functions: register it with manager\.register"
    ):
        CallbackManager().add_callback(Recorder([]))  # type: ignore[arg-type]


# -- enabled by name ---------------------------------------------------------------------------------------------------

PLUGGY_MODULE = """
    from altametris.sara.core import hookimpl

    EVENTS = []

    @hookimpl
    def on_epoch_end(epoch, metrics):
        EVENTS.append((epoch, metrics.get("loss")))


    class Threshold:
        \"\"\"Records epochs whose loss is above a threshold.\"\"\"

        def __init__(self, threshold: float = 1.0) -> None:
            self.threshold = threshold
            self.high = []

        @hookimpl
        def on_epoch_end(self, epoch, metrics):
            if metrics["loss"] > self.threshold:
                self.high.append(epoch)


    class Bad:
        @hookimpl
        def on_epoch_end(self, epoch, learning_rate):
            pass
"""


def _site(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "sara-pluggy-plugins",
        "2.0",
        {
            "module_hooks": "sara_test_pluggy",
            "threshold": "sara_test_pluggy:Threshold",
            "bad_hooks": "sara_test_pluggy:Bad",
        },
        {"sara_test_pluggy": PLUGGY_MODULE},
    )


def test_a_module_and_a_class_are_enabled_by_name_with_params(fake_site: FakeSite) -> None:
    _site(fake_site)
    callbacks = load_callbacks(
        {"callbacks": ["module_hooks", {"name": "threshold", "params": {"threshold": 0.5}, "on_error": "warn"}]}
    )
    manager = CallbackManager(callbacks)
    manager.on_epoch_end(0, {"loss": 0.9})
    manager.on_epoch_end(1, {"loss": 0.1})
    import sara_test_pluggy  # type: ignore[import-not-found]

    assert sara_test_pluggy.EVENTS == [(0, 0.9), (1, 0.1)]
    assert callbacks[1].plugin.high == [0]  # type: ignore[attr-defined]
    assert repr(manager) == "CallbackManager(callbacks=[module_hooks, threshold(on_error='warn')])"


def test_params_of_a_pluggy_class_are_checked_like_any_plugin(fake_site: FakeSite) -> None:
    _site(fake_site)
    with pytest.raises(Exception, match=r"callbacks\[0\]\.params\.threshold: .*expects float, got str '0\.5'"):
        load_callbacks({"callbacks": [{"name": "threshold", "params": {"threshold": "0.5"}}]})


def test_a_pluggy_plugin_that_breaks_the_rules_is_reported_when_loaded(fake_site: FakeSite) -> None:
    _site(fake_site)
    with pytest.raises(PluginTypeError) as caught:
        load_callbacks({"callbacks": ["bad_hooks"]})
    message = str(caught.value)
    assert "plugin 'bad_hooks' (sara-pluggy-plugins==2.0" in message
    assert "['learning_rate'] are declared in the hookimpl but can not be found in the hookspec" in message


@pytest.mark.slow
def test_show_and_check_describe_a_pluggy_plugin(fake_site: FakeSite) -> None:
    _site(fake_site)
    config = fake_site.root / "train.toml"
    config.write_text('callbacks = ["module_hooks", { name = "threshold", params = { threshold = 2.0 } }]\n')
    env = fake_site.env()
    shown = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "show", "threshold"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "threshold: float = 1.0" in shown.stdout
    assert "hooks: on_epoch_end" in shown.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "check", str(config)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK, 2 callbacks: module_hooks, threshold" in checked.stdout
