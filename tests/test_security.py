"""A config is data: it imports nothing but registered plugins (unless the caller opts in), builds no Python objects
from YAML tags, and cannot smuggle control characters or huge names into messages, logs or the terminal."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from _helpers import add_typo_hook_plugin
from altametris.sara.core.base_callback import CallbackManager
from altametris.sara.core.config import check_config, load_callbacks
from altametris.sara.core.exceptions import ConfigError, SaraError

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import FakeSite

# A module that is no plugin: importing it leaves a marker file (the path comes from the environment).
EVIL = """
    import os
    from altametris.sara.core.base_callback import BaseCallback

    with open(os.environ["SARA_TEST_MARKER"], "w") as marker:
        marker.write("imported")

    class Evil(BaseCallback):
        pass
"""


@pytest.fixture
def evil_site(fake_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    """A site with an importable module ``sara_test_evil`` that no distribution registers as a plugin."""
    (fake_site.root / "sara_test_evil.py").write_text(textwrap.dedent(EVIL), encoding="utf-8")
    monkeypatch.setenv("SARA_TEST_MARKER", str(tmp_path / "imported.marker"))
    return fake_site


def _cli(site: FakeSite, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", *args],
        capture_output=True,
        text=True,
        env=site.env(),
        timeout=60,
        check=False,
    )


# -- imports ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mapping", "toml", "yaml", "json"])
def test_a_config_cannot_import_a_module_that_no_plugin_registers(
    evil_site: FakeSite, tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "imported.marker"
    texts = {
        "toml": 'callbacks = ["sara_test_evil:Evil"]\n',
        "yaml": "callbacks: ['sara_test_evil:Evil']\n",
        "json": '{"callbacks": ["sara_test_evil:Evil"]}',
    }
    source: object = {"callbacks": ["sara_test_evil:Evil"]}
    if kind != "mapping":
        source = tmp_path / f"train.{kind}"
        source.write_text(texts[kind], encoding="utf-8")  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"is an import path, and a config names registered plugins only"):
        CallbackManager.from_config(source)  # type: ignore[arg-type]
    assert not check_config(source).ok  # type: ignore[arg-type]
    assert not marker.exists()
    assert "sara_test_evil" not in sys.modules


def test_the_command_line_imports_nothing_unless_asked(evil_site: FakeSite, tmp_path: Path) -> None:
    marker = tmp_path / "imported.marker"
    config = tmp_path / "train.toml"
    config.write_text('callbacks = ["sara_test_evil:Evil"]\n', encoding="utf-8")
    refused = _cli(evil_site, "check", str(config))
    assert refused.returncode == 1
    assert "is an import path, and a config names registered plugins only" in refused.stdout
    assert not marker.exists()
    allowed = _cli(evil_site, "check", "--allow-import-paths", str(config))
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert marker.read_text(encoding="utf-8") == "imported"


def test_the_caller_may_opt_in_to_import_paths(evil_site: FakeSite, tmp_path: Path) -> None:
    (callback,) = load_callbacks({"callbacks": ["sara_test_evil:Evil"]}, allow_import_paths=True)
    assert type(callback).__name__ == "Evil"
    assert (tmp_path / "imported.marker").exists()


@pytest.mark.parametrize("name", ["os.system", "os", "builtins.eval", "subprocess", "sara_test_evil"])
def test_a_module_name_is_only_ever_looked_up_as_a_plugin_name(evil_site: FakeSite, tmp_path: Path, name: str) -> None:
    before = set(sys.modules)
    with pytest.raises(SaraError, match="unknown plugin"):
        load_callbacks({"callbacks": [name]})
    assert not (tmp_path / "imported.marker").exists()
    assert {module for module in set(sys.modules) - before if not module.startswith("altametris.")} <= {"difflib"}


# -- YAML ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "tag"),
    [
        ("callbacks:\n  - !!python/object/apply:os.system ['touch {marker}']\n", "!!python/object/apply:os.system"),
        ("callbacks:\n  - name: history\n    params: !!python/name:os.system\n", "!!python/name:os.system"),
        ("callbacks: !!python/object:collections.OrderedDict {{}}\n", "!!python/object:collections.OrderedDict"),
        ("callbacks:\n  - !!python/module:os\n", "!!python/module:os"),
    ],
)
def test_yaml_python_tags_are_refused_with_a_clear_error_and_run_nothing(
    tmp_path: Path, document: str, tag: str
) -> None:
    marker = tmp_path / "ran.marker"
    path = tmp_path / "train.yaml"
    path.write_text(document.format(marker=marker), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_callbacks(path)
    assert f"the tag '{tag}' is not allowed: a config is data, read with yaml.safe_load" in str(caught.value)
    assert caught.value.line is not None
    assert not marker.exists()


# -- names in messages -----------------------------------------------------------------------------------------------


HOSTILE_NAMES = [
    pytest.param("\x1b[2J\x1b[31mcleared", id="ansi-escape"),
    pytest.param("history\nforged.toml: OK, 0 callbacks", id="newline"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("x" * 100_000, id="huge"),
    pytest.param("\u202eevil", id="bidi-override"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("a" * 100_000 + ":B", id="huge-import-path"),
]


def _assert_harmless(text: str) -> None:
    assert len(text) < 2_000, f"a message of {len(text)} characters"
    assert not any(ord(char) < 32 and char not in "\n" for char in text), repr(text)
    assert "\u202e" not in text
    assert "\ud800" not in text


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_plugin_name_is_reported_escaped_and_cut(name: str, enabled: bool) -> None:
    report = check_config({"callbacks": [{"name": name, "enabled": enabled}]})
    (problem,) = report.problems
    assert str(problem).startswith("callbacks[0].name: invalid plugin name ")
    _assert_harmless(str(problem))
    assert report.disabled == ()


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_command_line_never_prints_a_hostile_name_raw(fake_site: FakeSite, tmp_path: Path, name: str) -> None:
    config = tmp_path / "train.json"
    import json

    config.write_text(json.dumps({"callbacks": ["history", {"name": name, "enabled": False}]}), encoding="utf-8")
    result = _cli(fake_site, "check", str(config))
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{config}: callbacks[1].name: invalid plugin name ")
    _assert_harmless(line)
    assert "Traceback" not in result.stderr


def test_list_and_show_print_hostile_names_from_installed_metadata_escaped(fake_site: FakeSite) -> None:
    hostile = "\x1b[2Jred\x07"
    fake_site.add_distribution(
        "sara-test-hostile",
        "1.0\x1b[5m",
        {hostile: "sara_test_hostile:Plugin", "long" + "x" * 500: "sara_test_hostile:Plugin"},
        {"sara_test_hostile": "from altametris.sara.core.base_callback import BaseCallback as Plugin\n"},
    )
    listing = _cli(fake_site, "list")
    assert listing.returncode == 0, listing.stderr
    for line in listing.stdout.splitlines():
        _assert_harmless(line)
    assert "'\\x1b[2Jred\\x07'" in listing.stdout
    assert "is not a valid plugin name" in listing.stdout
    shown = _cli(fake_site, "show", hostile)
    _assert_harmless(shown.stdout + shown.stderr)


@pytest.mark.parametrize("target", ["os:system", "subprocess:call", "builtins:eval", "sara_test_evil:make"])
def test_an_opted_in_import_path_must_name_a_callback_class_never_a_function_to_call(
    evil_site: FakeSite, tmp_path: Path, target: str
) -> None:
    (evil_site.root / "sara_test_evil.py").write_text(
        textwrap.dedent(EVIL) + "\ndef make(command):\n    raise AssertionError('called')\n", encoding="utf-8"
    )
    ran = tmp_path / "ran.marker"
    params = {"command": f"touch {ran}", "args": [sys.executable, "-c", f"open({str(ran)!r}, 'w')"]}
    params.update(source=f"open({str(ran)!r}, 'w')")
    argument = {"os:system": "command", "subprocess:call": "args", "builtins:eval": "source"}.get(target, "command")
    config = {"callbacks": [{"name": target, "params": {argument: params[argument]}}]}
    report = check_config(config, allow_import_paths=True)
    (problem,) = report.problems
    assert "an import path must name a BaseCallback subclass" in str(problem)
    assert not ran.exists()


# -- everything the command line prints is escaped (issue 25) -------------------------------------------------------

HOSTILE_PATH = "ok\x1b[2Jz"


def _assert_printable_lines(text: str) -> None:
    for line in text.splitlines():
        assert line.isprintable(), repr(line)


@pytest.mark.parametrize(
    ("config", "code"),
    [('callbacks = ["history"]\n', 0), ('callbacks = ["histroy"]\n', 1), ('callbacks = ["typo_hook"]\n', 0)],
    ids=["ok", "problem", "warning"],
)
def test_check_escapes_the_config_path_on_every_line_it_prints(
    fake_site: FakeSite, tmp_path: Path, config: str, code: int
) -> None:
    add_typo_hook_plugin(fake_site)
    path = tmp_path / f"{HOSTILE_PATH}.toml"
    path.write_text(config, encoding="utf-8")
    result = _cli(fake_site, "check", str(path))
    assert result.returncode == code, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert lines
    _assert_printable_lines(result.stdout + result.stderr)
    shown = repr(str(path))[1:-1]  # the path as the problems' own lines write it: 'ok\x1b[2Jz.toml'
    assert all(line.startswith(f"'{shown}': ") for line in lines), lines


PLUGIN_OWN_WORDS = '''
    from altametris.sara.core.base_callback import BaseCallback

    class Loud(BaseCallback):
        """Clears\\x1b[2J the screen.

        And rings\\x07 the bell.
        """

        def __init__(self, level: "int\\x1b[31m" = 1) -> None:
            self.level = level
'''


def test_show_escapes_the_plugins_own_docstring_and_annotations(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "sara-test-loud", "1.0", {"loud": "sara_test_loud:Loud"}, {"sara_test_loud": PLUGIN_OWN_WORDS}
    )
    result = _cli(fake_site, "show", "loud")
    assert result.returncode == 0, result.stderr
    _assert_printable_lines(result.stdout)
    assert "'Clears\\x1b[2J the screen.'" in result.stdout
    assert "level: int\\x1b[31m = 1" in result.stdout


def test_an_error_quoting_a_plugins_text_reaches_the_terminal_escaped(fake_site: FakeSite, tmp_path: Path) -> None:
    fake_site.add_distribution(
        "sara-test-noisy",
        "1.0",
        {"noisy": "sara_test_noisy:Plugin"},
        {"sara_test_noisy": 'raise ImportError("\\x1b]0;owned\\x07 gone")\n'},
    )
    shown = _cli(fake_site, "show", "noisy")
    assert shown.returncode == 1
    (line,) = shown.stderr.splitlines()
    assert line.startswith("sara-callbacks: error: \"plugin 'noisy' (sara-test-noisy==1.0, target ")
    assert "ImportError: \\x1b]0;owned\\x07 gone" in line
    config = tmp_path / "train.toml"
    config.write_text('callbacks = ["noisy"]\n', encoding="utf-8")
    checked = _cli(fake_site, "check", str(config))
    assert checked.returncode == 1
    _assert_printable_lines(checked.stdout + checked.stderr + shown.stderr)
    assert "ImportError: \\x1b]0;owned\\x07 gone" in checked.stdout
