"""The pytest plugin of the testing kit: fixtures for callback authors.

``pip install sara-callbacks`` registers it under the ``pytest11`` entry point ``sara``, so that any test suite of
an environment where SARA callbacks is installed has the fixtures below (disable it with ``-p no:sara``). It imports
the kit only when a test asks for a fixture.

Example (a test module of a plugin's own distribution)::

    from altametris.sara.core.testing import check_callback
    from my_plugin import MyCallback

    def test_it_conforms():
        check_callback(MyCallback, plugin_name="my_plugin")

    def test_it_closes_its_file_when_the_training_fails(sara_simulate):
        recording = sara_simulate(MyCallback(path="out.csv"), fail_at=("on_batch_end", 1, 0))
        assert recording.hooks[-1] == "on_exception"
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from . import EventRecorder, Recording

__all__ = ["sara_recorder", "sara_simulate"]


@pytest.fixture
def sara_simulate(tmp_path: Path) -> functools.partial[Recording]:
    """:func:`altametris.sara.core.testing.simulate`, with ``output_dir`` set to the test's ``tmp_path``.

    File-writing callbacks (relative paths) write into the test's temporary folder; pass ``output_dir`` to change it.
    """
    from . import simulate

    return functools.partial(simulate, output_dir=tmp_path)


@pytest.fixture
def sara_recorder() -> EventRecorder:
    """A fresh :class:`altametris.sara.core.testing.EventRecorder`: put it first in a manager to record every event."""
    from . import EventRecorder

    return EventRecorder()
