"""The declared order (``altametris.sara.core.order``): before/after, run_before/run_after, the writers' rule.

The plugin names come from this environment's installed distribution (``sara-callbacks`` registers the built-ins).
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

import pytest
from altametris.sara.core import BaseCallback, CallbackManager
from altametris.sara.core.config import check_config
from altametris.sara.core.exceptions import ConfigError, OrderError, TrainingError
from altametris.sara.core.order import Placement, place, resolve, rules
from altametris.sara.plugins.checkpoint import Checkpoint
from altametris.sara.plugins.history import History

if TYPE_CHECKING:
    from pathlib import Path


class Said(BaseCallback):
    """Appends its label to a shared list at ``on_epoch_end``: the list is the call order."""

    def __init__(self, label: str, calls: list[str]) -> None:
        self.label, self.calls = label, calls

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
        self.calls.append(self.label)


def named(label: str, calls: list[str], *, before: tuple[str, ...] = (), after: tuple[str, ...] = ()) -> Said:
    """A ``Said`` that answers to the plugin name ``label``, as a config item of that name would."""
    callback = Said(label, calls)
    place(callback, Placement(label, before, after, f"item {label}"))
    return callback


def called(manager: CallbackManager, calls: list[str]) -> list[str]:
    calls.clear()
    manager.on_epoch_end(0, {})
    return list(calls)


# -- the order -------------------------------------------------------------------------------------------------------


def test_without_declarations_the_registration_order_holds_with_checkpoint_writers_last(tmp_path: Path) -> None:
    calls: list[str] = []
    writer = Checkpoint(dirpath=str(tmp_path))
    first, second = Said("a", calls), Said("b", calls)
    assert resolve([first, writer, second]) == [first, second, writer]
    assert rules([first, second]) == []


def test_after_moves_an_item_behind_every_item_of_that_plugin_and_nothing_else_moves() -> None:
    calls: list[str] = []
    manager = CallbackManager(
        [named("a", calls, after=("c",)), named("b", calls), named("c", calls), named("c", calls), named("d", calls)]
    )
    assert called(manager, calls) == ["b", "c", "c", "a", "d"]


def test_before_moves_an_item_ahead_of_every_item_of_that_plugin() -> None:
    calls: list[str] = []
    manager = CallbackManager([named("a", calls), named("b", calls), named("c", calls, before=("a",))])
    assert called(manager, calls) == ["c", "a", "b"]


@pytest.mark.parametrize("size", [3, 4, 5])
def test_every_constraint_holds_and_the_callbacks_no_constraint_names_keep_their_order(size: int) -> None:
    labels = [f"p{index}" for index in range(size)]
    pairs = list(itertools.permutations(range(size - 1), 2))  # the last callback is in no constraint
    tried = 0
    for chosen in itertools.chain(itertools.combinations(pairs, 1), itertools.combinations(pairs, 2)):
        if any((b, a) in chosen for a, b in chosen):
            continue  # a two-cycle: no order
        calls: list[str] = []
        callbacks = [
            named(label, calls, after=tuple(labels[a] for a, b in chosen if b == index))
            for index, label in enumerate(labels)
        ]
        got = [labels.index(callback.label) for callback in resolve(callbacks)]  # type: ignore[attr-defined]
        assert sorted(got) == list(range(size))
        assert all(got.index(a) < got.index(b) for a, b in chosen), (chosen, got)
        free = [index for index in range(size) if not any(index in pair for pair in chosen)]
        assert [index for index in got if index in free] == free
        tried += 1
    assert tried > 0


def test_a_plugin_is_not_ordered_against_its_own_items() -> None:
    calls: list[str] = []
    manager = CallbackManager([named("a", calls, after=("a",)), named("a", calls), named("b", calls)])
    assert called(manager, calls) == ["a", "a", "b"]


def test_a_class_declares_its_place_by_the_name_its_plugin_is_registered_under(tmp_path: Path) -> None:
    calls: list[str] = []

    class Upload(Said):
        run_after = ("history",)

    class Early(Said):
        run_before = ("checkpoint",)

    history, writer = History(), Checkpoint(dirpath=str(tmp_path))  # built in code: named from the metadata
    order = resolve([Upload("up", calls), history, writer, Early("early", calls)])
    assert [type(callback).__name__ for callback in order] == ["History", "Upload", "Early", "Checkpoint"]


def test_a_name_that_is_not_enabled_is_no_constraint() -> None:
    calls: list[str] = []

    class Polite(Said):
        run_after = ("tensorboard_logger",)

    manager = CallbackManager([Polite("polite", calls), named("b", calls)])
    assert called(manager, calls) == ["polite", "b"]


def test_a_declared_constraint_wins_over_the_writers_rule(tmp_path: Path) -> None:
    calls: list[str] = []
    writer = Checkpoint(dirpath=str(tmp_path))
    upload = named("upload", calls, after=("checkpoint",))
    other = named("other", calls)
    assert resolve([upload, writer, other]) == [other, writer, upload]
    assert rules([upload, writer, other]) == [
        "upload after checkpoint (item upload.after)",
        "checkpoint after the callbacks that save no checkpoint (saves_checkpoints)",
    ]


def test_a_cycle_is_an_order_error_naming_the_plugins_and_the_constraints() -> None:
    calls: list[str] = []
    with pytest.raises(OrderError) as caught:
        CallbackManager(
            [named("a", calls, after=("b",)), named("b", calls, after=("c",)), named("c", calls, after=("a",))]
        )
    assert caught.value.cycle in (("a", "c", "b", "a"), ("b", "a", "c", "b"), ("c", "b", "a", "c"))
    message = str(caught.value)
    assert "the declared order has a cycle" in message
    assert all(f"{x} after {y} (item {x}.after)" in message for x, y in (("a", "b"), ("b", "c"), ("c", "a")))
    assert isinstance(caught.value, ConfigError)


# -- the manager -----------------------------------------------------------------------------------------------------


def test_add_callback_before_and_after_place_it_and_repr_shows_the_call_order() -> None:
    calls: list[str] = []
    manager = CallbackManager([named("a", calls), named("b", calls)])
    manager.add_callback(Said("new", calls), before=["b"])
    assert called(manager, calls) == ["a", "new", "b"]
    manager.add_callback(Said("last", calls), after=["b"], before=[])
    manager.add_callback(Said("first", calls), before=["a"])
    assert called(manager, calls) == ["first", "a", "new", "b", "last"]
    assert repr(manager) == "CallbackManager(callbacks=[Said, Said, Said, Said, Said])"
    assert [callback.label for callback in manager.callbacks] == ["a", "b", "new", "last", "first"]  # type: ignore[attr-defined]


def test_add_callback_refuses_a_name_of_no_plugin_with_a_suggestion_and_a_cycle_changing_nothing() -> None:
    calls: list[str] = []
    manager = CallbackManager([named("a", calls, after=("history",)), History()])
    with pytest.raises(TrainingError, match=r"after: 'histroy' is no installed plugin .* did you mean 'history'"):
        manager.add_callback(Said("x", calls), after=["histroy"])
    with pytest.raises(TrainingError, match=r"before: expected a list of plugin names, got 'history'"):
        manager.add_callback(Said("x", calls), before="history")  # type: ignore[arg-type]
    with pytest.raises(OrderError, match=r"cycle"):
        manager.add_callback(Said("x", calls), before=["history"], after=["a"])
    assert len(manager) == 2
    assert called(manager, calls) == ["a"]


def test_removing_a_callback_under_a_declared_order_resorts_the_others() -> None:
    calls: list[str] = []
    a, b, c = named("a", calls, after=("c",)), named("b", calls), named("c", calls)
    manager = CallbackManager([a, b, c])
    assert called(manager, calls) == ["b", "c", "a"]
    manager.remove_callback(c)
    assert called(manager, calls) == ["a", "b"]


def test_a_direct_change_of_the_list_that_makes_a_cycle_is_refused_at_the_next_hook() -> None:
    calls: list[str] = []
    manager = CallbackManager([named("a", calls, after=("b",))])
    manager.callbacks.append(named("b", calls, after=("a",)))
    with pytest.raises(TrainingError, match=r"callbacks: the declared order has a cycle"):
        manager.on_epoch_end(0, {})


# -- a config --------------------------------------------------------------------------------------------------------


def test_a_config_item_orders_by_plugin_name_and_its_file_and_key_name_each_problem(tmp_path: Path) -> None:
    config = tmp_path / "train.toml"
    config.write_text(
        "[[callbacks]]\n"
        'name = "jsonl_logger"\n'
        'params = { path = "m.jsonl" }\n'
        'after = ["history"]\n'
        "[[callbacks]]\n"
        'name = "history"\n'
    )
    manager = CallbackManager.from_config(config)
    assert repr(manager) == "CallbackManager(callbacks=[History, JSONLLogger])"

    config.write_text(
        'callbacks = [{ name = "history", after = ["jsonl_loger"] }, { name = "timer", before = "history" },'
        ' { name = "nan_guard", after = [3] }]\n'
    )
    problems = [str(problem) for problem in check_config(config).problems]
    assert problems == [
        f'{config}: callbacks[1].before: expected a list of plugin names, got string; write ["history"]',
        f"{config}: callbacks[2].after[0]: expected a plugin name, got integer 3",
        f"{config}: callbacks[0].after[0]: 'jsonl_loger' is no installed plugin and no item of this config; "
        "did you mean 'jsonl_logger'? see sara-callbacks list",
    ]


def test_a_cycle_in_a_config_is_one_order_error_at_its_callbacks(tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("callbacks:\n  - {name: history, after: [timer]}\n  - {name: timer, after: [history]}\n")
    (problem,) = check_config(config).problems
    assert isinstance(problem, OrderError)
    assert (problem.path, problem.key) == (str(config), "callbacks")
    assert str(problem).startswith(f"{config}: callbacks: the declared order has a cycle: ")
    assert set(problem.cycle) == {"history", "timer"}
    with pytest.raises(OrderError):
        CallbackManager.from_config(config)


def test_a_disabled_item_is_a_known_name_and_no_constraint() -> None:
    manager = CallbackManager.from_config(
        {"callbacks": [{"name": "history", "after": ["timer"]}, {"name": "timer", "enabled": False}, "nan_guard"]}
    )
    assert repr(manager) == "CallbackManager(callbacks=[History, NaNGuard])"


# -- what a second reader found ------------------------------------------------------------------------------------


class Writer(Said):
    saves_checkpoints = True


def test_two_writers_each_followed_by_its_own_uploader_make_no_false_cycle() -> None:
    calls: list[str] = []
    first, second = named("ckpt", calls), named("ema", calls)
    writers = [Writer("ckpt", calls), Writer("ema", calls)]
    place(writers[0], Placement("ckpt"))
    place(writers[1], Placement("ema"))
    upload, notify = named("upload", calls, after=("ckpt",)), named("notify", calls, after=("ema",))
    other = named("other", calls)
    manager = CallbackManager([upload, writers[0], notify, writers[1], other])
    assert called(manager, calls) == ["other", "ckpt", "upload", "ema", "notify"]
    assert (first.label, second.label) == ("ckpt", "ema")


def test_removing_the_last_callback_that_declares_an_order_restores_the_plain_order() -> None:
    calls: list[str] = []
    glue = named("glue", calls, after=("b",), before=("a",))  # b, glue, a
    a, b = named("a", calls), named("b", calls)
    manager = CallbackManager([a, b, glue])
    assert called(manager, calls) == ["b", "glue", "a"]
    manager.remove_callback(glue)
    assert called(manager, calls) == ["a", "b"]


def test_registering_a_callback_again_with_after_places_it_where_it_says() -> None:
    calls: list[str] = []
    a, b = named("a", calls), named("b", calls)
    manager = CallbackManager([a, b])
    manager.add_callback(a, after=["b"])
    assert called(manager, calls) == ["b", "a", "a"]
    assert repr(manager) == "CallbackManager(callbacks=[Said, Said, Said])"


def test_a_refused_add_callback_leaves_the_callback_as_it_was() -> None:
    calls: list[str] = []
    manager = CallbackManager([named("a", calls, after=("b",)), named("b", calls)])
    newcomer = named("c", calls)
    with pytest.raises(OrderError):
        manager.add_callback(newcomer, before=["a"], after=["a"], on_error="warn")
    assert (newcomer.on_error, newcomer.__dict__["_sara_order"]) == ("raise", Placement("c", (), (), "item c"))
    manager.add_callback(newcomer)  # nothing of the refused call is left to refuse it again
    assert called(manager, calls) == ["b", "a", "c"]


@pytest.mark.parametrize(("value", "said"), [("checkpoint", "got the string 'checkpoint': write ('checkpoint',)"),
                                             ((1,), "got (1,)")])  # fmt: skip
def test_run_after_that_is_no_tuple_of_names_is_refused_at_registration(value: object, said: str) -> None:
    class Bad(BaseCallback):
        run_after = value  # type: ignore[assignment]

    with pytest.raises(TrainingError, match=rf"run_after must be a tuple of plugin names, {re.escape(said)}"):
        CallbackManager([Bad()])
