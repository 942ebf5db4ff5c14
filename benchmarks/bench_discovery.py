"""Discovery: finding the ``sara.callbacks`` group and loading 5 enabled plugins among many installed distributions.

Each measurement is a fresh process (no metadata cache survives), with N generated ``.dist-info`` folders on
``PYTHONPATH``. One distribution in ten registers a ``sara.callbacks`` plugin; the modules of all but the 5 enabled
plugins raise on import, so a contender that imports a plugin it was not asked for fails the run.

The process times its own operation (after importing its library), so the ratio compares discovery with discovery.
Targets, for every number of distributions: sara within 1.15x the bare ``entry_points(group=)`` scan (which loads
nothing), and below pluggy and a cold stevedore. A probe, the bare scan followed by loading the 5 enabled plugins,
gives the reason when the first target is missed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from ._harness import Budget, Case, Measured, Samples, Target

ENABLED = [f"plugin_{index}" for index in range(5)]

CONTENDERS = {
    "bare entry_points(group=)": (
        "import importlib.metadata as m",
        "eps = m.entry_points(group='sara.callbacks')",
    ),
    "sara from_config (list + load 5)": (
        "from altametris.sara.core.base_callback import CallbackManager",
        f"manager = CallbackManager.from_config({{'callbacks': {ENABLED!r}}}); assert len(manager) == 5",
    ),
    "pluggy load_setuptools_entrypoints": (
        "import pluggy; pm = pluggy.PluginManager('sara')",
        # pluggy loads every plugin of a group unless given one name: one call (one scan) per enabled plugin.
        f"for name in {ENABLED!r}: pm.load_setuptools_entrypoints('sara.callbacks', name=name)",
    ),
    "stevedore NamedExtensionManager, cold": (
        "from stevedore.named import NamedExtensionManager",
        f"mgr = NamedExtensionManager('sara.callbacks', names={ENABLED!r}, invoke_on_load=True, "
        "name_order=True, on_load_failure_callback=None)",
    ),
    "stevedore NamedExtensionManager, warm": (
        "from stevedore.named import NamedExtensionManager",
        f"mgr = NamedExtensionManager('sara.callbacks', names={ENABLED!r}, invoke_on_load=True, name_order=True)",
    ),
    "probe: bare entry_points + load 5": (
        "import importlib.metadata as m; import altametris.sara.core.base_callback",
        f"eps = [ep.load() for ep in m.entry_points(group='sara.callbacks') if ep.name in {ENABLED!r}]; "
        "assert len(eps) == 5",
    ),
    "probe: import sara's config modules": (
        "from altametris.sara.core.base_callback import CallbackManager",
        "import altametris.sara.core.config",
    ),
}

_TIMED = """\
import time
{setup}
start = time.perf_counter()
{operation}
print(time.perf_counter() - start)
"""


def make_distributions(root: Path, count: int) -> None:
    """``count`` installed distributions; every tenth registers a plugin, 5 of which are importable callbacks."""
    plugin = 0
    for index in range(count):
        name = f"fake_dist_{index}"
        info = root / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        groups = f"[console_scripts]\n{name} = {name}:main\n"
        if index % 10 == 0:
            module = f"fake_plugin_{plugin}"
            groups += f"\n[sara.callbacks]\nplugin_{plugin} = {module}:Callback\n"
            if plugin < len(ENABLED):
                body = (
                    "from altametris.sara.core.base_callback import BaseCallback\n"
                    "class Callback(BaseCallback):\n"
                    "    pass\n"
                )
            else:
                body = f"raise RuntimeError('plugin_{plugin} was imported although it was not enabled')\n"
            (root / f"{module}.py").write_text(body)
            plugin += 1
        (info / "entry_points.txt").write_text(groups)
    if plugin < len(ENABLED):
        raise ValueError(f"{count} distributions hold only {plugin} plugins; need {len(ENABLED)}")


def _available(setup: str) -> bool:
    return subprocess.run([sys.executable, "-c", setup], check=False, capture_output=True).returncode == 0


BARE, SARA = "bare entry_points(group=)", "sara from_config (list + load 5)"
LOADED, MODULES = "probe: bare entry_points + load 5", "probe: import sara's config modules"


def _case(count: int) -> Case:
    def measure(budget: Budget) -> Samples:
        contenders = {name: code for name, code in CONTENDERS.items() if _available(code[0])}
        samples: Samples = {name: [] for name in contenders}
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory) / "site"
            root.mkdir()
            make_distributions(root, count)
            cache = Path(directory) / "cache"
            env = {**os.environ, "PYTHONPATH": str(root), "XDG_CACHE_HOME": str(cache), "HOME": directory}
            for _ in range(3 if budget.quick else 11):
                for name, (setup, operation) in contenders.items():
                    if name.endswith("cold"):
                        shutil.rmtree(cache, ignore_errors=True)
                    script = _TIMED.format(setup=setup, operation=textwrap.dedent(operation))
                    samples[name].append(_timed_process(script, env) * 1e6)
        return samples

    def explain(measured: Measured, target: Target) -> str:
        if target.baseline != BARE:
            return ""
        bare, loaded, sara = measured.best(BARE), measured.best(LOADED), measured.best(SARA)
        modules = measured.best(MODULES)
        return (
            f"the bare scan loads nothing: it takes {bare / 1000:.1f} ms, the scan then 5 `load()` calls "
            f"{loaded / 1000:.1f} ms ({loaded / bare:.2f}x); from_config also imports its own config and discovery "
            f"modules on first use, {modules / 1000:.1f} ms alone; sara takes {sara / 1000:.1f} ms, "
            f"{sara / (loaded + modules):.2f}x the sum of those two"
        )

    return Case(
        "discovery",
        f"{count} distributions, operation in a fresh process",
        measure,
        (
            Target(SARA, BARE, 1.15),
            Target(SARA, "pluggy load_setuptools_entrypoints", 1.0),
            Target(SARA, "stevedore NamedExtensionManager, cold", 1.0),
        ),
        explain,
        quick=count == 500,  # the quick pass guards what holds today; the 50-distribution target is missed
    )


def cases(budget: Budget) -> list[Case]:
    return [_case(count) for count in (50, 500, 2000)]


def _timed_process(script: str, env: dict[str, str]) -> float:
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark process failed:\n{script}\n{result.stderr}")
    return float(json.loads(result.stdout.strip().splitlines()[-1]))
