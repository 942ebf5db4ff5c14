"""The words of messages: every value a message quotes is bounded, escaped, and never fails to print."""

from __future__ import annotations

from altametris.sara.core.messages import (
    VALUE_LIMIT,
    class_name,
    close_matches,
    describe_error,
    did_you_mean,
    plain_text,
    safe_repr,
)


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise ValueError("no str")


def test_safe_repr_cuts_long_values_and_keeps_the_closing_character() -> None:
    text = safe_repr("x" * 1000, 20)
    assert len(text) == 20
    assert text.endswith("...'")
    assert safe_repr([1, 2], 20) == "[1, 2]"


def test_safe_repr_escapes_control_characters_and_survives_a_failing_repr() -> None:
    assert safe_repr("a\x1bb") == "'a\\x1bb'"
    assert safe_repr(BrokenRepr()) == "<BrokenRepr object>"
    assert safe_repr(10**5000) == "<int object>"  # too long to print: Python refuses


def test_plain_text_is_the_text_itself_when_printable_and_short() -> None:
    assert plain_text("metrics.csv", 100) == "metrics.csv"
    assert plain_text("bad\nname", 100) == "'bad\\nname'"
    assert len(plain_text("y" * 500, 100)) == 100


def test_describe_error_names_the_class_and_survives_odd_exceptions() -> None:
    assert describe_error(ValueError("no loss")) == "ValueError: no loss"
    assert describe_error(KeyError("loss")) == "KeyError: 'loss'"
    assert describe_error(StopIteration()) == "StopIteration"
    assert describe_error(BrokenStr()) == "BrokenStr: <str() failed with ValueError>"


def test_class_name_drops_the_locals_of_a_defining_function() -> None:
    class Local:
        pass

    assert class_name(Local()) == "Local"


def test_did_you_mean_suggests_the_closest_choice_or_says_nothing() -> None:
    assert did_you_mean("val_los", ["loss", "val_loss"]) == "did you mean 'val_loss'? "
    assert did_you_mean("zzz", ["loss"]) == ""
    assert did_you_mean(3, ["loss"]) == ""
    assert close_matches("histroy", ["history", "timer", "hist"], n=3)[0] == "history"


def test_values_from_configs_are_quoted_at_most_value_limit_characters() -> None:
    assert len(safe_repr("v" * 10_000, VALUE_LIMIT)) == VALUE_LIMIT


class Counted:
    """An element that counts how often its ``repr`` is asked for."""

    calls = 0

    def __repr__(self) -> str:
        Counted.calls += 1
        return "c"


def test_safe_repr_writes_a_huge_container_only_up_to_the_cut() -> None:
    shared: object = [Counted()] * 10
    for _ in range(5):  # what YAML aliases make: 10**6 places, a handful of objects
        shared = [shared] * 10
    Counted.calls = 0
    text = safe_repr({"profile": shared}, VALUE_LIMIT)
    assert text == "{'profile': [[[[[[c, c, c, c, c, c, c, c, c, c], [c, c, ...}"
    assert Counted.calls < VALUE_LIMIT  # repr() would ask each of the 10**6 places


def test_safe_repr_copies_no_more_of_a_huge_string_than_the_cut() -> None:
    import tracemalloc

    huge = "x" * 50_000_000
    tracemalloc.start()
    try:
        text = safe_repr(huge, VALUE_LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == "'" + "x" * (VALUE_LIMIT - 5) + "...'"
    assert peak < 100_000  # repr() would build a second string of 50 MB


def test_safe_repr_up_to_the_cut_is_repr_itself() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    values = [(1,), (), set(), frozenset({2}), {"a": {1.5: None}}, b"\x00'", "it's", loop, [[[[[]]]]]]
    for value in values:
        for limit in (8, 20, 80):
            written = repr(value)
            expected = written if len(written) <= limit else f"{written[: limit - 4]}...{written[-1]}"
            assert safe_repr(value, limit) == expected
