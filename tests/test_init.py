"""The package's public API: one import, every public name, and nothing heavy until it is used."""

from __future__ import annotations

import subprocess
import sys

import altametris.sara.core as sara
import pytest


def test_every_public_name_resolves_once() -> None:
    assert len(set(sara.__all__)) == len(sara.__all__)
    for name in sara.__all__:
        assert getattr(sara, name) is not None, name


def test_lazy_names_are_the_objects_of_their_modules() -> None:
    from altametris.sara.core import config, control, discovery, loop

    assert sara.fit is loop.fit
    assert sara.TrainingControl is control.TrainingControl
    assert sara.available_plugins is discovery.available_plugins
    assert sara.load_callbacks is config.load_callbacks


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        sara.no_such_name  # noqa: B018


def test_importing_the_core_imports_no_plugin_no_metadata_reader_and_no_logging() -> None:
    code = (
        "import sys, altametris.sara.core\n"
        "heavy = [m for m in sys.modules if m.startswith('altametris.sara.plugins.') or m in "
        "('importlib.metadata', 'importlib_metadata', 'logging', 'altametris.sara.core.config', "
        "'altametris.sara.core.discovery', 'altametris.sara.core.loop', 'yaml', 'difflib')]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
