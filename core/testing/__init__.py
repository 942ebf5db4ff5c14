"""A testing kit for callback authors: run a callback through a simulated training, record it, check it conforms.

Nothing here needs a model, a framework or pytest:

* :func:`simulate` runs callbacks through the reference loop :func:`~altametris.sara.core.loop.fit` for a few epochs
  and batches with made-up metrics, optionally failing or asking for a stop at a chosen hook, and returns a
  :class:`Recording` of every hook call, in order;
* :class:`EventRecorder` is the callback that records them; put it in any manager, also a real trainer's;
* :func:`check_callback` verifies that a callback fits the contract: hook signatures that fit the hookspecs, no
  misspelt hook, constructor parameters that ``sara-callbacks show`` and the config checks can read, and a state that
  survives a JSON round trip. It raises :class:`~altametris.sara.core.exceptions.ConformanceError` listing every
  problem.

With pytest, the plugin that ``pip install sara-callbacks`` registers (``pytest11`` entry point ``sara``) adds the
fixtures ``sara_simulate`` (:func:`simulate`, writing into the test's ``tmp_path``) and ``sara_recorder`` (a fresh
:class:`EventRecorder`).

Example:
    >>> from altametris.sara.core.base_callback import BaseCallback
    >>> from altametris.sara.core.testing import simulate
    >>> class Count(BaseCallback):
    ...     def __init__(self):
    ...         self.batches = 0
    ...     def on_batch_end(self, batch, metrics):
    ...         self.batches += 1
    >>> recording = simulate(Count(), epochs=2, batches=3)
    >>> recording.callbacks[0].batches
    6
    >>> recording.hooks[:4]
    ['on_train_start', 'on_epoch_start', 'on_batch_start', 'on_after_backward']
    >>> recording = simulate(Count(), fail_at=("on_batch_end", 1, 0))
    >>> recording.hooks[-2:], type(recording.error).__name__
    (['on_batch_end', 'on_exception'], 'TrainingError')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports as _lazy_exports
from . import _types

if TYPE_CHECKING:
    from ._conformance import check_callback, conformance_problems
    from ._recording import Event, EventRecorder, Recording
    from ._simulation import HookPoint, SimulatedFailure, simulate

__all__ = [
    "BatchMetrics",
    "Event",
    "EventRecorder",
    "HookPoint",
    "PointLike",
    "Recording",
    "SimulatedFailure",
    "ValidationMetrics",
    "check_callback",
    "conformance_problems",
    "simulate",
]

BatchMetrics = _types.BatchMetrics
"""A batch's metrics for :func:`simulate`: one dict for every batch, or a function ``(epoch, batch) -> metrics``."""

ValidationMetrics = _types.ValidationMetrics
"""The validation metrics for :func:`simulate`: one dict for every epoch, or a function ``epoch -> metrics``."""

PointLike = _types.PointLike
"""What :func:`simulate` accepts for ``fail_at`` and ``stop_at``: a :class:`HookPoint`, a hook name,
``(hook, epoch)`` or ``(hook, epoch, batch)``."""

# The kit is imported on first use: the pytest plugin (``_pytest_plugin``) lives in this package and is loaded into
# every pytest run of an environment that has SARA, and those runs should not pay for the kit until a test uses it.
_LAZY = {
    "check_callback": "_conformance",
    "conformance_problems": "_conformance",
    "Event": "_recording",
    "EventRecorder": "_recording",
    "Recording": "_recording",
    "HookPoint": "_simulation",
    "SimulatedFailure": "_simulation",
    "simulate": "_simulation",
}


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)
