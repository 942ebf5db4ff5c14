"""The built-in callbacks of SARA callbacks, one module each.

They are ordinary plugins: ``pyproject.toml`` registers each under the ``sara.callbacks`` entry-point group, exactly
as a third-party distribution would, and the core knows none of them by name. Importing this package imports none
of them.
"""

__all__: list[str] = []
