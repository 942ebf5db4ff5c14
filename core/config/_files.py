"""Reading config files, and the words config errors are made of. Nothing here is public.

:mod:`~altametris.sara.core.config` reads a file with :func:`_read_file` (TOML, YAML with ``yaml.safe_load``, JSON),
and measures the ``callbacks`` tree with :func:`_check_size` before it walks it. Whatever a parser raises becomes a
:class:`~altametris.sara.core.exceptions.ConfigError` that names the file (and the line when the parser tells it):
a 5000-digit number and 100000 nested brackets included.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from typing import Callable

from ..exceptions import ConfigError
from ..messages import VALUE_LIMIT, describe_error, plain_text, safe_repr

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
        path = plain_text(path, 300)
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
        raise config_error(shown, where, f"invalid TOML: {message[: match.start()]}", line=line) from error


def _parse_yaml(text: str, shown: str) -> object:
    import yaml

    # The pure-Python safe loader: libyaml's (CSafeLoader) recurses in C and crashes the process on deep nesting,
    # where this one raises RecursionError, which read_file reports; the size limit bounds its time.
    try:
        return yaml.safe_load(text)
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


def _parse_json(text: str, shown: str) -> object:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise config_error(shown, where, f"invalid JSON: {error.msg}", line=error.lineno) from error


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


_MAX_VALUES = 100_000
_MAX_DEPTH = 64


def check_size(callbacks: object, shown: str | None) -> None:
    """Refuse a ``callbacks`` tree too big or too deep to be a list of callbacks, before anything walks it.

    Shared values count once per place they appear: a YAML alias bomb (a few lines that expand to a billion values)
    is refused at once instead of being walked, printed or type-checked for minutes; so is a self-referencing mapping.
    """
    pending: list[tuple[object, int]] = [(callbacks, 0)]
    count = 0
    while pending:
        value, depth = pending.pop()
        count += 1
        if count > _MAX_VALUES:
            raise config_error(
                shown,
                "callbacks",
                f"holds more than {_MAX_VALUES} values, far more than a list of callbacks needs "
                "(YAML aliases that expand into a huge tree?)",
            )
        if depth > _MAX_DEPTH:
            raise config_error(shown, "callbacks", f"is nested more than {_MAX_DEPTH} levels deep")
        if isinstance(value, Mapping):
            pending += [(child, depth + 1) for pair in value.items() for child in pair]
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending += [(child, depth + 1) for child in value]
