"""Reading one entry-point group from the installed distributions' metadata, without importing anything.

Nothing here is public: :mod:`~altametris.sara.core.discovery` calls :func:`entries` once per process.

Two readers give the same answer:

* :func:`scan_directories`, for the usual environment (every distribution a ``*.dist-info`` or ``*.egg-info`` folder in
  a directory of ``sys.path``): it lists each directory once, keeps the first distribution of each name (as
  ``importlib.metadata`` does), and reads ``entry_points.txt`` with a substring test before any parsing. It costs a
  quarter of ``importlib.metadata.entry_points(group=...)``, whose import alone costs about as much as the scan of
  500 distributions;
* :func:`scan_metadata`, through ``importlib.metadata`` (the ``importlib_metadata`` backport before Python 3.10), for
  anything else: a zip file or an egg on ``sys.path``, or a meta-path finder that provides distributions of its own.
  The test suite holds both readers to the same result.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

__all__: list[str] = []


class Entry(NamedTuple):
    """One entry point of the group, with the distribution that declares it."""

    name: str
    value: str
    distribution: str | None
    version: str | None


def _headers(text: str | None) -> tuple[str | None, str | None]:
    """The ``Name`` and ``Version`` fields of a core-metadata text, read from its header lines only."""
    name = version = None
    if not text:
        return name, version
    start, end = 0, len(text)
    while start < end and (name is None or version is None):
        stop = text.find("\n", start)
        stop = end if stop < 0 else stop
        line = text[start:stop].rstrip("\r")
        if not line:  # the headers end at the first blank line; the description follows
            break
        if line.startswith("Name:"):
            name = line[5:].strip() or None
        elif line.startswith("Version:"):
            version = line[8:].strip() or None
        start = stop + 1
    return name, version


def distribution_header(dist: Any) -> tuple[str | None, str | None]:
    """Name and version of an ``importlib.metadata`` distribution, without parsing its whole metadata.

    ``Distribution.name`` and ``.version`` each parse the whole file (README included) with the ``email`` package.
    """
    for filename in ("METADATA", "PKG-INFO"):
        try:
            text = dist.read_text(filename)
        except Exception:  # an unreadable or exotic distribution must not stop the listing
            text = None
        if text:
            return _headers(text)
    return None, None


def _folder_header(folder: str, child: str) -> tuple[str | None, str | None]:
    """Name and version of the distribution in ``folder``, from its metadata file, else from the folder's name."""
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, filename), encoding="utf-8", errors="replace") as file:
                head = file.read(8192)  # Name and Version are the second and third lines
                name, version = _headers(head)
                if (name is None or version is None) and len(head) == 8192:
                    name, version = _headers(head + file.read())
        except OSError:
            continue
        if name is not None:
            return name, version
    stem = child.rpartition(".")[0]
    name, _, version = stem.partition("-")
    return name or None, version.partition("-")[0] or None


def _group_pairs(text: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of ``[group]`` in an ``entry_points.txt`` text (read as ``importlib.metadata``)."""
    pairs: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line.strip("[]") == group
            continue
        if inside:
            name, equals, value = line.partition("=")
            if equals:  # importlib.metadata fails on the whole environment here; one broken line harms nothing
                pairs.append((name.strip(), value.strip()))
    return pairs


def normalize(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503): ``Sara_Foo.bar`` -> ``sara-foo-bar``."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _normalized(stem: str) -> str:
    """A distribution's name from its metadata folder's name (``Sara_Foo-1.0.dist-info`` -> ``sara-foo``)."""
    return normalize(stem.rpartition(".")[0].partition("-")[0])


def _standard_finders() -> tuple[object, ...]:
    import importlib.machinery

    finders: list[object] = [importlib.machinery.PathFinder]
    backport = sys.modules.get("importlib_metadata")
    if backport is not None:
        finders.append(getattr(backport, "MetadataPathFinder", None))
    return tuple(finders)


def _foreign_finder() -> bool:
    """Whether a meta-path finder other than the standard ones provides distributions."""
    standard = _standard_finders()
    return any(
        getattr(finder, "find_distributions", None) is not None
        and not any(finder is known or type(finder) is known for known in standard)
        for finder in sys.meta_path
    )


def _read_folder(directory: str, child: str, marker: str, group: str) -> list[Entry]:
    folder = os.path.join(directory, child)
    try:
        with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError):
        return []
    if marker not in text:  # most distributions: no parsing at all
        return []
    pairs = _group_pairs(text, group)
    if not pairs:
        return []
    distribution, version = _folder_header(folder, child)
    return [Entry(name, value, distribution, version) for name, value in pairs]


def scan_directories(group: str) -> list[Entry] | None:
    """The group's entry points, read from the folders of ``sys.path``; ``None`` when that is not enough."""
    if _foreign_finder():
        return None  # it may know distributions that no folder shows: let importlib.metadata ask it
    marker = f"[{group}]"
    seen: set[str] = set()
    found: list[Entry] = []
    path: list[object] = list(sys.path)
    for entry in path:
        if not isinstance(entry, str):
            continue
        directory = entry or "."
        if directory.lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(directory)
        except NotADirectoryError:
            return None  # a zip file
        except OSError:
            continue
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                normalized = _normalized(low)
                if normalized not in seen:  # the first of a name on sys.path wins, as in importlib.metadata
                    seen.add(normalized)
                    found += _read_folder(directory, child, marker, group)
    return found


def scan_metadata(group: str) -> list[Entry]:
    """The group's entry points, through ``importlib.metadata`` (or its backport)."""
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points
    else:  # pragma: no cover - the standard library's selection API arrived in 3.10
        from importlib_metadata import entry_points

    headers: dict[int, tuple[Any, tuple[str | None, str | None]]] = {}
    found: list[Entry] = []
    for entry_point in entry_points(group=group):
        dist = getattr(entry_point, "dist", None)
        header: tuple[str | None, str | None] = (None, None)
        if dist is not None:
            cached = headers.get(id(dist))
            if cached is None:
                cached = headers[id(dist)] = (dist, distribution_header(dist))  # keeps ``dist`` alive: ids stay unique
            header = cached[1]
        found.append(Entry(entry_point.name, entry_point.value.strip(), *header))
    return found


def entries(group: str) -> list[Entry]:
    """The group's entry points, by the cheapest reader that sees this environment whole."""
    found = scan_directories(group)
    return scan_metadata(group) if found is None else found
