"""Fuzzing the config readers: whatever a config holds, only the library's documented errors come out.

Random and malformed configs (mappings, TOML/YAML/JSON text written to real files, mutated text, raw bytes, wrong
types, deep nesting, huge strings and numbers, unicode and control characters, non-string keys, odd sources) go to
:func:`check_config`, :func:`load_callbacks` / ``CallbackManager.from_config`` and ``sara-callbacks check``:

* nothing but :class:`SaraError` subclasses is raised (never ``KeyError``, ``TypeError``, ``RecursionError`` ...);
* ``check_config(c).ok`` is true exactly when ``load_callbacks(c)`` succeeds;
* every message is one bounded text, free of the raw control characters the config held;
* the command line exits 0 or 1 with one line per problem, never a traceback.

The example counts scale with the hypothesis profile (``SARA_HYPOTHESIS_PROFILE=fuzz``, ``tox -e fuzz``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, Callable

import pytest
import yaml
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.cli import main
from altametris.sara.core.config import ITEM_KEYS, check_config, load_callbacks
from altametris.sara.core.exceptions import ConfigError, SaraError
from hypothesis import example, given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.filterwarnings("error"),
    pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"),
]


def examples(share: float) -> settings:
    """``share`` times the profile's example count (100 in CI, 2000 with the ``fuzz`` profile)."""
    return settings(max_examples=max(1, round(settings.default.max_examples * share)))


# -- what configs are made of --------------------------------------------------------------------------------------

PARAMETERS = {
    "checkpoint": ["dirpath", "monitor", "mode", "save_top_k", "every_n_epochs", "filename"],
    "csv_logger": ["path", "per_batch", "append", "fsync"],
    "early_stopping": ["monitor", "mode", "patience", "min_delta"],
    "history": [],
    "jsonl_logger": ["path", "per_batch", "append", "fsync"],
    "metrics_logger": ["every_n_batches", "level", "logger", "digits"],
    "mlflow_logger": [
        "tracking_uri",
        "experiment",
        "run_name",
        "tags",
        "log_every_n_batches",
        "log_params",
        "start_timeout",
        "flush_timeout",
        "max_pending",
    ],
    "nan_guard": ["monitor", "threshold", "action", "check_batches"],
    "progress_bar": ["force", "backend", "stream", "refresh_seconds", "digits"],
    "tensorboard_logger": ["log_dir", "log_every_n_batches", "flush_timeout", "max_pending"],
    "timer": ["budget_seconds"],
}
PLUGINS = sorted(PARAMETERS)

NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "\x1b[2J\x1b[31m",
    "line\nbreak",
    "\r\n",
    "\u202eevil",
    "\ud800",
    "\ufeffbom",
    "İı",  # case mapping that changes length
    "x" * 100_000,
    "../../escape.csv",
    "/etc/passwd",
    "{epoch}{",
    "%s%n",
    "os:system",
    "sara_test_evil:Evil",
    "NaN",
    "1e999",
    "9" * 5_000,
    "true",
]
NASTY_NUMBERS = [0, -1, 2**63, -(2**63) - 1, math.nan, math.inf, -math.inf, -0.0, 1e-320, True, False]
huge_numbers = st.builds(pow, st.sampled_from([10, -10]), st.sampled_from([400, 5_000]))  # beyond int('...') limits

text = st.text(max_size=40) | st.sampled_from(NASTY_TEXT) | st.text(st.characters(codec="utf-8"), max_size=20)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(NASTY_NUMBERS) | huge_numbers | text
odd_keys = st.integers() | st.none() | st.booleans() | st.floats() | st.tuples(st.integers()) | st.binary(max_size=4)


def _values(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=12,
    )


values = _values(scalars, text | odd_keys)
plugin_names = st.sampled_from(PLUGINS) | text | st.sampled_from([f"{name}x" for name in PLUGINS])


@st.composite
def params(draw: st.DrawFn, plugin: object) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(values)  # not a table at all, sometimes
    known = PARAMETERS.get(plugin, []) if isinstance(plugin, str) else []
    keys = st.sampled_from(known) | text | odd_keys if known else text | odd_keys
    nasty = st.sampled_from([*NASTY_TEXT, *NASTY_NUMBERS]) | huge_numbers
    return draw(st.dictionaries(keys, nasty | scalars | values, max_size=4))


@st.composite
def items(draw: st.DrawFn) -> Any:
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(values)  # neither a name nor a table
    name = draw(plugin_names)
    if shape <= 3:
        return name
    item: dict[Any, Any] = {}
    if draw(st.integers(0, 9)):
        item["name"] = name if draw(st.integers(0, 9)) else draw(values)
    if draw(st.booleans()):
        item["params"] = draw(params(name))
    if draw(st.integers(0, 3)) == 0:
        item["enabled"] = draw(st.booleans() | values)
    if draw(st.integers(0, 3)) == 0:
        item["on_error"] = draw(st.sampled_from(["raise", "warn", "disable", "Warn", "ignore"]) | values)
    if draw(st.integers(0, 5)) == 0:
        item[draw(st.sampled_from([*ITEM_KEYS, "parms"]) | text | odd_keys)] = draw(values)
    return item


@st.composite
def configs(draw: st.DrawFn) -> Any:
    shape = draw(st.integers(0, 19))
    if shape == 0:
        return draw(values)  # not a table
    config: dict[Any, Any] = draw(st.dictionaries(text | odd_keys, values, max_size=3))
    if shape == 1:
        config.pop("callbacks", None)
        return config
    config["callbacks"] = draw(st.lists(items(), max_size=5)) if shape > 2 else draw(values)
    return config


# -- the checks every outcome must pass ----------------------------------------------------------------------------


def assert_documented(problem: BaseException, allowed: str = "") -> None:
    """``problem`` is a SaraError whose message is one bounded text without raw control characters."""
    assert isinstance(problem, SaraError), f"{type(problem).__qualname__}: {problem!r}"
    message = str(problem)
    assert isinstance(message, str)
    assert len(message) <= 1_500 + len(allowed), f"a message of {len(message)} characters: {message[:300]}..."
    raw = [char for char in message.replace(allowed, "") if not char.isprintable() and char != "\n"]
    assert not raw, f"raw control characters {raw!r} in {message[:300]!r}"


def check_consistently(source: object, shown: str = "") -> None:
    """``check_config`` reports only documented errors, and agrees with ``load_callbacks`` and ``from_config``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = check_config(source)  # type: ignore[arg-type]
        for problem in report.problems:
            assert_documented(problem, shown)
        failure: Exception | None = None
        try:
            callbacks = load_callbacks(source)  # type: ignore[arg-type]
        except Exception as error:
            failure = error
        if failure is not None:
            assert_documented(failure, shown)
            assert not report.ok, f"check_config found no problem, load_callbacks raised {failure!r}"
            assert type(failure) is type(report.problems[0])
        else:
            assert report.ok, f"load_callbacks succeeded, check_config found {report.problems}"
            assert len(callbacks) == len(report.callbacks)
            repr(CallbackManager(callbacks))


# -- mappings --------------------------------------------------------------------------------------------------------


@examples(12)
@given(configs())
@example({"callbacks": [{"name": "history", "params": {"x" * 100_000: 1}}]})
@example({"callbacks": [{"name": "csv_logger", "params": {"path": "\x00"}}]})
@example({"callbacks": [{"name": "early_stopping", "params": {"patience": 10**5_000}}]})
@example({"callbacks": [{"name": "history", "params": {"size": [[[[[]]]]] * 3}}]})
@example({"callbacks": [{"name": "history", "on_error": "warn", "enabled": False}]})
def test_any_mapping_fails_only_with_documented_errors(config: Any) -> None:
    check_consistently(config)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_parameter_of_every_builtin_with_every_nasty_value(plugin: str) -> None:
    nasty = [*NASTY_TEXT, *NASTY_NUMBERS, 10**5_000, [], {}, ["x" * 100_000], {"\x1b": None}]
    for parameter in [*PARAMETERS[plugin], "unknown"]:
        for value in nasty:
            check_consistently({"callbacks": [{"name": plugin, "params": {parameter: value}}]})


def _nested(depth: int, leaf: object = 1) -> object:
    value: object = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


@pytest.mark.parametrize("depth", [10, 1_000, 100_000])
@pytest.mark.parametrize("where", ["top", "callbacks", "item", "params", "value"])
def test_deeply_nested_mappings_fail_only_with_documented_errors(where: str, depth: int) -> None:
    nested = _nested(depth)
    config = {
        "top": {"callbacks": [], "other": nested},
        "callbacks": {"callbacks": nested},
        "item": {"callbacks": [nested]},
        "params": {"callbacks": [{"name": "history", "params": nested}]},
        "value": {"callbacks": [{"name": "early_stopping", "params": {"monitor": nested}}]},
    }[where]
    check_consistently(config)


def test_self_referencing_mappings_fail_only_with_documented_errors() -> None:
    loop: dict[str, Any] = {"name": "history"}
    loop["params"] = {"size": loop}
    items_: list[Any] = ["history"]
    items_.append(items_)
    for config in ({"callbacks": [loop]}, {"callbacks": items_}):
        check_consistently(config)


# -- files -----------------------------------------------------------------------------------------------------------


def _toml_value(value: object) -> str | None:
    """``value`` as TOML, or ``None`` for what TOML cannot hold (null, non-string keys)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**4_000 else "9" * 4_500
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        parts = [_toml_value(item) for item in value]
        return "[" + ", ".join(part for part in parts if part is not None) + "]"
    if isinstance(value, dict):
        pairs = [(key, _toml_value(item)) for key, item in value.items() if isinstance(key, str)]
        return "{" + ", ".join(f"{json.dumps(key, ensure_ascii=False)} = {part}" for key, part in pairs if part) + "}"
    return None


def to_toml(config: object) -> str:
    if not isinstance(config, dict):
        return f"value = {_toml_value(config)}\n"
    lines = [f"{json.dumps(key, ensure_ascii=False)} = {_toml_value(value)}" for key, value in config.items()]
    return "\n".join(line for line in lines if not line.endswith("= None") and isinstance(line, str)) + "\n"


def to_yaml(config: object) -> str:
    return yaml.safe_dump(config, allow_unicode=True)


def to_json(config: object) -> str:
    return json.dumps(config, skipkeys=True, ensure_ascii=False, default=repr)


WRITERS: dict[str, Callable[[object], str]] = {".toml": to_toml, ".yaml": to_yaml, ".yml": to_yaml, ".json": to_json}


@st.composite
def mutated(draw: st.DrawFn, text_: str) -> str:
    """``text_``, sometimes cut, or with junk inserted or a character replaced."""
    operation = draw(st.integers(0, 5))
    if operation <= 2 or not text_:
        return text_
    position = draw(st.integers(0, len(text_)))
    if operation == 3:
        return text_[:position]
    junk = draw(st.sampled_from(["\x00", "[", "{", "}", "]", '"', "'", ":", "\n", "- ", "&a", "*a", "!!", "#", "="]))
    return text_[:position] + junk + text_[position + (operation == 5) :]


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@examples(6)
@given(configs(), st.sampled_from(sorted(WRITERS)), st.data())
def test_any_config_file_fails_only_with_documented_errors(folder: Path, config: Any, suffix: str, data: Any) -> None:
    try:
        text_ = WRITERS[suffix](config)
    except Exception:  # what the writer could not serialize (a 5000-digit int for JSON): junk for the reader
        text_ = "callbacks = [{ name = "
    path = _write(folder, f"train{suffix}", data.draw(mutated(text_)))
    check_consistently(path, str(path))
    check_consistently(str(path), str(path))


@examples(4)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), st.sampled_from(sorted(WRITERS)))
@example(b"\xef\xbb\xbfcallbacks = []", ".toml")
@example(b"\xff\xfe", ".json")
@example(b"callbacks: &a [*a]", ".yaml")
@example(b"callbacks: !!binary aGk=", ".yaml")
@example(b"callbacks:\n  - ? [a, b]\n    : c", ".yaml")
@example(b'{"callbacks": [1e999999, -1e999999]}', ".json")
@example(b'{"callbacks": ["timer"], "callbacks": ["history"]}', ".json")
@example(b"callbacks: [{name: timer, name: history}]\nprofile: &p [*p]\n", ".yaml")
def test_any_bytes_in_a_config_file_fail_only_with_documented_errors(folder: Path, content: bytes, suffix: str) -> None:
    path = _write(folder, f"raw{suffix}", content)
    check_consistently(path, str(path))


DEEP = {
    ".json": lambda depth: '{"callbacks": ' + "[" * depth + "]" * depth + "}",
    ".toml": lambda depth: "callbacks = " + "[" * depth + "]" * depth + "\n",
    ".yaml": lambda depth: "callbacks: " + "[" * depth + "]" * depth + "\n",
    ".yml": lambda depth: "callbacks:\n  " + "- " * depth + "x\n",  # block sequences in block sequences
}
HUGE = {
    ".json": lambda size: '{"callbacks": [{"name": "history", "params": {"n": ' + "9" * size + "}}]}",
    ".toml": lambda size: f'callbacks = [{{ name = "history", params = {{ n = {"9" * size} }} }}]\n',
    ".yaml": lambda size: f"callbacks: [{{name: history, params: {{n: {'9' * size}}}}}]\n",
    ".yml": lambda size: f"callbacks: [{'x' * size}]\n",
}


@pytest.mark.parametrize("size", [10, 5_000, 100_000])
@pytest.mark.parametrize("suffix", sorted(DEEP))
def test_deep_nesting_and_huge_numbers_in_files_fail_only_with_documented_errors(
    folder: Path, suffix: str, size: int
) -> None:
    for name, make in (("deep", DEEP), ("huge", HUGE)):
        path = _write(folder, f"{name}{size}{suffix}", make[suffix](size))
        check_consistently(path, str(path))


def test_a_yaml_alias_bomb_fails_fast_with_a_documented_error(folder: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines.append("callbacks: [{name: history, params: {size: *a8}}, {name: *a8}, *a8]")
    path = _write(folder, "bomb.yaml", "\n".join(lines) + "\n")
    started = time.perf_counter()
    check_consistently(path, str(path))
    assert time.perf_counter() - started < 10
    with pytest.raises(ConfigError, match=r"bomb.yaml: a4(\[\d\])+: the config holds more than 100000 values"):
        load_callbacks(path)


# -- sources that are not configs ----------------------------------------------------------------------------------


@examples(2)
@given(st.text(max_size=300) | st.sampled_from(["", ".", "..", "/", "x.toml", "\x00.toml", "a" * 5_000 + ".json"]))
def test_any_path_fails_only_with_documented_errors(folder: Path, name: str) -> None:
    for source in (name, folder / name if "\x00" not in name else name, str(folder) + os.sep + name):
        report = check_config(source)  # type: ignore[arg-type]
        for problem in report.problems:
            assert_documented(problem, str(source))


class BytesPath:
    """An ``os.PathLike`` whose path is bytes."""

    def __fspath__(self) -> bytes:
        return b"train.toml"


@pytest.mark.parametrize(
    "source", [None, 3, b"train.toml", ["callbacks"], object(), io.StringIO("callbacks = []"), BytesPath()], ids=repr
)
def test_a_source_of_the_wrong_type_is_a_documented_error(source: object) -> None:
    check_consistently(source)


def test_a_directory_named_like_a_config_is_a_documented_error(folder: Path) -> None:
    directory = folder / "dir.toml"
    directory.mkdir(exist_ok=True)
    check_consistently(directory, str(directory))


# -- the command line ------------------------------------------------------------------------------------------------


def _run_check(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(path)])
    return code, out.getvalue(), err.getvalue()


def assert_clean_cli(code: int, out: str, err: str) -> None:
    assert code in (0, 1), (code, out, err)
    assert "Traceback" not in out + err
    assert "unexpected error" not in err, err
    if code == 0:
        first, *order = out.splitlines()
        assert ": OK, " in first, out
        assert all(": call order: " in line or line.startswith("  ") for line in order), out  # a changed call order
        assert err == ""
    else:
        assert err.count("\n") == 1, err


@examples(3)
@given(configs(), st.sampled_from(sorted(WRITERS)), st.data())
def test_check_in_process_exits_0_or_1_without_a_traceback(folder: Path, config: Any, suffix: str, data: Any) -> None:
    try:
        text_ = WRITERS[suffix](config)
    except Exception:
        text_ = "callbacks: [{name: "
    path = _write(folder, f"cli{suffix}", data.draw(mutated(text_)))
    assert_clean_cli(*_run_check(path))


@examples(2)
@given(plugin_names)
def test_show_of_any_name_exits_0_or_1_without_a_traceback(name: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["show", "--", name])  # "--": a name may start with "-"
    assert code in (0, 1), (code, err.getvalue())
    assert "Traceback" not in out.getvalue() + err.getvalue()
    assert "unexpected error" not in err.getvalue()
    for line in err.getvalue().splitlines():
        assert len(line) < 2_000
        assert line.isprintable(), repr(line)


@examples(0.15)
@given(configs(), st.sampled_from(sorted(WRITERS)))
def test_check_as_a_command_exits_0_or_1_without_a_traceback(folder: Path, config: Any, suffix: str) -> None:
    try:
        text_ = WRITERS[suffix](config)
    except Exception:
        text_ = "callbacks: [{name: "
    path = _write(folder, f"sub{suffix}", text_)
    result = subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", "check", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        check=False,
    )
    assert_clean_cli(result.returncode, result.stdout, result.stderr)
