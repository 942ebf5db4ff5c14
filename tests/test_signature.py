"""Parameters are checked against the constructor before it is called: names, required ones, and types, unconverted."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Optional, Union

import pytest
from altametris.sara.core import discovery
from altametris.sara.core.discovery import _signature as _params
from altametris.sara.core.exceptions import PluginParameterError

if TYPE_CHECKING:
    from .conftest import FakeSite


def _problems(params: dict[str, object]) -> list[PluginParameterError]:
    info = discovery.find_plugin("typed")
    return _params.problems(info.load(), params, info)


# -- types -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "annotation", "fits"),
    [
        (3, int, True),
        ("3", int, False),
        (True, int, False),
        (3.0, int, False),
        (3, float, True),
        (True, float, False),
        (1, bool, False),
        (False, bool, True),
        ("a", str, True),
        (None, Optional[int], True),
        (2, Optional[int], True),
        ("2", Optional[int], False),
        ("x", Union[int, str], True),
        (1.5, Union[int, str], False),
        ("max", Literal["min", "max"], True),
        ("avg", Literal["min", "max"], False),
        (1, Literal[True], False),
        (["a", "b"], list[str], True),
        (["a", 1], list[str], False),
        (("a",), list[str], False),
        ({"a": 1}, dict[str, int], True),
        ({"a": "1"}, dict[str, int], False),
        ([1, 2], tuple[int, int], True),
        ([1, 2, 3], tuple[int, int], False),
        ([1.0, 2], tuple[float, ...], True),
        ({"a": 1.0}, Mapping[str, float], True),
        (["a"], Sequence[str], True),
        ("abc", Sequence[str], False),
        ("abc", Sequence, False),
        ("out.csv", pathlib.Path, True),
        (pathlib.Path("out.csv"), os.PathLike, True),
        ("out.csv", Union[str, "os.PathLike[str]"], True),
        (3, os.PathLike, False),
        (object(), Any, True),
        (None, None, True),
        (0, None, False),
    ],
)
def test_a_value_fits_its_annotation_or_not(value: object, annotation: object, fits: bool) -> None:
    assert _params.conforms(value, annotation) is fits


def test_every_kind_of_annotation_accepts_a_fitting_value(plugin_site: FakeSite) -> None:
    params: dict[str, object] = {
        "count": 1,
        "ratio": 1,
        "flag": True,
        "mode": "max",
        "names": ["a"],
        "table": {"a": 1},
        "pair": [1, 2],
        "many": [1.5, 2],
        "mapping": {"x": 0.5},
        "sequence": ["s"],
        "path": "out.txt",
        "where": "folder",
        "either": "x",
        "opaque": object(),  # its annotation cannot be resolved: not checked
        "anything": {1, 2},
    }
    assert _problems(params) == []


@pytest.mark.parametrize(
    ("parameter", "value", "expected", "hint"),
    [
        ("count", "3", "int", "write the number without quotes"),
        ("count", True, "int", "write a number, not a boolean"),
        ("ratio", "0.5", "float", "write the number without quotes"),
        ("flag", "true", "bool", "write true or false without quotes"),
        ("mode", "avg", "Literal['min', 'max']", "sara-callbacks show typed"),
        ("names", "a", "list[str] | None", "sara-callbacks show typed"),
        ("pair", [1], "tuple[int, int]", "sara-callbacks show typed"),
        ("sequence", "abc", "Sequence[str]", "sara-callbacks show typed"),
        ("path", 3, "str | os.PathLike[str]", "sara-callbacks show typed"),
    ],
)
def test_a_wrong_type_is_refused_naming_the_plugin_the_parameter_and_both_types(
    plugin_site: FakeSite, parameter: str, value: object, expected: str, hint: str
) -> None:
    (problem,) = _problems({"count": 1, parameter: value})
    assert (problem.plugin, problem.distribution, problem.parameter) == ("typed", "sara-test-good==1.0", parameter)
    assert problem.found == value
    message = str(problem)
    assert f"plugin 'typed' (sara-test-good==1.0): parameter {parameter!r} expects" in message
    assert f"got {type(value).__qualname__} {value!r}" in message
    assert hint in message
    if "|" not in expected:  # unions print in the order the running Python keeps them
        assert problem.expected == expected


def test_an_unknown_parameter_suggests_the_closest_and_lists_them_all(plugin_site: FakeSite) -> None:
    (problem,) = _problems({"count": 1, "ration": 0.1})
    assert problem.parameter == "ration"
    message = str(problem)
    assert "parameter 'ration' is unknown; did you mean 'ratio'?" in message
    assert "its parameters are: count, ratio, flag" in message


def test_a_missing_required_parameter_is_named_with_its_type(plugin_site: FakeSite) -> None:
    (problem,) = _problems({})
    assert problem.parameter == "count"
    assert "required parameter 'count' (int) is missing; add it to the params" in str(problem)


def test_every_problem_is_reported_not_only_the_first(plugin_site: FakeSite) -> None:
    problems = _problems({"ratio": "x", "flag": 1, "bogus": 0})
    assert [problem.parameter for problem in problems] == ["ratio", "flag", "bogus", "count"]


def test_building_checks_before_calling(plugin_site: FakeSite) -> None:
    with pytest.raises(PluginParameterError, match="'count' expects int, got str '3'"):
        discovery.create_callback("typed", {"count": "3"})


def test_a_constructor_with_kwargs_accepts_any_name(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "sara-test-open",
        "1.0",
        {"open": "sara_test_open:Open"},
        {
            "sara_test_open": """
                from altametris.sara.core.base_callback import BaseCallback

                class Open(BaseCallback):
                    def __init__(self, size: int = 1, **options: object) -> None:
                        self.options = options
            """
        },
    )
    callback = discovery.create_callback("open", {"anything": [1], "size": 2})
    assert callback.options == {"anything": [1]}  # type: ignore[attr-defined]
    with pytest.raises(PluginParameterError, match="'size' expects int"):
        discovery.create_callback("open", {"size": "2"})


def test_a_positional_only_parameter_cannot_come_from_a_config(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "sara-test-positional",
        "1.0",
        {"positional": "sara_test_positional:make"},
        {
            "sara_test_positional": """
                from altametris.sara.core.base_callback import BaseCallback

                def make(size, /):
                    return BaseCallback()
            """
        },
    )
    with pytest.raises(PluginParameterError, match="positional-only parameter 'size'"):
        discovery.create_callback("positional", {})
    with pytest.raises(PluginParameterError, match="parameter 'size' is positional-only"):
        discovery.create_callback("positional", {"size": 1})


BARE = """
    from altametris.sara.core.base_callback import BaseCallback

    class Bare(BaseCallback):
        pass
"""


def test_a_class_without_a_constructor_takes_no_parameter(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "sara-test-bare",
        "1.0",
        {"bare": "sara_test_bare:Bare"},
        {"sara_test_bare": BARE},
    )
    assert discovery.create_callback("bare") is not None
    with pytest.raises(PluginParameterError, match="parameter 'x' is unknown; its parameters are: none"):
        discovery.create_callback("bare", {"x": 1})


def test_union_syntax_in_string_annotations_is_checked_on_every_python() -> None:
    assert _params._evaluate("int | None", {}) == Optional[int]
    assert _params._evaluate("list[str] | None", {}) == Optional[list[str]]
    assert _params._evaluate("Unknown | None", {}) is _params.UNRESOLVED
    assert _params._evaluate_union("int | str", {}) == Union[int, str]
