"""The ``sara-callbacks`` command, run as a user runs it: a subprocess, its output and its exit code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest
from _helpers import add_typo_hook_plugin
from altametris.sara.core import __version__
from altametris.sara.core.cli import main

if TYPE_CHECKING:
    from .conftest import FakeSite

CONSOLE_SCRIPT = shutil.which("sara-callbacks", path=str(Path(sys.executable).parent))


def run(site: FakeSite | None, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m altametris.sara.core ARGS`` with the fake site's distributions visible."""
    env = site.env() if site is not None else None
    return subprocess.run(
        [sys.executable, "-m", "altametris.sara.core", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- list ------------------------------------------------------------------------------------------------------------


def test_list_prints_a_table_of_every_plugin_even_with_a_broken_one(plugin_site: FakeSite) -> None:
    result = run(plugin_site, "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "distribution", "version", "target"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if not line.startswith("!")}
    assert rows["broken"] == ["broken", "sara-test-broken", "0.1", "sara_test_broken:Broken"]
    assert rows["csv_logger"][1:3] == ["sara-callbacks", __version__]
    assert result.stderr == ""


def test_list_flags_a_name_that_two_distributions_register(plugin_site: FakeSite) -> None:
    result = run(plugin_site, "list")
    twins = [line for line in result.stdout.splitlines() if line.startswith("twin")]
    assert len(twins) == 2
    assert all(line.split()[1] == "!" for line in twins)
    assert "! 'twin' is registered by 2 distributions (sara-test-twin-a==1.0, sara-test-twin-b==2.0)" in result.stdout


def test_list_json_is_for_machines(plugin_site: FakeSite) -> None:
    result = run(plugin_site, "list", "--json")
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    recorder = next(row for row in rows if row["name"] == "recorder")
    assert recorder == {
        "name": "recorder",
        "target": "sara_test_good:Recorder",
        "distribution": "sara-test-good",
        "version": "1.0",
        "clash": False,
    }
    assert [row["clash"] for row in rows if row["name"] == "twin"] == [True, True]


def test_list_imports_no_plugin(plugin_site: FakeSite) -> None:
    script = textwrap.dedent(
        """
        import contextlib, io, sys
        from altametris.sara.core.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(["list"])
        loaded = sorted(m for m in sys.modules if m.startswith("sara_test_") or m == "altametris.sara.plugins")
        print(code, loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=plugin_site.env(), check=False
    )
    assert result.stdout.strip() == "0 []", result.stderr


@pytest.mark.skipif(CONSOLE_SCRIPT is None, reason="the console script is not installed next to this Python")
def test_the_console_script_is_the_same_command(plugin_site: FakeSite) -> None:
    assert CONSOLE_SCRIPT is not None
    script = subprocess.run(
        [CONSOLE_SCRIPT, "list", "--json"],
        capture_output=True,
        text=True,
        env=plugin_site.env(),
        timeout=60,
        check=False,
    )
    assert script.returncode == 0
    assert json.loads(script.stdout) == json.loads(run(plugin_site, "list", "--json").stdout)


# -- show ------------------------------------------------------------------------------------------------------------


def test_show_prints_the_docstring_the_parameters_and_the_hooks(plugin_site: FakeSite) -> None:
    result = run(plugin_site, "show", "recorder")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("recorder (sara-test-good==1.0)\ntarget: sara_test_good:Recorder (a BaseCallback subclass)")
    assert "Records its hooks into EVENTS, with its label." in out
    assert "  label: str = 'recorder'\n  every: int = 1\n" in out
    assert "hooks: on_train_start, on_epoch_end" in out


def test_show_marks_required_parameters(plugin_site: FakeSite) -> None:
    result = run(plugin_site, "show", "typed")
    assert "  count: int (required)" in result.stdout
    assert "  mode: Literal['min', 'max'] = 'min' (one of: 'min', 'max')\n" in result.stdout


def test_show_lists_the_choices_a_plugin_declares_beside_a_wider_annotation() -> None:
    result = run(None, "show", "early_stopping")
    assert result.returncode == 0, result.stderr
    assert "  mode: str = 'min' (one of: 'min', 'max')\n" in result.stdout
    assert "  patience: int = 3\n" in result.stdout  # no choices: nothing added


def test_show_json(plugin_site: FakeSite) -> None:
    shown = json.loads(run(plugin_site, "show", "recorder_factory", "--json").stdout)
    assert shown["kind"] == "a factory returning a BaseCallback"
    assert shown["parameters"] == [
        {
            "name": "label",
            "annotation": "str",
            "default": "made",
            "default_text": "'made'",
            "required": False,
            "choices": None,
            "choices_text": None,
        }
    ]
    assert shown["hooks"] == ["on_train_start", "on_epoch_end"]
    assert shown["distribution"] == "sara-test-good"


def test_show_json_gives_defaults_and_choices_as_json_values_not_python_reprs(plugin_site: FakeSite) -> None:
    shown = json.loads(run(plugin_site, "show", "typed", "--json").stdout)
    by_name = {parameter["name"]: parameter for parameter in shown["parameters"]}
    assert (by_name["count"]["required"], by_name["count"]["default"]) == (True, None)
    assert by_name["flag"]["default"] is False
    assert by_name["names"]["default"] is None
    assert by_name["names"]["default_text"] == "None"
    assert by_name["pair"]["default"] == [0, 0]
    assert by_name["path"]["default"] == "out.txt"
    assert by_name["mode"]["choices"] == ["min", "max"]
    assert by_name["ratio"]["choices"] is None
    checkpoint = json.loads(run(None, "show", "checkpoint", "--json").stdout)
    mode = next(parameter for parameter in checkpoint["parameters"] if parameter["name"] == "mode")
    assert (mode["default"], mode["choices"]) == ("min", ["min", "max"])


def test_show_of_a_broken_plugin_is_one_error_line(plugin_site: FakeSite) -> None:
    result = run(plugin_site, "show", "broken")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("sara-callbacks: error: plugin 'broken' (sara-test-broken==0.1, target ")
    assert "ModuleNotFoundError" in line


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("recordr", "unknown plugin 'recordr'; did you mean 'recorder'?"),
        ("twin", "plugin 'twin' is registered by 2 distributions"),
        ("not_callable", "is not a callback"),
    ],
)
def test_show_errors_are_one_line_and_exit_1(plugin_site: FakeSite, name: str, expected: str) -> None:
    result = run(plugin_site, "show", name)
    assert result.returncode == 1
    assert result.stderr.startswith("sara-callbacks: error: ")
    assert expected in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


# -- check -----------------------------------------------------------------------------------------------------------


def test_check_of_a_valid_config_exits_0_with_a_summary(plugin_site: FakeSite, tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        "train.toml",
        """\
        callbacks = [
            "recorder",
            { name = "typed", params = { count = 2 } },
            { name = "broken", enabled = false },
        ]
        """,
    )
    result = run(plugin_site, "check", str(config))
    assert result.returncode == 0, result.stdout
    assert result.stdout == f"{config}: OK, 2 callbacks: recorder, typed; 1 disabled: broken\n"


def test_check_shows_each_callbacks_error_policy_when_not_the_default(plugin_site: FakeSite, tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        "train.toml",
        """\
        callbacks = [
            { name = "recorder", on_error = "raise" },
            { name = "recorder", on_error = "warn" },
            { name = "recorder_factory", on_error = "disable" },
        ]
        """,
    )
    result = run(plugin_site, "check", str(config))
    assert result.returncode == 0, result.stdout
    assert result.stdout == (
        f"{config}: OK, 3 callbacks: recorder, recorder (on_error=warn), recorder_factory (on_error=disable)\n"
    )
    bad = _write(tmp_path, "bad.toml", 'callbacks = [{ name = "recorder", on_error = "sometimes" }]\n')
    result = run(plugin_site, "check", str(bad))
    assert result.returncode == 1
    assert result.stdout == (
        f"{bad}: callbacks[0].on_error: expected one of 'raise', 'warn', 'disable', got 'sometimes'\n"
    )
    assert "Traceback" not in result.stderr


def test_check_reports_every_problem_on_its_own_line_and_exits_1(plugin_site: FakeSite, tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        "train.yaml",
        """\
        callbacks:
          - recorder
          - recordr
          - name: typed
            params: {count: "3", flag: 1}
          - name: broken
          - name: twin
          - name: bad_init
          - {name: recorder, parms: {}}
        """,
    )
    result = run(plugin_site, "check", str(config))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "callbacks[1]",
        "callbacks[2].params.count",
        "callbacks[2].params.flag",
        "callbacks[3].name",
        "callbacks[4].name",
        "callbacks[5]",
        "callbacks[6]",
    ]
    assert all(line.startswith(f"{config}: ") for line in lines)
    assert result.stderr == f"{config}: 7 problems\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_check_summarises_a_long_list_of_callbacks_instead_of_naming_each(tmp_path: Path) -> None:
    # metrics_logger keeps no state: 3000 of them share no state_key (3000 history items would be refused)
    items = [*["metrics_logger"] * 3000, "timer", *[{"name": "timer", "enabled": False}] * 40]
    path = _write(tmp_path, "many.json", json.dumps({"callbacks": items}))
    result = run(None, "check", str(path))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{path}: OK, 3001 callbacks: metrics_logger, metrics_logger, ")
    assert "... and 2991 more (metrics_logger x2990, timer x1); 40 disabled: timer, " in line
    assert line.endswith("... and 30 more (timer x30)")
    assert len(line) < 600


def test_check_reports_a_constructor_that_calls_sys_exit_as_the_plugins_fault(
    fake_site: FakeSite, tmp_path: Path
) -> None:
    fake_site.add_distribution(
        "sara-test-quitter",
        "1.0",
        {"quitter": "sara_test_quitter:Quitter"},
        {
            "sara_test_quitter": """
                import sys

                from altametris.sara.core.base_callback import BaseCallback

                class Quitter(BaseCallback):
                    def __init__(self) -> None:
                        sys.exit(3)
            """
        },
    )
    path = _write(tmp_path, "train.toml", 'callbacks = ["quitter", "history"]\n')
    result = run(fake_site, "check", str(path))
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{path}: callbacks[0]: plugin 'quitter' (sara-test-quitter==1.0, target ")
    assert "its constructor called sys.exit(3)" in line
    assert result.stderr == f"{path}: 1 problem\n"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("missing.toml", None, "missing.toml: no such config file"),
        ("bad.toml", "callbacks = [\n", "bad.toml: line 2"),
        ("evil.yaml", "callbacks: !!python/name:os.system\n", "the tag '!!python/name:os.system' is not allowed"),
        ("train.cfg", "x", "supported: .toml, .yaml, .yml, .json"),
    ],
)
def test_check_of_an_unreadable_config_is_one_line(
    plugin_site: FakeSite, tmp_path: Path, name: str, text: str | None, expected: str
) -> None:
    if text is not None:
        _write(tmp_path, name, text)
    result = run(plugin_site, "check", name, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert expected in line


def test_check_refuses_import_paths_unless_allowed(plugin_site: FakeSite, tmp_path: Path) -> None:
    config = _write(tmp_path, "train.json", '{"callbacks": ["sara_test_good:Recorder"]}')
    refused = run(plugin_site, "check", str(config))
    assert refused.returncode == 1
    assert "is an import path" in refused.stdout
    allowed = run(plugin_site, "check", "--allow-import-paths", str(config))
    assert allowed.returncode == 0
    assert "OK, 1 callback: sara_test_good:Recorder" in allowed.stdout


def test_check_warns_about_a_misspelt_hook_but_passes(fake_site: FakeSite, tmp_path: Path) -> None:
    add_typo_hook_plugin(fake_site)
    config = _write(tmp_path, "train.toml", 'callbacks = ["typo_hook"]\n')
    result = run(fake_site, "check", str(config))
    assert result.returncode == 0
    warning, summary = result.stdout.splitlines()
    assert warning.startswith(f"{config}: warning: TypoHook.on_epoch_ends is not a hook")
    assert "did you mean 'on_epoch_end'?" in warning
    assert summary == f"{config}: OK, 1 callback: typo_hook"


def test_the_example_configs_are_valid() -> None:
    folder = Path(__file__).parent.parent / "examples" / "configs"
    configs = sorted(folder.glob("train.*"))
    assert [path.suffix for path in configs] == [".json", ".toml", ".yaml"]
    outputs = set()
    for path in configs:
        result = run(None, "check", str(path))
        assert result.returncode == 0, result.stdout
        outputs.add(result.stdout.split(": ", 1)[1])
    assert len(outputs) == 1  # the three formats say the same thing


# -- the command itself ----------------------------------------------------------------------------------------------


def test_version() -> None:
    result = run(None, "--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"sara-callbacks {__version__} (Python ")


@pytest.mark.parametrize("args", [["--help"], ["list", "--help"], ["show", "--help"], ["check", "--help"]])
def test_help(args: list[str]) -> None:
    result = run(None, *args)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: sara-callbacks")


def test_demo_help_names_its_options() -> None:
    result = run(None, "demo", "--help")
    assert result.returncode == 0
    for option in ("--config PATH", "--epochs N", "--output DIR"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["show"], "the following arguments are required: NAME"),
        (["list", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--epochs", "0"], "expected at least 1, got 0"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run(None, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_an_unexpected_error_is_one_line_with_a_hint_and_traceback_shows_it(plugin_site: FakeSite) -> None:
    result = run(plugin_site, "show", "weird")
    assert result.returncode == 1
    assert result.stderr == (
        "sara-callbacks: unexpected error: RuntimeError: no signature today (re-run with --traceback to see where)\n"
    )
    traced = run(plugin_site, "show", "weird", "--traceback")
    assert traced.returncode == 1
    assert "Traceback (most recent call last)" in traced.stderr
    assert "RuntimeError: no signature today" in traced.stderr


def test_main_returns_exit_codes_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["frobnicate"]) == 2
    assert main(["check", "does-not-exist.toml"]) == 1
    captured = capsys.readouterr()
    assert "does-not-exist.toml: no such config file" in captured.out


# -- bounded inputs, keys given once, the plugin's own failures (issue 25) ------------------------------------------


def run_measured(site: FakeSite | None, *args: str, timeout: float = 30) -> tuple[int, str, str, float, int]:
    """:func:`run`, also giving the wall time in seconds and the peak memory (RSS) in MB of that one process."""
    import os
    import tempfile
    import time

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "altametris.sara.core", *args],
            stdout=out,
            stderr=err,
            env=site.env() if site is not None else None,
        )
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # this child's own resource usage
            if pid:
                break
            if time.perf_counter() - started > timeout:
                process.kill()
                process.wait()
                pytest.fail(f"sara-callbacks {' '.join(args)} still ran after {timeout} s")
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        texts = [stream.read().decode("utf-8", "replace") for stream in (out, err)]
    return process.returncode, texts[0], texts[1], seconds, usage.ru_maxrss // 1024


@pytest.mark.skipif(not hasattr(__import__("os"), "wait4"), reason="os.wait4 measures one child's memory")
@pytest.mark.parametrize(("command", "key"), [("check", "profile"), ("check", "schedule"), ("demo", "demo")])
def test_an_alias_bomb_outside_callbacks_ends_check_and_demo_in_seconds_and_bounded_memory(
    tmp_path: Path, alias_bomb: Callable[..., str], command: str, key: str
) -> None:
    path = _write(tmp_path, "bomb.yaml", alias_bomb(key, levels=9))  # 10**9 values in about 500 bytes
    args = [str(path)] if command == "check" else ["--config", str(path), "--output", str(tmp_path / "run")]
    code, out, err, seconds, megabytes = run_measured(None, command, *args)
    print(f"{command} of a {path.stat().st_size}-byte alias bomb under {key!r}: {seconds:.2f} s, {megabytes} MB")
    assert code == 1, (out, err)
    lines = (out + err).splitlines()
    assert any(f"{path}: {key}[" in line and "holds more than 100000 values" in line for line in lines), lines
    assert all(len(line) < 1_000 for line in lines)
    assert seconds < 10
    assert megabytes < 200


def test_check_refuses_a_config_that_gives_a_key_twice(plugin_site: FakeSite, tmp_path: Path) -> None:
    config = _write(tmp_path, "train.json", '{"callbacks": ["timer"], "callbacks": ["history"]}')
    result = run(plugin_site, "check", str(config))
    assert result.returncode == 1
    assert result.stdout == (
        f"{config}: callbacks: the key 'callbacks' appears twice in one table: the last one would silently replace "
        "the first; keep one of them\n"
    )
    assert result.stderr == f"{config}: 1 problem\n"


CTRL_C_AT_IMPORT = """
    raise KeyboardInterrupt
"""

SLOW_IMPORT = """
    import os
    import time

    open(os.environ["SARA_TEST_MARKER"], "w").close()
    time.sleep(30)
"""


def test_a_plugin_whose_import_raises_keyboard_interrupt_is_its_failure_not_the_users(
    fake_site: FakeSite, tmp_path: Path
) -> None:
    fake_site.add_distribution(
        "sara-test-ctrl-c", "1.0", {"ctrl_c": "sara_test_ctrl_c:Plugin"}, {"sara_test_ctrl_c": CTRL_C_AT_IMPORT}
    )
    config = _write(tmp_path, "train.toml", 'callbacks = ["ctrl_c", "history"]\n')
    checked = run(fake_site, "check", str(config))
    assert checked.returncode == 1, checked.stderr
    (line,) = checked.stdout.splitlines()
    assert line.startswith(
        f"{config}: callbacks[0]: plugin 'ctrl_c' (sara-test-ctrl-c==1.0, target 'sara_test_ctrl_c:Plugin') failed "
        "to import: KeyboardInterrupt; importing it must not raise KeyboardInterrupt (the user's Ctrl-C): report it "
        "to the authors of sara-test-ctrl-c"
    )
    assert checked.stderr == f"{config}: 1 problem\n"
    shown = run(fake_site, "show", "ctrl_c")
    assert shown.returncode == 1
    assert shown.stderr.startswith("sara-callbacks: error: plugin 'ctrl_c' (sara-test-ctrl-c==1.0, target ")
    assert "interrupted" not in checked.stderr + shown.stderr


def test_ctrl_c_while_a_plugin_imports_still_interrupts_the_command(
    fake_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    marker = tmp_path / "importing"
    monkeypatch.setenv("SARA_TEST_MARKER", str(marker))
    fake_site.add_distribution(
        "sara-test-slow", "1.0", {"slow": "sara_test_slow:Plugin"}, {"sara_test_slow": SLOW_IMPORT}
    )
    config = _write(tmp_path, "train.toml", 'callbacks = ["slow"]\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "altametris.sara.core", "check", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fake_site.env(),
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, (out, err)
    assert err == "sara-callbacks: interrupted\n"


def test_show_of_a_plugin_without_a_docstring_says_so_instead_of_quoting_base_callback(fake_site: FakeSite) -> None:
    import inspect

    from altametris.sara.core.base_callback import BaseCallback

    fake_site.add_distribution(
        "sara-test-nodoc",
        "1.0",
        {"nodoc": "sara_test_nodoc:NoDoc"},
        {
            "sara_test_nodoc": """
                from altametris.sara.core.base_callback import BaseCallback

                class NoDoc(BaseCallback):
                    def on_train_start(self, **kwargs):
                        pass
            """
        },
    )
    result = run(fake_site, "show", "nodoc")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2:5] == ["", "no description", ""]
    base_words = (inspect.getdoc(BaseCallback) or "").splitlines()[0]
    assert base_words not in result.stdout
    described = json.loads(run(fake_site, "show", "nodoc", "--json").stdout)
    assert described["doc"] == ""


# -- check --trainer -------------------------------------------------------------------------------------------------


def test_check_with_a_trainer_warns_about_each_hook_that_trainer_never_calls(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "clipper.py",
        """
        from altametris.sara.core import BaseCallback

        class Clipper(BaseCallback):
            def on_after_backward(self, batch, **kwargs): ...
            def on_validation_batch_start(self, batch, **kwargs): ...
        """,
    )
    config = _write(tmp_path, "train.toml", 'callbacks = ["clipper:Clipper", "history"]\n')
    keras = run(None, "check", str(config), "--allow-import-paths", "--trainer", "keras", cwd=tmp_path)
    assert keras.returncode == 0, keras.stderr
    warned = [line for line in keras.stdout.splitlines() if "warning:" in line]
    assert len(warned) == 1
    assert "clipper:Clipper overrides on_after_backward" in warned[0]
    assert "'keras' trainer never calls" in warned[0]
    hf = run(None, "check", str(config), "--allow-import-paths", "--trainer", "transformers", cwd=tmp_path)
    assert [line.split(" overrides ")[1].split(",")[0] for line in hf.stdout.splitlines() if "warning:" in line] == [
        "on_after_backward",
        "on_validation_batch_start",
    ]
    lightning = run(None, "check", str(config), "--allow-import-paths", "--trainer", "lightning", cwd=tmp_path)
    assert "warning:" not in lightning.stdout
    assert "OK, 2 callbacks" in lightning.stdout


def test_check_refuses_an_unknown_trainer_naming_the_known_ones(tmp_path: Path) -> None:
    config = _write(tmp_path, "train.toml", 'callbacks = ["history"]\n')
    result = run(None, "check", str(config), "--trainer", "tensorflow")
    assert result.returncode == 2
    assert "'tensorflow'" in result.stderr
    assert all(name in result.stderr for name in ("fit", "keras", "lightning", "transformers"))
    assert "Traceback" not in result.stderr


# -- check: the call order ---------------------------------------------------------------------------------------------


def test_check_prints_the_call_order_and_the_rules_that_made_it_when_it_is_not_the_configs(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        "train.toml",
        """
        callbacks = [
            { name = "jsonl_logger", params = { path = "m.jsonl" }, after = ["checkpoint"] },
            { name = "checkpoint", params = { dirpath = "ckpt" } },
            "history",
        ]
        """,
    )
    result = run(None, "check", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"{config}: call order: history, checkpoint, jsonl_logger",
        "  jsonl_logger after checkpoint (callbacks[0].after)",
        "  checkpoint after the callbacks that save no checkpoint (saves_checkpoints)",
    ]
    plain = _write(tmp_path, "plain.toml", 'callbacks = ["history", "nan_guard"]\n')
    assert run(None, "check", str(plain)).stdout.count("\n") == 1  # the config's own order: nothing more to say


def test_check_reports_a_cycle_as_one_problem_without_a_traceback(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        "train.yaml",
        "callbacks:\n  - {name: history, after: [nan_guard]}\n  - {name: nan_guard, after: [history]}\n",
    )
    result = run(None, "check", str(config))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{config}: callbacks: the declared order has a cycle: ")
    assert result.stderr == f"{config}: 1 problem\n"
