"""The example plugin distribution: what a plugin author copies works, installed by hand here and by pip below."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from altametris.sara.core import discovery
from altametris.sara.core.base_callback import BaseCallback, CallbackManager
from altametris.sara.core.config import check_config

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .conftest import FakeSite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sara-plugin-example"

TOML = """\
callbacks = [
    { name = "metric_alert", params = { monitor = "loss", threshold = 1.0, label = "first" } },
    "history",
    { name = "metric_alert", params = { monitor = "val_loss", threshold = 2.0, label = "second" } },
]
"""

YAML = """\
callbacks:
  - name: metric_alert
    params: {monitor: loss, threshold: 1.0, label: first}
  - history
  - name: metric_alert
    params: {monitor: val_loss, threshold: 2.0, label: second}
"""

DRIVER = """\
import logging, sys
from altametris.sara.core.base_callback import CallbackManager

logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
manager = CallbackManager.from_config(sys.argv[1])
manager.on_train_start()
for epoch, loss in enumerate([0.5, 1.5, 0.2, 3.0]):
    manager.on_epoch_start(epoch)
    manager.on_epoch_end(epoch, {"loss": loss, "val_loss": loss})
manager.on_train_end()
print(manager)
"""

EXPECTED_RUN = [
    "[first] epoch 1: loss = 1.5",
    "[first] epoch 3: loss = 3",
    "[second] epoch 3: val_loss = 3",
    "CallbackManager(callbacks=[MetricAlert, History, MetricAlert])",
]


def _pyproject() -> dict[str, object]:
    with (EXAMPLE / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


@pytest.fixture
def example_installed(fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """The example distribution as pip would install it: its metadata in the site, its package importable."""
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    fake_site.add_distribution(project["name"], project["version"], project["entry-points"]["sara.callbacks"])
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    yield fake_site
    for module in [name for name in sys.modules if name.startswith("sara_plugin_example")]:
        del sys.modules[module]


def test_the_example_registers_its_callback_in_the_sara_group() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["entry-points"] == {
        "sara.callbacks": {"metric_alert": "sara_plugin_example.metric_alert:MetricAlert"}
    }
    assert any(dependency.startswith("sara-callbacks") for dependency in project["dependencies"])
    for needed in ("README.md", "src/sara_plugin_example/__init__.py", "src/sara_plugin_example/py.typed", "tests"):
        assert (EXAMPLE / needed).exists(), needed


def test_sara_finds_the_example_by_name(example_installed: FakeSite) -> None:
    info = discovery.find_plugin("metric_alert")
    assert info.requirement == "sara-plugin-example==0.1.0"
    factory = info.load()
    assert isinstance(factory, type)
    assert issubclass(factory, BaseCallback)


@pytest.mark.parametrize(("name", "text"), [("train.toml", TOML), ("train.yaml", YAML)])
def test_a_config_enables_the_example_in_order_with_its_parameters(
    example_installed: FakeSite, tmp_path: Path, name: str, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / name
    path.write_text(text)
    manager = CallbackManager.from_config(path)
    first, _history, second = manager.callbacks
    assert (first.label, first.monitor, first.threshold) == ("first", "loss", 1.0)  # type: ignore[attr-defined]
    assert (second.label, second.monitor, second.threshold) == ("second", "val_loss", 2.0)  # type: ignore[attr-defined]
    with caplog.at_level("WARNING", logger="sara_plugin_example"):
        for epoch, loss in enumerate([0.5, 1.5, 0.2, 3.0]):
            manager.on_epoch_end(epoch, {"loss": loss, "val_loss": loss})
    assert [record.getMessage() for record in caplog.records] == EXPECTED_RUN[:3]


def test_a_wrong_parameter_of_the_example_is_refused_before_building(example_installed: FakeSite) -> None:
    problems = check_config({"callbacks": [{"name": "metric_alert", "params": {"threshold": "1.0", "mode": 1}}]})
    messages = [str(problem) for problem in problems.problems]
    assert messages[0].startswith("callbacks[0].params.threshold: plugin 'metric_alert' (sara-plugin-example==0.1.0)")
    assert "write the number without quotes" in messages[0]
    assert "parameter 'mode' is unknown" in messages[1]


def test_the_examples_own_tests_pass(example_installed: FakeSite) -> None:
    env = example_installed.env()
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE / "src"), env["PYTHONPATH"]])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" not in result.stdout  # the entry-point tests ran: the distribution is installed here


@pytest.mark.slow
def test_pip_installed_example_is_listed_and_enabled_by_name_from_toml_and_yaml(tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    bin_dir = environment / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    # pip builds a local project in its own folder (build/, *.egg-info): build copies, and leave the work tree alone.
    ignore = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__", "runs")
    project = shutil.copytree(ROOT, tmp_path / "sara-callbacks", ignore=ignore)
    example = shutil.copytree(EXAMPLE, tmp_path / "sara-plugin-example", ignore=ignore)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(project), str(example)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    listing = subprocess.run(
        [str(bin_dir / "sara-callbacks"), "list"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line.split() for line in listing.stdout.splitlines()[1:]}
    assert rows["metric_alert"] == [
        "metric_alert",
        "sara-plugin-example",
        "0.1.0",
        "sara_plugin_example.metric_alert:MetricAlert",
    ]
    assert "history" in rows

    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    for name, text in (("train.toml", TOML), ("train.yaml", YAML)):
        config = tmp_path / name
        config.write_text(text)
        checked = subprocess.run(
            [str(bin_dir / "sara-callbacks"), "check", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout
        run = subprocess.run(
            [str(python), str(driver), str(config)], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() == EXPECTED_RUN
