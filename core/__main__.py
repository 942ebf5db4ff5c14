"""``python -m altametris.sara.core``: the ``sara-callbacks`` command."""

from __future__ import annotations

if __name__ == "__main__":
    from .cli import main

    raise SystemExit(main())
