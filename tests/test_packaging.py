"""What ``pip install sara-callbacks`` gives: a typed wheel whose documented example runs in a fresh environment."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(ROOT)],
        check=True,
    )
    (built,) = out.glob("sara_callbacks-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_ships_both_packages_typed_and_no_namespace_init(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "altametris/sara/core/py.typed" in names
    assert "altametris/sara/plugins/py.typed" in names
    assert "altametris/sara/core/base_callback.py" in names
    assert "altametris/sara/core/hookspecs.py" in names
    # ``altametris`` and ``altametris.sara`` are namespace packages that other distributions share.
    assert "altametris/__init__.py" not in names
    assert "altametris/sara/__init__.py" not in names
    assert not any(name.startswith(("tests/", "core/", "plugins/")) for name in names)


@pytest.mark.slow
def test_the_seed_example_prints_its_line_in_a_fresh_virtual_environment(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    result = subprocess.run(
        [str(python), str(ROOT / "examples" / "seed_example.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout == "Epoch 1: loss=0.5\n"
