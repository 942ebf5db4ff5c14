"""Every example in the package's docstrings runs, and prints what it says it prints."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import altametris.sara.core
import altametris.sara.plugins
import pytest


def _modules() -> list[str]:
    names = []
    for package in (altametris.sara.core, altametris.sara.plugins):
        names.append(package.__name__)
        for info in pkgutil.iter_modules(package.__path__, prefix=f"{package.__name__}."):
            if not info.name.endswith(".__main__"):
                names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, module_name):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} doctest example(s) failed in {module_name}"


def test_the_core_has_runnable_examples() -> None:
    finder = doctest.DocTestFinder(exclude_empty=True)
    module = importlib.import_module("altametris.sara.core.base_callback")
    assert sum(len(test.examples) for test in finder.find(module)) >= 5
