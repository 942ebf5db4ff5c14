"""Reading config files, and the words config errors are made of. Nothing here is public.

:mod:`~altametris.sara.core.config` reads a file with :func:`read_file` (TOML, YAML with ``yaml.safe_load``, JSON),
and measures the whole document with :func:`check_bounds` (value count and depth) before it walks it; YAML's nodes are
measured before they are built, and a table that gives a key twice (JSON, YAML) is refused at its place. Whatever a
parser raises becomes a :class:`~altametris.sara.core.exceptions.ConfigError` that names the file (and the line when
the parser tells it): a 5000-digit number and 100000 nested brackets included.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, NamedTuple, Optional

from ..exceptions import ConfigError
from ..messages import PATH_LIMIT, VALUE_LIMIT, describe_error, plain_text, safe_repr

__all__: list[str] = []

SUPPORTED_EXTENSIONS = (".toml", ".yaml", ".yml", ".json")
"""The file extensions :func:`~altametris.sara.core.config.read_config` knows."""


def type_word(value: object) -> str:
    """A config value's type, in the words of config files."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (str, "string"), (int, "integer"), (float, "float"), (list, "list")):
        if isinstance(value, kind):
            return name
    if isinstance(value, Mapping):
        return "table"
    return type(value).__qualname__


def located(path: str | None, key: str | None, message: str) -> str:
    if path is not None:  # a file name with control characters, or a huge one: escaped and cut in messages
        path = plain_text(path, PATH_LIMIT)
    return ": ".join(part for part in (path, key, message) if part)


def config_error(path: str | None, key: str | None, message: str, *, line: int | None = None) -> ConfigError:
    return ConfigError(located(path, key, message), path=path, key=key, line=line)


# -- reading files -------------------------------------------------------------------------------------------------


def _parse_toml(text: str, shown: str) -> object:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - tomllib arrived in 3.11
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        import re

        message = str(error)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if match is not None:
            line = int(match.group(1))
            where = f"line {line}, column {match.group(2)}"
        else:
            match = re.search(r"\s*\(at end of document\)$", message)
            if match is None:
                raise config_error(shown, None, f"invalid TOML: {message}") from error
            line = text.count("\n") + 1
            where = f"line {line} (the end of the file)"
        message = message[: match.start()]
        if message == "Cannot overwrite a value":  # a key set twice: tomllib does not say which
            message += _toml_key_hint(text, line)
        raise config_error(shown, where, f"invalid TOML: {message}", line=line) from error


def _toml_key_hint(text: str, line: int) -> str:
    """``": the key 'callbacks' is set twice ..."``, the key read from ``line`` of ``text``."""
    lines = text.splitlines()
    key, equals, _ = lines[line - 1].partition("=") if 0 < line <= len(lines) else ("", "", "")
    which = f"the key {safe_repr(key.strip(), VALUE_LIMIT)}" if equals and key.strip() else "a key"
    return f": {which} is set twice in one table (or a value is made a table); keep one of them"


def _parse_yaml(text: str, shown: str) -> object:
    import yaml

    # The pure-Python safe loader: libyaml's (CSafeLoader) recurses in C and crashes the process on deep nesting,
    # where this one raises RecursionError, which read_file reports. Its nodes are measured and checked for keys
    # given twice (with their lines) before any Python object is built: an alias bomb costs the limit, no more.
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        tree = _YamlTree(loader)
        check_bounds(node, shown, children=tree.children, duplicate=tree.duplicate)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        where = f"line {line}, column {mark.column + 1}" if mark is not None else None
        problem = str(getattr(error, "problem", None) or error)
        if "tag:yaml.org,2002:python/" in problem:
            tag = problem.split("tag:yaml.org,2002:", 1)[1].rstrip("'\"")
            message = (
                f"the tag '!!{tag}' is not allowed: a config is data, read with yaml.safe_load, which builds no "
                "Python objects; write a plugin name and plain params instead"
            )
        else:
            message = f"invalid YAML: {problem}"
        raise config_error(shown, where, message, line=line) from error
    finally:
        loader.dispose()


class _YamlTree:
    """The shape of a YAML document's nodes, aliases followed, for :func:`check_bounds`."""

    _NOT_KEYS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")  # ``<<`` and ``=``: no keys of the table

    def __init__(self, loader: Any) -> None:
        import yaml

        self._loader = loader
        self._mapping, self._sequence, self._scalar = yaml.MappingNode, yaml.SequenceNode, yaml.ScalarNode
        self._checked: set[int] = set()

    def children(self, node: object) -> Iterator[tuple[object, bool, object]] | None:
        if isinstance(node, self._mapping):
            return (
                (key.value if isinstance(key, self._scalar) else "?", False, child)
                for key, item in node.value
                for child in (key, item)
            )
        if isinstance(node, self._sequence):
            return ((index, True, child) for index, child in enumerate(node.value))
        return None

    def duplicate(self, node: object) -> Repeated | None:
        """The first key that the table ``node`` gives twice, as the loader builds keys (``yes`` and ``true`` too)."""
        if not isinstance(node, self._mapping) or id(node) in self._checked:
            return None
        self._checked.add(id(node))  # a table that aliases repeat is checked once
        lines: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, self._scalar) or key_node.tag in self._NOT_KEYS:
                continue
            key = self._loader.construct_object(key_node)  # a scalar: built as the table will build it, and kept
            line = key_node.start_mark.line + 1
            try:
                if key in lines:
                    return Repeated(key, (lines[key], line))
                lines[key] = line
            except TypeError:  # an unhashable key: the loader refuses it, naming its line
                continue
        return None


def _parse_json(text: str, shown: str) -> object:
    import json

    repeated: dict[int, tuple[dict[str, object], Repeated]] = {}  # by id: each table kept alive, so no id is reused

    def table(pairs: list[tuple[str, object]]) -> dict[str, object]:
        built = dict(pairs)
        if len(built) < len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    repeated[id(built)] = (built, Repeated(key))
                    break
                seen.add(key)
        return built

    def duplicate(value: object) -> Repeated | None:
        found = repeated.get(id(value))
        return None if found is None else found[1]

    try:
        content = json.loads(text, object_pairs_hook=table)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise config_error(shown, where, f"invalid JSON: {error.msg}", line=error.lineno) from error
    if repeated:  # the first one in the document, named at its place
        check_bounds(content, shown, duplicate=duplicate)
        raise duplicate_error(shown, None, next(iter(repeated.values()))[1])  # in a table another key replaced
    return content


_PARSERS: dict[str, Callable[[str, str], object]] = {
    ".toml": _parse_toml,
    ".yaml": _parse_yaml,
    ".yml": _parse_yaml,
    ".json": _parse_json,
}


MAX_BYTES = 1024 * 1024
"""The largest config file read, in bytes, unless the environment variable ``SARA_MAX_CONFIG_BYTES`` says otherwise.

A list of callbacks fits in a few kilobytes; the limit keeps a wrong file (a log, a data set, ``/dev/zero``) from
being read whole and parsed for minutes."""

_LIMIT_VARIABLE = "SARA_MAX_CONFIG_BYTES"

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def max_bytes() -> int:
    """The size limit of config files in force: :data:`MAX_BYTES`, or ``SARA_MAX_CONFIG_BYTES`` when set.

    Raises:
        ConfigError: the variable is set to something that is no whole number of bytes.
    """
    value = os.environ.get(_LIMIT_VARIABLE)
    if value is None:
        return MAX_BYTES
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(f"{_LIMIT_VARIABLE}={safe_repr(value, VALUE_LIMIT)}: expected a whole number of bytes >= 1")
    return limit


def _read_bytes(shown: str) -> bytes:
    """The bytes of a regular file of at most :func:`max_bytes`, or a :class:`ConfigError` saying what it is."""
    limit = max_bytes()
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer; the kind of file is checked before reading.
        descriptor = os.open(shown, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as error:
        raise config_error(shown, None, f"no such config file (current directory: {os.getcwd()})") from error
    except OSError as error:
        reason = error.strerror or type(error).__qualname__
        raise config_error(shown, None, f"cannot read the config file: {reason}") from error
    except ValueError as error:  # a NUL character in the path (each Python words it its own way)
        raise config_error(shown, None, "cannot open the config file: its path holds a NUL character") from error
    status = os.fstat(descriptor)
    problem = next((f"it is {kind}, not a regular file" for test, kind in _KINDS if test(status.st_mode)), None)
    if problem is None and status.st_size > limit:
        problem = _too_large(status.st_size, limit)
    if problem is not None:
        os.close(descriptor)
        raise config_error(shown, None, f"cannot read this config: {problem}")
    with os.fdopen(descriptor, "rb") as file:
        try:
            data = file.read(limit + 1)
        except OSError as error:
            reason = error.strerror or type(error).__qualname__
            raise config_error(shown, None, f"cannot read the config file: {reason}") from error
    if len(data) > limit:  # it grew while being read
        raise config_error(shown, None, f"cannot read this config: {_too_large(len(data), limit)}")
    return data


def _too_large(size: int, limit: int) -> str:
    return (
        f"it is {size} bytes or more, and a config file is at most {limit} bytes; is it the right file? "
        f"(set {_LIMIT_VARIABLE} to read larger ones)"
    )


def read_file(source: str | os.PathLike[str]) -> tuple[object, str]:
    """The parsed content of a config file, and the file's name as messages show it."""
    shown = os.fspath(source)
    if not isinstance(shown, str):
        raise ConfigError(
            "expected the path of a config file as a str, "
            f"got {type(shown).__qualname__} {safe_repr(shown, VALUE_LIMIT)}"
        )
    data = _read_bytes(shown)  # first: a directory or a device is named as such, whatever its name ends with
    extension = os.path.splitext(shown)[1].lower()
    parse = _PARSERS.get(extension)
    if parse is None:
        found = f"the extension {extension!r}" if extension else "no extension"
        raise config_error(
            shown, None, f"cannot read this config: it has {found}; supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise config_error(shown, None, f"not UTF-8 text (byte {error.start}); save the file as UTF-8") from error
    try:
        return parse(text, shown), shown
    except ConfigError:
        raise
    except RecursionError as error:  # the parsers recurse once per level of brackets
        raise config_error(shown, None, "cannot read this config: it is nested too deeply") from error
    except Exception as error:  # an int of 5000 digits, say: the parsers let such errors through
        raise config_error(shown, None, f"cannot read this config: {plain_text(describe_error(error), 300)}") from error


MAX_VALUES = 100_000
"""The most values a config holds, keys included, wherever they sit; each YAML alias counts once per place it stands."""

MAX_DEPTH = 64
"""The deepest a config nests lists and tables, counted from the top of the document."""

_Place = Optional[tuple["_Place", object, bool]]
"""Where a value sits: ``(the parent's place, key or index, whether it is a list index)``; ``None`` at the top."""

_Children = Callable[[object], Optional[Iterator[tuple[object, bool, object]]]]
"""A tree's shape: a value's children as ``(key or index, whether it is an index, child)``, or ``None`` for a leaf."""


class Repeated(NamedTuple):
    """A key that a table gives twice, and its lines (1-indexed) when the parser tells them."""

    key: object
    lines: tuple[int, int] | None = None


_Duplicate = Callable[[object], Optional[Repeated]]
"""The key a table gives twice, or ``None``."""


def place_text(place: _Place) -> str:
    """``callbacks[2].params['odd key']``: a place as messages name it, the middle left out past 200 characters."""
    parts: list[str] = []
    while place is not None:
        place, key, index = place
        parts.append(f"[{key}]" if index else key_part(key))
    parts.reverse()
    if parts:
        parts[0] = parts[0].removeprefix(".")
    if sum(map(len, parts)) <= 200:
        return "".join(parts)
    head, tail = _within(parts, 100), _within(reversed(parts), 100)
    return "".join(parts[:head]) + "..." + "".join(parts[len(parts) - tail :])


def _within(parts: Iterable[str], room: int) -> int:
    """How many of ``parts``, from the first, fit in ``room`` characters (at least one)."""
    count = 0
    for part in parts:
        room -= len(part)
        if room < 0 and count:
            break
        count += 1
    return count


def key_part(name: object) -> str:
    """``.name`` for a key in a place like ``callbacks[2].params.name``; ``['odd key']``, escaped and cut, otherwise."""
    if isinstance(name, str) and name.isidentifier() and name.isascii() and len(name) <= 60:
        return f".{name}"
    return f"[{safe_repr(name, VALUE_LIMIT)}]"


def _python_children(value: object) -> Iterator[tuple[object, bool, object]] | None:
    if isinstance(value, Mapping):
        return ((key, False, child) for key, item in value.items() for child in (key, item))
    if isinstance(value, (list, tuple, set, frozenset)):
        return ((index, True, child) for index, child in enumerate(value))
    return None


def check_bounds(
    document: object,
    shown: str | None,
    *,
    children: _Children = _python_children,
    duplicate: _Duplicate | None = None,
) -> None:
    """Refuse a config too big or too deep to be one, or a table that gives a key twice, before anything walks it.

    The walk counts every value once per place it stands and stops at the limit, so a YAML alias bomb (a few lines
    that expand into a billion values), a self-referencing mapping or a huge list costs :data:`MAX_VALUES` steps,
    wherever it sits in the document. The error names the place where a limit was crossed.

    Args:
        document: the parsed config, or (``children`` saying how) YAML's nodes before they are built.
        shown: the file, as messages name it.
        children: the shape of the tree.
        duplicate: what a table gives twice, when the parser kept it.
    """
    count = 0
    pending: list[tuple[Iterator[tuple[object, bool, object]], int, _Place]] = []
    value, depth, place = document, 0, None
    while True:
        count += 1
        if count > MAX_VALUES:
            raise config_error(
                shown,
                place_text(place),
                f"the config holds more than {MAX_VALUES} values up to here, far more than a config needs "
                "(YAML aliases that expand into a huge tree?)",
            )
        if depth > MAX_DEPTH:
            raise config_error(shown, place_text(place), f"is nested more than {MAX_DEPTH} levels deep")
        repeated = duplicate(value) if duplicate is not None else None
        if repeated is not None:
            raise duplicate_error(shown, (place, repeated.key, False), repeated)
        below = children(value)
        if below is not None:
            pending.append((below, depth + 1, place))
        while pending:
            below, depth, parent = pending[-1]
            step = next(below, None)
            if step is not None:
                key, index, value = step
                place = (parent, key, index)
                break
            pending.pop()
        else:
            return


def duplicate_error(shown: str | None, place: _Place, repeated: Repeated) -> ConfigError:
    """The error for a key given twice: its place (``callbacks[0].name``), its lines when known, and the fix."""
    lines = f" (lines {repeated.lines[0]} and {repeated.lines[1]})" if repeated.lines is not None else ""
    return config_error(
        shown,
        place_text(place),
        f"the key {safe_repr(repeated.key, VALUE_LIMIT)} appears twice in one table{lines}: the last one would "
        "silently replace the first; keep one of them",
        line=None if repeated.lines is None else repeated.lines[1],
    )
