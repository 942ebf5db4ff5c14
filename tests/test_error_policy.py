"""Per-callback error policies, ``on_error = "raise" | "warn" | "disable"``, set in code (config: test_config)."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from altametris.sara.core.base_callback import BaseCallback, CallbackManager, logger
from altametris.sara.core.control import StopTraining
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.hookspecs import HOOKS
from altametris.sara.core.loop import fit

LIFECYCLE = [name for name in HOOKS if not HOOKS[name].cleanup]


class Recorder(BaseCallback):
    """Records every hook it receives as ``(hook, epoch/batch or None)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.errors: list[BaseException] = []

    def on_train_start(self, **kwargs: Any) -> None:
        self.events.append(("on_train_start", None))

    def on_epoch_start(self, epoch: int, **kwargs: Any) -> None:
        self.events.append(("on_epoch_start", epoch))

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.events.append(("on_batch_end", batch))

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.events.append(("on_epoch_end", epoch))

    def on_train_end(self, **kwargs: Any) -> None:
        self.events.append(("on_train_end", None))

    def on_exception(self, error: BaseException, **kwargs: Any) -> None:
        self.errors.append(error)
        self.events.append(("on_exception", kwargs.get("model")))


class Flaky(Recorder):
    """Fails in ``on_batch_end`` (after recording it) with the error it is given."""

    def __init__(self, error: BaseException | None = None) -> None:
        super().__init__()
        self.error = error if error is not None else ConnectionError("metrics server down")

    def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        super().on_batch_end(batch, metrics)
        raise self.error


class Warns(Flaky):
    on_error = "warn"


def _batches(manager: CallbackManager, count: int, **context: Any) -> None:
    for batch in range(count):
        manager.on_batch_end(batch, {"loss": 1.0}, **context)


# -- setting the policy --------------------------------------------------------------------------------------------


def test_the_default_policy_is_raise_and_repr_shows_only_other_policies() -> None:
    assert BaseCallback.on_error == "raise"
    plain, warns = Recorder(), Warns()
    manager = CallbackManager([plain, warns])
    assert repr(manager) == "CallbackManager(callbacks=[Recorder, Warns(on_error='warn')])"
    manager.add_callback(Flaky(), on_error="disable")
    assert repr(manager).endswith("Flaky(on_error='disable')])")
    with pytest.raises(TrainingError, match=r"failed in on_batch_end \(batch 0\): ConnectionError"):
        CallbackManager([Flaky()]).on_batch_end(0, {})


def test_a_class_default_can_be_overridden_per_instance() -> None:
    strict = Warns()
    strict.on_error = "raise"
    manager = CallbackManager([Warns(), strict])
    with pytest.raises(TrainingError) as caught:
        manager.on_batch_end(0, {})
    assert caught.value.callback is strict


def test_add_callback_sets_the_policy_on_the_callback() -> None:
    callback = Flaky()
    CallbackManager().add_callback(callback, on_error="warn")
    assert callback.on_error == "warn"


@pytest.mark.parametrize("value", ["ignore", "WARN", "", None, 1, True])
def test_an_invalid_policy_is_refused_at_registration_naming_the_value(value: object) -> None:
    callback = Flaky()
    callback.on_error = value  # type: ignore[assignment]
    with pytest.raises(TrainingError, match=r"callbacks\[0\]: Flaky.on_error: expected one of 'raise', 'warn', 'dis"):
        CallbackManager([callback])
    if value is not None:  # add_callback(on_error=None) keeps the callback's own policy
        with pytest.raises(TrainingError, match=r"add_callback\(\): on_error: expected one of .* got "):
            CallbackManager().add_callback(Flaky(), on_error=value)  # type: ignore[arg-type]


def test_an_on_error_method_is_refused_with_a_hint_towards_on_exception() -> None:
    class Confused(BaseCallback):
        def on_error(self, error: BaseException) -> None:  # type: ignore[override]
            pass

    with pytest.raises(TrainingError, match=r"on_error is the error policy, not a hook: .* override on_exception"):
        CallbackManager([Confused()])


def test_an_invalid_policy_put_into_the_list_directly_is_refused_at_the_next_hook_call() -> None:
    manager = CallbackManager([Recorder()])
    bad = Recorder()
    bad.on_error = "sometimes"  # type: ignore[assignment]
    manager.callbacks.append(bad)
    with pytest.raises(TrainingError, match=r"callbacks\[1\]: Recorder.on_error: .* got 'sometimes'"):
        manager.on_epoch_start(0)


# -- warn ----------------------------------------------------------------------------------------------------------


def test_warn_logs_the_wrapped_error_with_its_context_and_goes_on_with_the_next_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    after = Recorder()
    manager = CallbackManager([Warns(), after])
    manager.on_epoch_start(2)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        _batches(manager, 3)
    assert after.events == [("on_epoch_start", 2), ("on_batch_end", 0), ("on_batch_end", 1), ("on_batch_end", 2)]
    (record,) = [record for record in caplog.records if record.name == logger.name]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "callback 'Warns' failed in on_batch_end (epoch 2, batch 0): ConnectionError: metrics server down "
        "(on_error='warn': the training goes on)"
    )
    # The traceback (with the original error) once per callback and hook: a failure per batch must not flood the log.
    assert record.exc_info is not None
    failure = record.exc_info[1]
    assert isinstance(failure, TrainingError)
    assert isinstance(failure.__cause__, ConnectionError)
    assert (failure.hook, failure.epoch, failure.batch) == ("on_batch_end", 2, 0)


def test_warn_reports_a_repeated_failure_at_most_once_an_epoch_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    manager = CallbackManager([Warns()])
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for epoch in range(3):
            manager.on_epoch_start(epoch)
            _batches(manager, 1000)
    records = [record for record in caplog.records if record.name == logger.name]
    assert len(records) == 3  # 3000 failures: one report an epoch
    assert records[0].exc_info is not None
    assert [record.exc_info for record in records[1:]] == [None, None]
    assert "(epoch 1, batch 0)" in records[1].getMessage()
    assert records[1].getMessage().endswith("it failed 1000 times in this hook since the last report)")
    assert records[2].getMessage().endswith("it failed 1000 times in this hook since the last report)")


def test_warn_keeps_calling_the_callback() -> None:
    warns = Warns()
    _batches(CallbackManager([warns]), 3)
    assert warns.events == [("on_batch_end", 0), ("on_batch_end", 1), ("on_batch_end", 2)]


# -- disable -------------------------------------------------------------------------------------------------------


def test_disable_stops_calling_the_callback_for_the_rest_of_the_run_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky, after = Flaky(), Recorder()
    manager = CallbackManager([flaky, after])
    manager.add_callback(Recorder())
    flaky.on_error = "disable"
    manager.on_train_start(model="m")  # a policy changed after registration applies from the next run
    with caplog.at_level(logging.WARNING, logger=logger.name):
        _batches(manager, 3, model="m")
        manager.on_epoch_end(0, {})
        manager.on_train_end()
    assert flaky.events == [("on_train_start", None), ("on_batch_end", 0), ("on_exception", "m")]
    assert after.events[-2:] == [("on_epoch_end", 0), ("on_train_end", None)]
    assert [event for event, _ in after.events].count("on_batch_end") == 3
    messages = [record.getMessage() for record in caplog.records if record.name == logger.name]
    assert messages == [
        "callback 'Flaky' failed in on_batch_end (batch 0): ConnectionError: metrics server down "
        "(on_error='disable': 'Flaky' is not called again in this run)"
    ]
    # It was given on_exception with its own failure, so that it could close its files.
    (failure,) = flaky.errors
    assert isinstance(failure, TrainingError)
    assert failure.callback is flaky
    assert manager.disabled == (flaky,)
    assert flaky in manager  # still registered


def test_a_disabled_callback_is_called_again_in_the_next_run() -> None:
    flaky = Flaky()
    manager = CallbackManager([flaky])
    manager.add_callback(Recorder())
    flaky.on_error = "disable"
    _batches(manager, 2)
    assert manager.disabled == (flaky,)
    manager.on_train_start()
    assert manager.disabled == ()
    _batches(manager, 1)
    assert [event for event, _ in flaky.events] == [
        "on_batch_end",
        "on_exception",
        "on_train_start",
        "on_batch_end",
        "on_exception",
    ]


def test_a_disabled_callback_does_not_get_on_exception_twice_when_the_training_then_fails() -> None:
    flaky, failing = Flaky(), Flaky(ValueError("real failure"))
    flaky.on_error = "disable"
    manager = CallbackManager([flaky, failing])
    with pytest.raises(TrainingError) as caught:
        manager.on_batch_end(0, {})
    manager.on_exception(caught.value)
    assert len(flaky.errors) == 1
    assert failing.errors == [caught.value]


def test_a_failing_on_exception_of_a_disabled_callback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class BadCleanup(Flaky):
        on_error = "disable"

        def on_exception(self, error: BaseException, **kwargs: Any) -> None:
            raise OSError("cannot close")

    manager = CallbackManager([BadCleanup(), Recorder()])
    with caplog.at_level(logging.WARNING, logger=logger.name):
        _batches(manager, 2)
    assert "callback 'BadCleanup' failed in on_exception: OSError: cannot close" in caplog.text


def test_the_same_instance_registered_twice_is_disabled_once(caplog: pytest.LogCaptureFixture) -> None:
    flaky = Flaky()
    flaky.on_error = "disable"
    manager = CallbackManager([flaky, flaky])
    with caplog.at_level(logging.WARNING, logger=logger.name):
        _batches(manager, 2)
    assert [event for event, _ in flaky.events] == ["on_batch_end", "on_exception", "on_batch_end"]
    assert caplog.text.count("not called again") == 1


# -- what no policy catches ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["raise", "warn", "disable"])
@pytest.mark.parametrize(
    "error", [StopTraining("enough"), KeyboardInterrupt(), SystemExit(2), GeneratorExit()], ids=repr
)
def test_base_exceptions_pass_through_untouched_under_every_policy(policy: str, error: BaseException) -> None:
    flaky, after = Flaky(error), Recorder()
    flaky.on_error = policy  # type: ignore[assignment]
    manager = CallbackManager([flaky, after])
    with pytest.raises(type(error)) as caught:
        manager.on_batch_end(0, {})
    assert caught.value is error
    assert after.events == []
    assert manager.disabled == ()


@pytest.mark.parametrize("policy", ["raise", "warn", "disable"])
def test_on_exception_failures_are_logged_and_never_raised_under_every_policy(
    policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    class BadCleanup(Recorder):
        def on_exception(self, error: BaseException, **kwargs: Any) -> None:
            raise OSError("cannot close")

    bad, after = BadCleanup(), Recorder()
    bad.on_error = policy  # type: ignore[assignment]
    original = RuntimeError("out of memory")
    with caplog.at_level(logging.ERROR, logger=logger.name):
        CallbackManager([bad, after]).on_exception(original)
    assert after.errors == [original]
    assert "callback 'BadCleanup' failed in on_exception: OSError: cannot close" in caplog.text


# -- the other ways in -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", LIFECYCLE)
@pytest.mark.parametrize("policy", ["warn", "disable"])
def test_every_hook_honours_the_policy(hook: str, policy: str, caplog: pytest.LogCaptureFixture) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise ValueError(f"{hook} broke")

    failing, after = Recorder(), Recorder()
    setattr(failing, hook, fail)
    failing.on_error = policy  # type: ignore[assignment]
    manager = CallbackManager([failing, after])
    arguments = {"epoch": 1, "batch": 2, "metrics": {}, "path": "ck.pt"}
    with caplog.at_level(logging.WARNING, logger=logger.name):
        getattr(manager, hook)(*[arguments[name] for name in HOOKS[hook].argnames])
    assert f"failed in {hook}" in caplog.text
    assert f"{hook} broke" in caplog.text
    assert manager.disabled == ((failing,) if policy == "disable" else ())


def test_execute_callback_hook_honours_the_policy_on_its_by_name_path(caplog: pytest.LogCaptureFixture) -> None:
    class NeedsMetrics(BaseCallback):
        on_error = "warn"

        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            pass

    class EpochOnly(BaseCallback):
        def __init__(self) -> None:
            self.epochs: list[int] = []

        def on_epoch_end(self, epoch: int) -> None:  # type: ignore[override]
            self.epochs.append(epoch)

    after = EpochOnly()
    manager = CallbackManager([NeedsMetrics(), after])
    with caplog.at_level(logging.WARNING, logger=logger.name):
        manager._execute_callback_hook("on_epoch_end", epoch=3)
    assert after.epochs == [3]
    assert "it requires 'metrics', which the trainer did not pass" in caplog.text


def test_the_reference_loop_finishes_a_training_whose_callback_warns(caplog: pytest.LogCaptureFixture) -> None:
    warns, after = Warns(), Recorder()
    with caplog.at_level(logging.WARNING, logger=logger.name):
        result = fit(CallbackManager([warns, after]), epochs=2, batches_per_epoch=3, train_step=lambda batch: {})
    assert result.epochs_run == 2
    assert after.events[-1] == ("on_train_end", None)
    assert warns.errors == []
    assert caplog.text.count("(on_error='warn'") == 2  # six failures in two epochs: reported once an epoch


def test_a_pickled_manager_keeps_policies_and_starts_a_new_run() -> None:
    flaky = Flaky()
    flaky.on_error = "disable"
    manager = CallbackManager([flaky, Warns()])
    _batches(manager, 1)
    copy = pickle.loads(pickle.dumps(manager))
    assert repr(copy) == "CallbackManager(callbacks=[Flaky(on_error='disable'), Warns(on_error='warn')])"
    assert copy.disabled == ()


def test_a_policy_that_cannot_be_read_is_refused_and_repr_still_works() -> None:
    class Unreadable(BaseCallback):
        @property
        def on_error(self) -> str:  # type: ignore[override]
            raise RuntimeError("no policy today")

    manager = CallbackManager()
    manager.callbacks.append(Unreadable())
    assert repr(manager) == "CallbackManager(callbacks=[Unreadable(on_error='<unreadable>')])"
    with pytest.raises(TrainingError, match=r"Unreadable.on_error: expected one of .* got RuntimeError"):
        manager.on_epoch_start(0)
