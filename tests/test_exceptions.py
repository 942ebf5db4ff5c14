"""One error base for the library; each error keeps the objects involved and never poses as a lookup error."""

from __future__ import annotations

import pytest
from altametris.sara.core import exceptions
from altametris.sara.core.exceptions import (
    ConfigError,
    DuplicatePluginError,
    HookNameWarning,
    PluginError,
    PluginParameterError,
    PluginTypeError,
    SaraError,
    SaraWarning,
    StateError,
    TrainingError,
    UnknownPluginError,
)

ERRORS = [
    getattr(exceptions, name)
    for name in exceptions.__all__
    if isinstance(getattr(exceptions, name), type)
    and issubclass(getattr(exceptions, name), Exception)
    and not issubclass(getattr(exceptions, name), Warning)
]


def test_every_public_name_is_an_error_or_a_warning_of_the_library() -> None:
    for name in exceptions.__all__:
        value = getattr(exceptions, name)
        assert issubclass(value, (SaraError, SaraWarning)), name


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: error.__name__)
def test_every_error_derives_from_sara_error(error: type[Exception]) -> None:
    assert issubclass(error, SaraError)


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: error.__name__)
def test_no_error_poses_as_a_lookup_or_attribute_error(error: type[Exception]) -> None:
    assert not issubclass(error, (KeyError, AttributeError, IndexError))


def test_training_error_keeps_callback_hook_epoch_and_batch() -> None:
    callback = object()
    error = TrainingError("failed", callback=callback, hook="on_batch_end", epoch=2, batch=5)
    assert (error.callback, error.hook, error.epoch, error.batch) == (callback, "on_batch_end", 2, 5)
    assert str(error) == "failed"


def test_training_error_needs_only_a_message_as_in_the_seed() -> None:
    error = TrainingError("failed")
    assert (error.callback, error.hook, error.epoch, error.batch) == (None, None, None, None)


def test_plugin_errors_keep_plugin_distribution_and_target() -> None:
    error = PluginError("broken", plugin="foo", distribution="sara-foo==1.0", target="sara_foo:Foo")
    assert (error.plugin, error.distribution, error.target) == ("foo", "sara-foo==1.0", "sara_foo:Foo")


def test_specific_plugin_errors_keep_what_they_are_about() -> None:
    unknown = UnknownPluginError("unknown", plugin="csv_loger", suggestions=["csv_logger"], available=["a", "b"])
    assert (unknown.plugin, unknown.suggestions, unknown.available) == ("csv_loger", ("csv_logger",), ("a", "b"))
    duplicate = DuplicatePluginError("twice", plugin="foo", distributions=["a==1", "b==2"])
    assert duplicate.distributions == ("a==1", "b==2")
    parameter = PluginParameterError("bad", plugin="timer", parameter="budget_seconds")
    assert parameter.parameter == "budget_seconds"
    found = object()
    assert PluginTypeError("not a callback", plugin="x", found=found).found is found


def test_config_error_keeps_path_key_and_line() -> None:
    error = ConfigError("bad", path="train.toml", key="callbacks[2].params", line=7)
    assert (error.path, error.key, error.line) == ("train.toml", "callbacks[2].params", 7)


def test_state_error_keeps_key_and_callbacks() -> None:
    first, second = object(), object()
    error = StateError("twice", key="History", callbacks=[first, second])
    assert error.key == "History"
    assert error.callbacks == (first, second)


def test_hook_name_warning_is_a_user_warning() -> None:
    assert issubclass(HookNameWarning, UserWarning)
    assert issubclass(HookNameWarning, SaraWarning)
