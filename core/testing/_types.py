"""The argument types of :func:`~altametris.sara.core.testing.simulate`, apart so that naming them imports nothing.

Nothing here is public: :mod:`altametris.sara.core.testing` re-exports them with their documentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Union

if TYPE_CHECKING:
    from ._simulation import HookPoint

__all__ = ["BatchMetrics", "PointLike", "ValidationMetrics"]

BatchMetrics = Union["dict[str, float]", Callable[[int, int], "dict[str, float]"]]
ValidationMetrics = Union["dict[str, float]", Callable[[int], "dict[str, float]"]]
PointLike = Union["HookPoint", str, "tuple[str]", "tuple[str, int | None]", "tuple[str, int | None, int | None]"]
