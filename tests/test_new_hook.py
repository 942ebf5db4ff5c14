"""Adding a hook is one place: its hookspec and its no-op in ``BaseCallback``, and every part of the package knows it.

A copy of the installed ``altametris.sara.core`` gets one more hookspec, ``on_after_data_load(batch)`` of scope
``"batch"``, and its no-op in ``BaseCallback``, nothing else; a Python process that imports the copy (``altametris``
and ``altametris.sara`` are namespace packages: the copy's folder first on ``PYTHONPATH`` is enough) then checks that
the manager, triggers, timings, the testing kit, ``show`` and ``check`` all know the new hook. The copy also holds a
real installed plugin (a ``.dist-info`` with its entry point) whose callback overrides it, for ``show`` and ``check``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from altametris.sara import core

pytestmark = pytest.mark.slow

HOOKSPEC = '''
@_spec("batch")
def on_after_data_load(batch: int) -> None:
    """Called once the data of every training batch is loaded.

    Args:
        batch: the batch number within the epoch, 0-indexed.
    """


'''

NO_OP = '''
    def on_after_data_load(self, batch: int, **kwargs: Any) -> None:
        """Called once the data of every training batch is loaded."""

'''

PLUGIN = """
    from altametris.sara.core.base_callback import BaseCallback


    class LoadProbe(BaseCallback):
        '''Counts the batches loaded.'''

        def __init__(self) -> None:
            self.batches = []

        def on_after_data_load(self, batch, **kwargs):
            self.batches.append(batch)
"""

CHECKS = """
    import inspect
    import json
    import logging
    import sys

    import altametris.sara.core as core
    from altametris.sara.core import BaseCallback, CallbackManager, TrainingError
    from altametris.sara.core.testing import EventRecorder

    results = {"imported": core.__file__, "hooks": list(core.HOOKS)}


    def check(name):
        def run(function):
            try:
                results[name] = function()
            except Exception as error:  # reported, so that each check fails on its own
                results[name] = f"error: {type(error).__name__}: {error}"
        return run


    class Loaded(BaseCallback):
        def __init__(self):
            self.batches = []

        def on_after_data_load(self, batch, **kwargs):
            self.batches.append((batch, kwargs))


    class BatchEnd(BaseCallback):
        def __init__(self):
            self.batches = []

        def on_batch_end(self, batch, metrics, **kwargs):
            self.batches.append(batch)


    class Failing(BaseCallback):
        def on_after_data_load(self, batch):
            raise ValueError("no gradient")


    def train(manager, epochs=2, batches=5):
        manager.on_train_start()
        for epoch in range(epochs):
            manager.on_epoch_start(epoch)
            for batch in range(batches):
                manager.on_batch_start(batch)
                manager.on_after_data_load(batch)
                manager.on_batch_end(batch, {"loss": 1.0})
            manager.on_epoch_end(epoch, {"loss": 1.0})
        manager.on_train_end()


    @check("signature")
    def _():
        return str(inspect.signature(CallbackManager().on_after_data_load))


    @check("called")
    def _():
        loaded = Loaded()
        CallbackManager([loaded]).on_after_data_load(3, model="m")
        return loaded.batches


    @check("error")
    def _():
        manager = CallbackManager([Failing()])
        manager.on_epoch_start(1)
        try:
            manager.on_after_data_load(3)
        except TrainingError as error:
            return [str(error), error.hook, type(error.__cause__).__name__]
        return "no error"


    @check("trigger")
    def _():
        loaded, batch_end = Loaded(), BatchEnd()
        manager = CallbackManager()
        manager.add_callback(loaded, when="2ba")
        manager.add_callback(batch_end, when="2ba")
        train(manager)
        return [[batch for batch, _ in loaded.batches], batch_end.batches]


    @check("timings")
    def _():
        manager = CallbackManager([Loaded()], profile=True)
        logging.disable(logging.CRITICAL)  # the table logged at on_train_end
        train(manager)
        return [[row.callback, row.hook, row.calls] for row in manager.timings.rows]


    @check("recorder")
    def _():
        recorder = EventRecorder()
        manager = CallbackManager([recorder])
        manager.on_epoch_start(1)
        manager.on_batch_start(2)
        manager.on_after_data_load(2, model="m")
        event = recorder.events[-1]
        return [event.hook, event.epoch, event.batch, event.arguments, event.context]


    json.dump(results, sys.stdout)
"""


def _run(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")]))}
    env.pop("SARA_PROFILE", None)
    return subprocess.run(
        [sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the installed core with ``on_after_data_load`` added, and a plugin overriding it beside it."""
    root = tmp_path_factory.mktemp("new_hook")
    package = root / "altametris" / "sara" / "core"
    shutil.copytree(Path(core.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    hookspecs = package / "hookspecs.py"
    source = hookspecs.read_text(encoding="utf-8")
    assert source.count("\nclass HookSpec(") == 1
    hookspecs.write_text(source.replace("\nclass HookSpec(", HOOKSPEC + "class HookSpec(", 1), encoding="utf-8")
    callback = package / "_callback.py"
    source = callback.read_text(encoding="utf-8")
    anchor = "\n    def on_exception(self"
    assert source.count(anchor) == 1
    callback.write_text(source.replace(anchor, NO_OP.rstrip("\n") + "\n" + anchor, 1), encoding="utf-8")

    info = root / "sara_test_new_hook-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sara-test-new-hook\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[sara.callbacks]\nload_probe = sara_test_new_hook:LoadProbe\n", encoding="utf-8"
    )
    (root / "sara_test_new_hook.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    (root / "config.toml").write_text('[[callbacks]]\nname = "load_probe"\nwhen = "2ba"\n', encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def results(copy: Path) -> dict[str, Any]:
    done = _run(copy, "-c", textwrap.dedent(CHECKS))
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    print(found)  # shown when a test fails
    assert found["imported"].startswith(str(copy)), found["imported"]  # the copy, not the installed package
    return found


def test_the_copy_has_one_hook_more_than_the_package_and_it_is_the_new_one(results: dict[str, Any]) -> None:
    assert "on_after_data_load" not in core.HOOKS  # a hook the package does not have: the test cannot pass by itself
    assert sorted(results["hooks"]) == sorted([*core.HOOKS, "on_after_data_load"])


def test_the_manager_has_a_method_for_the_new_hook_with_the_hookspecs_signature(results: dict[str, Any]) -> None:
    assert results["signature"] == "(batch, **kwargs)"


def test_the_manager_calls_a_callback_overriding_the_new_hook_with_its_context(results: dict[str, Any]) -> None:
    assert results["called"] == [[3, {"model": "m"}]]


def test_a_failure_in_the_new_hook_is_a_training_error_naming_the_callback_the_hook_and_the_position(
    results: dict[str, Any],
) -> None:
    message, hook, cause = results["error"]
    assert "'Failing'" in message
    assert "on_after_data_load" in message
    assert "batch 3" in message
    assert "epoch 1" in message
    assert (hook, cause) == ("on_after_data_load", "ValueError")


def test_a_trigger_gates_the_new_hook_as_it_gates_the_batch_hooks(results: dict[str, Any]) -> None:
    loaded, batch_end = results["trigger"]
    assert loaded == batch_end
    assert len(loaded) == 5  # every 2nd of 10 batches


def test_timings_report_a_row_for_the_new_hook(results: dict[str, Any]) -> None:
    assert ["Loaded", "on_after_data_load", 10] in results["timings"]


def test_the_testing_kits_event_recorder_records_the_new_hook(results: dict[str, Any]) -> None:
    hook, epoch, _batch, arguments, context = results["recorder"]
    assert (hook, epoch, arguments, context) == ("on_after_data_load", 1, {"batch": 2}, {"model": "m"})


def test_the_event_recorder_gives_an_event_of_the_new_hook_its_batch(results: dict[str, Any]) -> None:
    assert results["recorder"][2] == 2


def test_show_lists_the_new_hook_among_the_hooks_of_a_plugin_overriding_it(copy: Path) -> None:
    done = _run(copy, "-m", "altametris.sara.core", "show", "load_probe")
    assert done.returncode == 0, done.stderr
    assert "hooks: on_after_data_load" in done.stdout.splitlines(), done.stdout


def test_check_accepts_a_config_of_a_plugin_overriding_the_new_hook(copy: Path) -> None:
    done = _run(copy, "-m", "altametris.sara.core", "check", "config.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK, 1 callback: load_probe (when: " in done.stdout, done.stdout
