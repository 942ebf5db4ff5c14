"""Registration refuses hooks the manager could not call as the hookspecs say: at once, naming the class, the hook
and the fix, wherever a callback enters (the constructor, add_callback, a direct list change, a config)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

import pytest
from altametris.sara.core import BaseCallback, CallbackManager, hookimpl
from altametris.sara.core.config import check_config
from altametris.sara.core.exceptions import TrainingError
from altametris.sara.core.testing import conformance_problems

if TYPE_CHECKING:
    from conftest import FakeSite


class Async(BaseCallback):
    async def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


class Generator(BaseCallback):
    def on_batch_end(self, batch: int, metrics: dict[str, float]) -> Any:
        yield batch


class AsyncGenerator(BaseCallback):
    async def on_train_start(self, **kwargs: Any) -> Any:
        yield None


class Misspelt(BaseCallback):
    def on_epoch_end(self, epoch: int, metric: dict[str, float]) -> None:
        pass


class NotAMethod(BaseCallback):
    on_train_end = "later"


REFUSED = {
    Async: "Async.on_epoch_end is a coroutine function (async def): hooks are called synchronously",
    Generator: "Generator.on_batch_end is a generator function (it yields)",
    AsyncGenerator: "AsyncGenerator.on_train_start is an asynchronous generator function",
    Misspelt: "Misspelt.on_epoch_end requires 'metric', which is no argument of on_epoch_end: did you mean 'metrics'?",
    NotAMethod: "NotAMethod.on_train_end is str 'later', not a method",
}


@pytest.mark.parametrize("cls", list(REFUSED), ids=lambda cls: cls.__name__)
def test_the_constructor_refuses_a_hook_it_could_not_call(cls: type[BaseCallback]) -> None:
    with pytest.raises(TrainingError) as caught:
        CallbackManager([BaseCallback.__new__(cls)])
    assert str(caught.value).startswith(f"callbacks[0]: {cls.__name__} cannot be registered: {REFUSED[cls]}")


@pytest.mark.parametrize("cls", list(REFUSED), ids=lambda cls: cls.__name__)
def test_add_callback_refuses_it_and_registers_nothing(cls: type[BaseCallback]) -> None:
    manager = CallbackManager()
    with pytest.raises(TrainingError, match=f"add_callback\\(\\): {cls.__name__} cannot be registered"):
        manager.add_callback(BaseCallback.__new__(cls))
    assert len(manager) == 0


def test_a_direct_change_of_the_list_is_refused_at_the_next_hook_call_and_can_be_undone() -> None:
    manager = CallbackManager()
    bad = Async()
    manager.callbacks.append(bad)  # the seed API: checked at the next hook call
    with pytest.raises(TrainingError, match="callbacks\\[0\\]: Async cannot be registered"):
        manager.on_epoch_end(0, {})
    manager.callbacks.remove(bad)
    manager.on_epoch_end(0, {})  # fixed: the manager works again


def test_the_fix_is_named() -> None:
    with pytest.raises(TrainingError, match="make it a plain def"):
        CallbackManager([Generator()])
    with pytest.raises(TrainingError, match="rename the parameter"):
        CallbackManager([Misspelt()])


def test_a_hook_set_on_an_instance_is_checked_too() -> None:
    callback = BaseCallback.__new__(type("Plain", (BaseCallback,), {}))

    async def on_batch_start(batch: int) -> None:
        pass

    callback.on_batch_start = on_batch_start  # type: ignore[method-assign]
    with pytest.raises(TrainingError, match=r"Plain\.on_batch_start \(set on the instance\) is a coroutine function"):
        CallbackManager([callback])


def test_a_pluggy_plugin_with_a_generator_hook_is_refused_at_registration() -> None:
    class Plugin:
        @hookimpl
        def on_epoch_end(self, epoch: int) -> Any:
            yield epoch

    with pytest.raises(TrainingError, match="on_epoch_end \\(set on the instance\\) is a generator function"):
        CallbackManager().register(Plugin())


def test_a_required_context_keyword_is_no_misspelling_and_is_accepted() -> None:
    class NeedsModel(BaseCallback):
        def on_train_start(self, model: object, epochs: int, **kwargs: Any) -> None:
            self.model = model

    callback = NeedsModel()
    CallbackManager([callback]).on_train_start(model="m", epochs=3)
    assert callback.model == "m"


def _decorate(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:  # no functools.wraps: the signature is lost
        return method(*args, **kwargs)

    return wrapper


def test_star_args_receive_the_hookspec_arguments_by_position_so_a_decorator_without_wraps_works() -> None:
    seen: list[Any] = []

    class Decorated(BaseCallback):
        @_decorate
        def on_batch_end(self, batch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            seen.append((batch, metrics, kwargs))

    class Generic(BaseCallback):
        def on_epoch_end(self, *args: Any) -> None:
            seen.append(args)

    manager = CallbackManager([Decorated(), Generic()])
    manager.on_batch_end(3, {"loss": 1.0}, model="m")
    manager.on_epoch_end(1, {"loss": 0.5}, model="m")
    assert seen == [(3, {"loss": 1.0}, {"model": "m"}), (1, {"loss": 0.5})]


def test_a_decorator_with_wraps_keeps_the_signature_that_dispatch_reads() -> None:
    seen: list[Any] = []

    def logged(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return wrapper

    class Wrapped(BaseCallback):
        @logged
        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            seen.append(epoch)

    CallbackManager([Wrapped()]).on_epoch_end(4, {}, model="m")
    assert seen == [4]


def test_the_config_check_reports_a_refused_hook_at_its_item(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "sara-async-plugin",
        "1.0",
        {"uploader": "sara_test_async:Uploader"},
        {
            "sara_test_async": """
                from altametris.sara.core import BaseCallback

                class Uploader(BaseCallback):
                    \"\"\"Uploads metrics, wrongly.\"\"\"

                    async def on_epoch_end(self, epoch, metrics):
                        pass
            """
        },
    )
    report = check_config({"callbacks": ["history", "uploader"]})
    (problem,) = report.problems
    assert str(problem).startswith(
        "callbacks[1]: plugin 'uploader' (sara-async-plugin==1.0): Uploader cannot be registered: "
        "Uploader.on_epoch_end is a coroutine function (async def)"
    )
    with pytest.raises(TrainingError, match=r"callbacks\[1\]: plugin 'uploader'"):
        CallbackManager.from_config({"callbacks": ["history", "uploader"]})


def test_the_conformance_check_reports_the_same_refusals_plus_advice() -> None:
    problems = conformance_problems(Misspelt)
    assert any(REFUSED[Misspelt] in problem for problem in problems)
    assert not any("gets a TrainingError" in problem for problem in problems)  # refused, not advised twice
