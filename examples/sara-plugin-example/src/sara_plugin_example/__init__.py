"""An example plugin distribution for SARA callbacks: the template a plugin author copies.

It registers one callback, :class:`~sara_plugin_example.metric_alert.MetricAlert`, under the name ``metric_alert`` in
the ``sara.callbacks`` entry-point group (see ``pyproject.toml``).
"""

from __future__ import annotations

from .metric_alert import MetricAlert

__all__ = ["MetricAlert"]
