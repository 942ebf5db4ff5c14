"""Discovery: finding the ``sara.callbacks`` group and loading 5 enabled plugins among many installed distributions.

Each measurement is a fresh process (no metadata cache survives), with N generated ``.dist-info`` folders on
``PYTHONPATH``. One distribution in ten registers a ``sara.callbacks`` plugin; the modules of all but the 5 enabled
plugins raise on import, so a contender that imports a plugin it was not asked for fails the run.

The process times its own operation (after importing its library), so the ratio compares discovery with discovery;
whole-process wall times are reported beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from ._harness import Row

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


def run(quick: bool = False) -> list[Row]:
    rounds = 5 if quick else 11
    rows: list[Row] = []
    contenders = {name: code for name, code in CONTENDERS.items() if _available(code[0])}
    for count in (50, 500, 2000):
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory) / "site"
            root.mkdir()
            make_distributions(root, count)
            cache = Path(directory) / "cache"
            env = {**os.environ, "PYTHONPATH": str(root), "XDG_CACHE_HOME": str(cache), "HOME": directory}
            inner: dict[str, list[float]] = {name: [] for name in contenders}
            outer: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(rounds):
                for name, (setup, operation) in contenders.items():
                    if name.endswith("cold"):
                        shutil.rmtree(cache, ignore_errors=True)
                    script = _TIMED.format(setup=setup, operation=textwrap.dedent(operation))
                    inner_s, outer_s = _timed_process(script, env)
                    inner[name].append(inner_s)
                    outer[name].append(outer_s)
            base = min(inner["bare entry_points(group=)"])
            for name in contenders:
                low = min(inner[name])
                target, met = "", None
                if name.startswith("sara") and count >= 500:
                    target, met = "<= 1.15", low / base <= 1.15
                rows.append(
                    Row(
                        "discovery",
                        f"{count} distributions, operation in a fresh process",
                        name,
                        low * 1e6,
                        statistics.median(inner[name]) * 1e6,
                        baseline="bare entry_points(group=)",
                        ratio=low / base,
                        target=target,
                        met=met,
                    )
                )
            for name in contenders:
                rows.append(
                    Row(
                        "discovery (whole process)",
                        f"{count} distributions, process wall time",
                        name,
                        min(outer[name]) * 1e6,
                        statistics.median(outer[name]) * 1e6,
                    )
                )
    return rows


def _timed_process(script: str, env: dict[str, str]) -> tuple[float, float]:
    import time

    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env)
    outer = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"benchmark process failed:\n{script}\n{result.stderr}")
    return float(json.loads(result.stdout.strip().splitlines()[-1])), outer
