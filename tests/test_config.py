"""Configs: callbacks enabled by name, in order, with parameters; every error names the file and the item."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Callable

import pytest
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.config import check_config, load_callbacks, read_config
from altametris.sara.core.exceptions import (
    ConfigError,
    DuplicatePluginError,
    PluginLoadError,
    PluginParameterError,
    PluginTypeError,
    UnknownPluginError,
)

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import FakeSite

ITEMS = [
    {"name": "recorder", "params": {"label": "first", "every": 2}},
    "recorder_factory",
    {"name": "recorder", "params": {"label": "off"}, "enabled": False},
    {"name": "recorder", "params": {"label": "last"}},
]

TOML = """\
callbacks = [
    { name = "recorder", params = { label = "first", every = 2 } },
    "recorder_factory",
    { name = "recorder", params = { label = "off" }, enabled = false },
    { name = "recorder", params = { label = "last" } },
]
"""

YAML = """\
callbacks:
  - name: recorder
    params: {label: first, every: 2}
  - recorder_factory
  - name: recorder
    params: {label: "off"}
    enabled: false
  - name: recorder
    params: {label: last}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _deep_value(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [{"a": value}]
    return value


def _events() -> list[tuple[str, str, object]]:
    return sys.modules["sara_test_good"].EVENTS  # type: ignore[no-any-return]


# -- what a config builds --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mapping", "toml", "yaml", "yml", "json", "pathlike"])
def test_callbacks_are_built_in_order_with_their_parameters(plugin_site: FakeSite, tmp_path: Path, kind: str) -> None:
    sources = {
        "mapping": {"callbacks": ITEMS},
        "toml": str(_write(tmp_path, "train.toml", TOML)),
        "yaml": str(_write(tmp_path, "train.yaml", YAML)),
        "yml": str(_write(tmp_path, "train.yml", YAML)),
        "json": str(_write(tmp_path, "train.json", json.dumps({"callbacks": ITEMS}))),
        "pathlike": _write(tmp_path, "train.toml", TOML),
    }
    callbacks = load_callbacks(sources[kind])  # type: ignore[arg-type]
    assert [(type(c).__name__, c.label) for c in callbacks] == [  # type: ignore[attr-defined]
        ("Recorder", "first"),
        ("Recorder", "made"),
        ("Recorder", "last"),
    ]
    assert callbacks[0].every == 2  # type: ignore[attr-defined]


def test_from_config_runs_the_callbacks_in_config_order(plugin_site: FakeSite, tmp_path: Path) -> None:
    manager = CallbackManager.from_config(_write(tmp_path, "train.toml", TOML))
    manager.on_train_start()
    manager.on_epoch_end(0, {"loss": 1.0})
    assert _events() == [
        ("first", "on_train_start", 2),
        ("made", "on_train_start", 1),
        ("last", "on_train_start", 1),
        ("first", "on_epoch_end", 0),
        ("made", "on_epoch_end", 0),
        ("last", "on_epoch_end", 0),
    ]


def test_only_the_named_plugins_are_imported(plugin_site: FakeSite) -> None:
    load_callbacks({"callbacks": ["recorder"]})
    assert sorted(name for name in sys.modules if name.startswith("sara_test_")) == ["sara_test_good"]


def test_a_disabled_item_is_not_imported_so_a_broken_plugin_there_harms_nothing(plugin_site: FakeSite) -> None:
    callbacks = load_callbacks({"callbacks": [{"name": "broken", "enabled": False}, "recorder"]})
    assert len(callbacks) == 1
    assert "sara_test_broken" not in sys.modules


def test_an_empty_list_builds_nothing_and_other_keys_are_the_trainers(plugin_site: FakeSite) -> None:
    assert load_callbacks({"callbacks": [], "epochs": 3, "model": {"depth": 2}}) == []


def test_read_config_returns_the_whole_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "train.toml", 'callbacks = ["history"]\n[demo]\nepochs = 4\n')
    assert read_config(path) == {"callbacks": ["history"], "demo": {"epochs": 4}}


# -- files -----------------------------------------------------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}: no such config file")


@pytest.mark.parametrize("name", ["folder.toml", "runs"])
def test_a_directory_is_named_as_one_whatever_its_name(tmp_path: Path, name: str) -> None:
    folder = tmp_path / name
    folder.mkdir()
    with pytest.raises(ConfigError, match=f"{name}: cannot read this config: it is a directory, not a regular file"):
        load_callbacks(folder)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    pipe = tmp_path / "train.yaml"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match=r"train\.yaml: cannot read this config: it is a named pipe \(FIFO\)"):
        load_callbacks(pipe)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_config_linked_to_a_device_is_refused_before_reading(tmp_path: Path) -> None:
    link = tmp_path / "train.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="it is a character device, not a regular file"):
        load_callbacks(link)


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "big.yaml", "callbacks:\n" + "  - history\n" * 200_000)  # 2.4 MB
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert "is at most 1048576 bytes; is it the right file? (set SARA_MAX_CONFIG_BYTES" in str(caught.value)
    monkeypatch.setenv("SARA_MAX_CONFIG_BYTES", "100")
    with pytest.raises(ConfigError, match="at most 100 bytes"):
        load_callbacks(_write(tmp_path, "small.toml", "callbacks = [" + '"history", ' * 20 + "]\n"))
    monkeypatch.setenv("SARA_MAX_CONFIG_BYTES", "lots")
    with pytest.raises(ConfigError, match="SARA_MAX_CONFIG_BYTES='lots': expected a whole number of bytes"):
        load_callbacks(path)


def test_an_unknown_extension_lists_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_callbacks(_write(tmp_path, "train.ini", "[callbacks]\n"))
    assert "train.ini: cannot read this config: it has the extension '.ini'" in str(caught.value)
    assert "supported: .toml, .yaml, .yml, .json" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "where", "line"),
    [
        ("bad.toml", 'callbacks = [\n  "a",\n  b\n]\n', "line 3, column 3: invalid TOML", 3),
        ("bad.yaml", "callbacks:\n  - a\n  - [b\n", "invalid YAML", 4),
        ("bad.json", '{"callbacks": [\n  "a"\n  "b"]}', "line 3, column 3: invalid JSON", 3),
    ],
)
def test_a_syntax_error_names_the_file_and_the_line(
    tmp_path: Path, name: str, text: str, where: str, line: int
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert where in str(caught.value)
    assert caught.value.line == line
    assert caught.value.__cause__ is not None


def test_yaml_is_read_safely_and_a_python_tag_is_refused_clearly(tmp_path: Path) -> None:
    path = _write(tmp_path, "evil.yaml", 'callbacks:\n  - !!python/object/apply:os.system ["echo pwned"]\n')
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line 2, column 5: the tag '!!python/object/apply:os.system' is not allowed")
    assert "yaml.safe_load" in message


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes('callbacks = ["caf\xe9"]\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.toml: not UTF-8 text"):
        load_callbacks(path)


def test_a_file_whose_top_is_not_a_table_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a table with a 'callbacks' list at the top, got list"):
        load_callbacks(_write(tmp_path, "list.yaml", "- recorder\n"))


def test_an_empty_yaml_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"empty\.yaml: the file is empty; expected a 'callbacks' list"):
        load_callbacks(_write(tmp_path, "empty.yaml", "# nothing yet\n"))


def test_a_source_that_is_neither_a_mapping_nor_a_path_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"expected a mapping or the path .* got int"):
        load_callbacks(42)  # type: ignore[arg-type]


# -- the shape of a config -------------------------------------------------------------------------------------------


def test_the_documented_example_message(plugin_site: FakeSite, tmp_path: Path) -> None:
    path = _write(tmp_path, "train.toml", 'callbacks = ["recorder", "recorder", { name = "recorder", params = [1] }]\n')
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert str(caught.value) == f"{path}: callbacks[2].params: expected a table, got list"
    assert (caught.value.path, caught.value.key) == (str(path), "callbacks[2].params")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "expected a mapping or the path (str or os.PathLike) of a config file, got list"),
        ({"callback": []}, "no 'callbacks' key; found keys: 'callback'; rename 'callback' to 'callbacks'"),
        ({}, "no 'callbacks' key; the table is empty"),
        ({"callbacks": "recorder"}, "callbacks: expected a list, got string"),
        (
            {"callbacks": [3]},
            "callbacks[0]: expected a plugin name or a table "
            "{name, params, enabled, on_error, state_key, when, before, after}, got integer",
        ),
        ({"callbacks": [{"params": {}}]}, "callbacks[0]: missing 'name'"),
        ({"callbacks": [{"name": 3}]}, "callbacks[0].name: expected a string, got integer 3"),
        ({"callbacks": [{"name": "a", "parms": {}}]}, "callbacks[0]: unknown key 'parms'; did you mean 'params'?"),
        ({"callbacks": [{"name": "a", "enabled": "no"}]}, "callbacks[0].enabled: expected true or false, got string"),
        ({"callbacks": [{"name": "a", "params": {1: 2}}]}, "callbacks[0].params: parameter names are strings"),
        ({"callbacks": ["", "ok"]}, "callbacks[0]: invalid plugin name '': the name is empty"),
        ({"callbacks": ["x" * 101]}, "the name is 101 characters long; a plugin name has at most 100"),
        ({"callbacks": ["bad\nname"]}, "callbacks[0]: invalid plugin name 'bad\\nname'"),
    ],
)
def test_a_malformed_config_is_refused_with_the_place_and_the_reason(config: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_callbacks(config)  # type: ignore[arg-type]
    assert message in str(caught.value)


# -- plugin errors, placed in the config -----------------------------------------------------------------------------


def test_an_unknown_plugin_is_placed_and_suggested(plugin_site: FakeSite, tmp_path: Path) -> None:
    path = _write(tmp_path, "train.toml", 'callbacks = ["recorder", { name = "recordr" }]\n')
    with pytest.raises(UnknownPluginError) as caught:
        load_callbacks(path)
    assert str(caught.value).startswith(
        f"{path}: callbacks[1].name: unknown plugin 'recordr'; did you mean 'recorder'?"
    )
    assert (caught.value.path, caught.value.key) == (str(path), "callbacks[1].name")


def test_a_wrong_parameter_is_placed_at_the_parameter(plugin_site: FakeSite, tmp_path: Path) -> None:
    path = _write(tmp_path, "train.toml", 'callbacks = [{ name = "typed", params = { count = "3" } }]\n')
    with pytest.raises(PluginParameterError) as caught:
        load_callbacks(path)
    assert str(caught.value).startswith(
        f"{path}: callbacks[0].params.count: plugin 'typed' (sara-test-good==1.0): parameter 'count' expects int, "
        "got str '3'"
    )


def test_a_missing_parameter_is_placed_at_the_params(plugin_site: FakeSite) -> None:
    with pytest.raises(PluginParameterError, match=r"^callbacks\[0\]\.params: .*required parameter 'count'"):
        load_callbacks({"callbacks": ["typed"]})


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("broken", PluginLoadError),
        ("not_a_class", PluginTypeError),
        ("twin", DuplicatePluginError),
        ("bad_init", PluginParameterError),
        ("wrong_factory", PluginTypeError),
    ],
)
def test_each_plugin_error_keeps_its_class_and_gains_its_place(
    plugin_site: FakeSite, name: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^callbacks\[1\]"):
        load_callbacks({"callbacks": ["recorder", name]})


# -- hints for the common mistakes -----------------------------------------------------------------------------------


def test_a_parameter_written_on_the_item_is_pointed_under_params() -> None:
    with pytest.raises(ConfigError) as caught:
        load_callbacks({"callbacks": [{"name": "nan_guard", "threshold": 10.0}]})
    message = str(caught.value)
    assert message.startswith("callbacks[0]: unknown key 'threshold'; if it is a parameter of the plugin, write it")
    assert "{ name = 'nan_guard', params = { threshold = ... } }" in message
    assert "an item's keys are: name, params" in message


def test_a_misspelt_item_key_still_gets_its_did_you_mean_rather_than_the_params_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        load_callbacks({"callbacks": [{"name": "history", "enable": False}]})
    assert "did you mean 'enabled'?" in str(caught.value)
    assert "under 'params'" not in str(caught.value)


def test_single_brackets_in_toml_are_pointed_to_double_brackets(tmp_path: Path) -> None:
    path = _write(tmp_path, "train.toml", '[callbacks]\nname = "history"\n')
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert str(caught.value) == (
        f"{path}: callbacks: expected a list, got table; in TOML, each callback is a [[callbacks]] table "
        "(double brackets: an item of the list), not [callbacks] (single brackets: one table)"
    )
    fixed = _write(tmp_path, "fixed.toml", '[[callbacks]]\nname = "history"\n')
    assert [type(callback).__name__ for callback in load_callbacks(fixed)] == ["History"]


def test_a_table_where_the_list_belongs_in_yaml_is_told_to_be_a_list(tmp_path: Path) -> None:
    path = _write(tmp_path, "train.yaml", "callbacks:\n  name: history\n")
    with pytest.raises(ConfigError, match=r"callbacks: expected a list, got table; write the callbacks as a list"):
        load_callbacks(path)


# -- what a constructor raises keeps its place -----------------------------------------------------------------------

STRICT = """
    import sys

    from altametris.sara.core.base_callback import BaseCallback
    from altametris.sara.core.exceptions import PluginParameterError


    class GradAlert(BaseCallback):
        '''Raises its own error, the way plugin authors are told to, naming the parameter.'''

        def __init__(self, threshold: float = 1.0) -> None:
            if threshold != threshold:
                raise PluginParameterError(
                    f"grad_alert: 'threshold' must be finite, got {threshold}", parameter="threshold"
                )


    class Plain(BaseCallback):
        '''Raises a plain ValueError, whose message names a parameter or not.'''

        def __init__(self, size: int = 1, window: int = 1) -> None:
            if window > size:
                raise ValueError(f"window must not exceed size, got {window} > {size}")
            if window < 0:
                raise ValueError("negative values are not supported")


    class Exits(BaseCallback):
        '''Ends the process from its constructor.'''

        def __init__(self, code: int = 3) -> None:
            sys.exit(code)


    class Sided(BaseCallback):
        '''Declares the choices of a parameter whose annotation is wider.'''

        parameter_choices = {"side": ("above", "below")}

        def __init__(self, side: str = "above") -> None:
            self.side = side
"""


@pytest.fixture
def strict_site(fake_site: FakeSite) -> FakeSite:
    """``sara-test-strict 2.0``: plugins whose constructors refuse values (see ``STRICT``)."""
    fake_site.add_distribution(
        "sara-test-strict",
        "2.0",
        {
            "grad_alert": "sara_test_strict:GradAlert",
            "plain": "sara_test_strict:Plain",
            "exits": "sara_test_strict:Exits",
            "sided": "sara_test_strict:Sided",
        },
        {"sara_test_strict": STRICT},
    )
    return fake_site


def test_a_plugins_own_parameter_error_gets_the_parameters_place_and_the_distribution(strict_site: FakeSite) -> None:
    with pytest.raises(PluginParameterError) as caught:
        load_callbacks({"callbacks": [{"name": "grad_alert", "params": {"threshold": float("nan")}}]})
    error = caught.value
    assert str(error) == (
        "callbacks[0].params.threshold: plugin 'grad_alert' (sara-test-strict==2.0): "
        "'threshold' must be finite, got nan"
    )
    assert (error.key, error.parameter, error.distribution) == (
        "callbacks[0].params.threshold",
        "threshold",
        "sara-test-strict==2.0",
    )


def test_a_value_error_that_names_a_parameter_is_placed_at_that_parameter(strict_site: FakeSite) -> None:
    with pytest.raises(PluginParameterError) as caught:
        load_callbacks({"callbacks": [{"name": "plain", "params": {"size": 2, "window": 5}}]})
    error = caught.value
    assert str(error).startswith(
        "callbacks[0].params.window: plugin 'plain' (sara-test-strict==2.0, target 'sara_test_strict:Plain'): "
        "its constructor raised ValueError: window must not exceed size, got 5 > 2"
    )
    assert (error.parameter, error.key) == ("window", "callbacks[0].params.window")
    assert isinstance(error.__cause__, ValueError)


def test_a_value_error_that_names_no_parameter_stays_at_the_item(strict_site: FakeSite) -> None:
    with pytest.raises(PluginParameterError) as caught:
        load_callbacks({"callbacks": ["history", {"name": "plain", "params": {"window": -1}}]})
    assert str(caught.value).startswith("callbacks[1]: plugin 'plain' (sara-test-strict==2.0")
    assert caught.value.parameter is None


def test_a_constructor_calling_sys_exit_is_the_plugins_fault_not_the_end_of_the_process(
    strict_site: FakeSite,
) -> None:
    report = check_config({"callbacks": ["exits", "history"]})
    (problem,) = report.problems
    assert isinstance(problem, PluginParameterError)
    assert isinstance(problem.__cause__, SystemExit)
    assert str(problem).startswith("callbacks[0]: plugin 'exits' (sara-test-strict==2.0")
    assert "its constructor called sys.exit(3)" in str(problem)
    assert "report it to the plugin's authors" in str(problem)
    assert [type(callback).__name__ for callback in report.callbacks] == ["History"]


def test_declared_choices_are_checked_before_the_constructor(strict_site: FakeSite) -> None:
    with pytest.raises(PluginParameterError) as caught:
        load_callbacks({"callbacks": [{"name": "sided", "params": {"side": "abve"}}]})
    assert str(caught.value) == (
        "callbacks[0].params.side: plugin 'sided' (sara-test-strict==2.0): parameter 'side' expects one of "
        "'above', 'below', got 'abve'; did you mean 'above'?"
    )
    (callback,) = load_callbacks({"callbacks": [{"name": "sided", "params": {"side": "below"}}]})
    assert callback.side == "below"  # type: ignore[attr-defined]


def test_the_built_ins_modes_are_refused_at_the_parameter_before_their_constructor() -> None:
    for name in ("early_stopping", "checkpoint"):
        with pytest.raises(PluginParameterError) as caught:
            load_callbacks({"callbacks": [{"name": name, "params": {"mode": "maximum"}}]})
        assert caught.value.key == "callbacks[0].params.mode"
        assert "parameter 'mode' expects one of 'min', 'max', got 'maximum'" in str(caught.value)


# -- import paths ----------------------------------------------------------------------------------------------------


def test_an_import_path_is_refused_unless_the_caller_opts_in(plugin_site: FakeSite) -> None:
    config = {"callbacks": [{"name": "sara_test_good:Recorder", "params": {"label": "direct"}}]}
    with pytest.raises(ConfigError) as caught:
        load_callbacks(config)
    message = str(caught.value)
    assert "callbacks[0].name: 'sara_test_good:Recorder' is an import path" in message
    assert "allow_import_paths=True" in message
    assert "sara_test_good" not in sys.modules
    (callback,) = load_callbacks(config, allow_import_paths=True)
    assert callback.label == "direct"  # type: ignore[attr-defined]


def test_an_import_path_is_checked_like_a_plugin(plugin_site: FakeSite) -> None:
    with pytest.raises(PluginTypeError, match="does not derive from BaseCallback"):
        load_callbacks({"callbacks": ["sara_test_notcb:NotACallback"]}, allow_import_paths=True)
    with pytest.raises(PluginLoadError, match=r"'nowhere_module:Thing'.*No module named 'nowhere_module'"):
        load_callbacks({"callbacks": ["nowhere_module:Thing"]}, allow_import_paths=True)


# -- check_config: every problem -------------------------------------------------------------------------------------


def test_check_config_reports_every_problem_each_placed(plugin_site: FakeSite, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "train.toml",
        """\
callbacks = [
    "recorder",
    "recordr",
    { name = "typed", params = { count = "3", ratio = "x" } },
    { name = "broken" },
    { name = "recorder", params = [1], extra = 1 },
    { name = "broken", enabled = false },
]
""",
    )
    report = check_config(path)
    assert not report.ok
    lines = [str(problem) for problem in report.problems]
    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "callbacks[1]",  # a bare name is the item itself
        "callbacks[2].params.count",
        "callbacks[2].params.ratio",
        "callbacks[3].name",
        "callbacks[4]",
        "callbacks[4].params",
    ]
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert [type(c).__name__ for c in report.callbacks] == ["Recorder"]
    assert report.disabled == ("broken",)


def test_check_config_of_a_valid_config_builds_every_callback(plugin_site: FakeSite) -> None:
    report = check_config({"callbacks": ITEMS})
    assert report.ok
    assert report.names == ("recorder", "recorder_factory", "recorder")
    assert len(report.callbacks) == 3


def test_check_config_reports_an_unreadable_file_as_its_one_problem(tmp_path: Path) -> None:
    report = check_config(tmp_path / "missing.yaml")
    assert len(report.problems) == 1
    assert isinstance(report.problems[0], ConfigError)


# -- error policies --------------------------------------------------------------------------------------------------

POLICY_ITEMS = [
    {"name": "recorder", "params": {"label": "strict"}},
    {"name": "recorder", "params": {"label": "lenient"}, "on_error": "warn"},
    {"name": "recorder_factory", "on_error": "disable"},
]

POLICY_TOML = """\
callbacks = [
    { name = "recorder", params = { label = "strict" } },
    { name = "recorder", params = { label = "lenient" }, on_error = "warn" },
    { name = "recorder_factory", on_error = "disable" },
]
"""

POLICY_YAML = """\
callbacks:
  - {name: recorder, params: {label: strict}}
  - {name: recorder, params: {label: lenient}, on_error: warn}
  - {name: recorder_factory, on_error: disable}
"""


@pytest.mark.parametrize("kind", ["mapping", "toml", "yaml", "json"])
def test_on_error_sets_each_callbacks_policy_and_repr_shows_it(
    plugin_site: FakeSite, tmp_path: Path, kind: str
) -> None:
    sources = {
        "mapping": {"callbacks": POLICY_ITEMS},
        "toml": _write(tmp_path, "train.toml", POLICY_TOML),
        "yaml": _write(tmp_path, "train.yaml", POLICY_YAML),
        "json": _write(tmp_path, "train.json", json.dumps({"callbacks": POLICY_ITEMS})),
    }
    manager = CallbackManager.from_config(sources[kind])  # type: ignore[arg-type]
    assert [callback.on_error for callback in manager] == ["raise", "warn", "disable"]
    assert repr(manager) == (
        "CallbackManager(callbacks=[Recorder, Recorder(on_error='warn'), Recorder(on_error='disable')])"
    )


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ('"Warn"', "got 'Warn'; did you mean 'warn'?"),
        ('"ignore"', "got 'ignore'"),
        ("true", "got True"),
        ("3", "got 3"),
        ('["warn"]', "got ['warn']"),
    ],
)
def test_an_invalid_on_error_names_the_file_and_the_key(
    plugin_site: FakeSite, tmp_path: Path, value: str, found: str
) -> None:
    path = _write(tmp_path, "train.toml", f'callbacks = ["recorder", {{ name = "recorder", on_error = {value} }}]\n')
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert str(caught.value) == f"{path}: callbacks[1].on_error: expected one of 'raise', 'warn', 'disable', {found}"
    assert (caught.value.path, caught.value.key) == (str(path), "callbacks[1].on_error")


def test_an_invalid_on_error_is_reported_even_on_a_disabled_item(plugin_site: FakeSite) -> None:
    report = check_config({"callbacks": [{"name": "recorder", "enabled": False, "on_error": "never"}]})
    assert [str(problem) for problem in report.problems] == [
        "callbacks[0].on_error: expected one of 'raise', 'warn', 'disable', got 'never'"
    ]


# -- found by fuzzing (test_fuzz_config.py): each once raised something other than a SaraError, or said too much ----


def test_a_config_path_with_control_characters_is_escaped_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "\x1b[2J\x07.toml"
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert "\\x1b[2J\\x07.toml" in str(caught.value)
    assert "\x1b" not in str(caught.value)
    assert caught.value.path == str(path)


def test_a_config_path_with_a_nul_character_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open the config file: its path holds a NUL character"):
        load_callbacks(str(tmp_path / "a\x00b.toml"))


def test_a_path_like_whose_path_is_bytes_is_a_config_error() -> None:
    class BytesPath:
        def __fspath__(self) -> bytes:
            return b"train.toml"

    with pytest.raises(ConfigError, match=r"expected the path of a config file as a str, got bytes b'train\.toml'"):
        load_callbacks(BytesPath())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".toml", f"callbacks = []\nn = {'9' * 5_000}\n"),
        (".json", f'{{"callbacks": [], "n": {"9" * 5_000}}}'),
        (".yaml", f"callbacks: []\nn: {'9' * 5_000}\n"),
        (".toml", "callbacks = " + "[" * 100_000 + "]" * 100_000 + "\n"),
        (".json", '{"callbacks": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        (".yaml", "callbacks: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ],
    ids=["toml-huge-int", "json-huge-int", "yaml-huge-int", "toml-deep", "json-deep", "yaml-deep"],
)
def test_what_the_parsers_themselves_cannot_read_is_a_config_error(tmp_path: Path, suffix: str, text: str) -> None:
    path = _write(tmp_path, f"train{suffix}", text)
    with pytest.raises(ConfigError, match=r"(cannot read this config: (ValueError: Exceeds|it is nested))|invalid"):
        load_callbacks(path)


def test_the_keys_listed_when_callbacks_is_missing_are_cut_and_escaped() -> None:
    config = {"x" * 100_000: 1, "\x1b[2J": 2, **{f"key{index}": index for index in range(20)}}
    with pytest.raises(ConfigError) as caught:
        load_callbacks(config)
    message = str(caught.value)
    assert len(message) < 1_000
    assert "'\\x1b[2J'" in message
    assert "... (12 more)" in message


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 values, in 9 lines
    lines.append("callbacks: [{name: history, params: {size: *a8}}, {name: *a8}]")
    path = _write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    with pytest.raises(
        ConfigError, match=r"bomb.yaml: a4(\[\d\])+: the config holds more than 100000 values .*YAML aliases"
    ):
        load_callbacks(path)


def test_a_self_referencing_or_very_deep_callbacks_list_is_refused() -> None:
    item: dict[str, object] = {"name": "history"}
    item["params"] = {"size": item}
    with pytest.raises(
        ConfigError, match=r"^callbacks\[0\]\.params\.size\.params.*\.size\.name: is nested more than 64 "
    ):
        load_callbacks({"callbacks": [item]})
    deep: object = "history"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ConfigError, match=r"^callbacks\[0\]\[0\]\[0\].*\[0\]: is nested more than 64 levels deep"):
        load_callbacks({"callbacks": [deep]})


def test_an_odd_parameter_name_is_placed_escaped_and_cut() -> None:
    with pytest.raises(PluginParameterError) as caught:
        load_callbacks({"callbacks": [{"name": "history", "params": {"x" * 100_000: 1}}]})
    assert str(caught.value).startswith("callbacks[0].params['xxxxxxxx")
    assert len(str(caught.value)) < 1_000
    with pytest.raises(PluginParameterError) as caught:
        load_callbacks({"callbacks": [{"name": "history", "params": {"a\nb": 1}}]})
    assert caught.value.key == "callbacks[0].params['a\\nb']"


# -- every input bounded, each key given once (issue 25) ------------------------------------------------------------


@pytest.mark.parametrize("key", ["profile", "demo", "schedule", "callbacks"])
def test_an_alias_bomb_under_any_key_is_refused_at_once_naming_its_place(
    tmp_path: Path, alias_bomb: Callable[..., str], key: str
) -> None:
    path = _write(tmp_path, "bomb.yaml", alias_bomb(key, levels=6))  # 10**6 values: repr() or a walk would show
    started = time.perf_counter()
    (problem,) = check_config(path).problems
    assert time.perf_counter() - started < 2
    place = r"callbacks\[0\]\.params\.size" if key == "callbacks" else key
    pattern = rf"^{re.escape(str(path))}: {place}(\[\d\])+: the config holds more than 100000 values up to here, "
    assert re.match(pattern, str(problem)), str(problem)
    assert isinstance(problem, ConfigError)
    assert problem.path == str(path)
    assert re.fullmatch(rf"{place}(\[\d\])+", problem.key or "")
    with pytest.raises(ConfigError, match=pattern):
        read_config(path)  # what a trainer reads, its own keys included


@pytest.mark.parametrize(
    ("config", "place", "reason"),
    [
        ({"callbacks": [], "data": [0] * 150_000}, r"data\[\d+\]", "the config holds more than 100000 values"),
        ({"callbacks": [], "data": {str(key): key for key in range(60_000)}}, r"data\['\d+'\]", "the config holds"),
        ({"callbacks": [], "deep": _deep_value(100)}, r"deep(\[0\]\.a)+", "is nested more than 64 levels deep"),
    ],
    ids=["long-list", "wide-table", "deep"],
)
def test_a_value_too_big_or_too_deep_is_refused_under_any_key(config: object, place: str, reason: str) -> None:
    (problem,) = check_config(config).problems  # type: ignore[arg-type]
    assert re.match(rf"^{place}: {reason}", str(problem)), str(problem)
    with pytest.raises(ConfigError, match=rf"^{place}: {reason}"):
        read_config(config)  # type: ignore[arg-type]


def test_a_json_file_of_too_many_values_is_refused_wherever_they_sit(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.json", json.dumps({"callbacks": ["history"], "lr": {"steps": [0] * 200_000}}))
    with pytest.raises(ConfigError, match=r"big\.json: lr\.steps\[\d+\]: the config holds more than 100000 values"):
        load_callbacks(path)


@pytest.mark.parametrize(
    ("name", "text", "place", "key", "line"),
    [
        ("top.json", '{"callbacks": ["timer"],\n "callbacks": ["history"]}', "callbacks", "callbacks", None),
        ("name.json", '{"callbacks": [{"name": "timer", "name": "history"}]}', "callbacks[0].name", "name", None),
        (
            "deep.json",
            '{"callbacks": [{"name": "timer", "params": {"a": 1, "a": 2}}]}',
            "callbacks[0].params.a",
            "a",
            None,
        ),
        ("top.yaml", "callbacks: [timer]\ncallbacks: [history]\n", "callbacks", "callbacks", (1, 2)),
        ("name.yaml", "callbacks:\n  - name: timer\n    name: history\n", "callbacks[0].name", "name", (2, 3)),
        ("other.yaml", "callbacks: []\nprofile: true\nprofile: false\n", "profile", "profile", (2, 3)),
    ],
)
def test_a_key_given_twice_is_refused_naming_the_key_and_its_place(
    plugin_site: FakeSite, tmp_path: Path, name: str, text: str, place: str, key: str, line: tuple[int, int] | None
) -> None:
    path = _write(tmp_path, name, text)
    lines = f" (lines {line[0]} and {line[1]})" if line else ""
    expected = f"{path}: {place}: the key {key!r} appears twice in one table{lines}: the last one would silently "
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert str(caught.value).startswith(expected), str(caught.value)
    assert (caught.value.path, caught.value.key, caught.value.line) == (str(path), place, line and line[1])
    (problem,) = check_config(path).problems
    assert str(problem) == str(caught.value)


@pytest.mark.parametrize(
    ("text", "line", "named"),
    [
        ('callbacks = ["timer"]\ncallbacks = ["history"]\n', 2, "the key 'callbacks' is set twice in one table"),
        ('[[callbacks]]\nname = "timer"\nname = "history"\n', 3, "the key 'name' is set twice in one table"),
        ('callbacks = [{ name = "timer", name = "history" }]\n', 1, "Duplicate inline table key 'name'"),
    ],
    ids=["top", "item", "inline-item"],
)
def test_toml_refuses_a_key_given_twice_naming_the_key_and_its_line(
    tmp_path: Path, text: str, line: int, named: str
) -> None:
    path = _write(tmp_path, "twice.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert re.match(rf"{re.escape(str(path))}: line {line}, column \d+: invalid TOML: .*{named}", str(caught.value))
    assert caught.value.line == line


def test_yaml_merge_keys_and_a_table_repeated_by_an_alias_are_no_duplicates(
    plugin_site: FakeSite, tmp_path: Path
) -> None:
    text = (
        "base: &base {name: recorder, params: {label: base}}\n"
        "callbacks:\n"
        "  - {<<: *base, params: {label: merged}}\n"  # a merged key given again: the item's own wins, as YAML says
        "  - *base\n"
        "  - *base\n"
    )
    callbacks = load_callbacks(_write(tmp_path, "merge.yaml", text))
    assert [callback.label for callback in callbacks] == ["merged", "base", "base"]  # type: ignore[attr-defined]


def test_a_config_of_exactly_the_size_limit_is_read_and_one_byte_more_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for limit in (None, 4_096):
        if limit is not None:
            monkeypatch.setenv("SARA_MAX_CONFIG_BYTES", str(limit))
        size = limit or 1_048_576
        head = 'callbacks = ["history"]\n#'
        exact = _write(tmp_path, "exact.toml", head + "x" * (size - len(head) - 1) + "\n")
        assert exact.stat().st_size == size
        assert [type(callback).__name__ for callback in load_callbacks(exact)] == ["History"]
        over = _write(tmp_path, "over.toml", head + "x" * (size - len(head)) + "\n")
        with pytest.raises(ConfigError, match=rf"it is {size + 1} bytes or more, and a config file is at most {size} "):
            load_callbacks(over)
