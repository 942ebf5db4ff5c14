"""The words error messages are made of, one helper each, for the library and for plugin authors.

Every message of SARA callbacks quotes values, names and errors through these helpers, so that a huge, hostile or
broken value never makes a huge, garbled or failing message, and so that "did you mean" reads the same everywhere.
Plugin authors who raise a :class:`~altametris.sara.core.exceptions.SaraError` from their callbacks may use them too.

Example:
    >>> from altametris.sara.core.messages import did_you_mean, safe_repr
    >>> did_you_mean("val_los", ["loss", "val_loss"])
    "did you mean 'val_loss'? "
    >>> safe_repr("x" * 100, 20)
    "'xxxxxxxxxxxxxxx...'"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "PATH_LIMIT",
    "VALUE_LIMIT",
    "class_name",
    "close_matches",
    "describe_error",
    "did_you_mean",
    "one_line",
    "plain_text",
    "safe_repr",
]

VALUE_LIMIT = 60
"""How many characters of a value found in a config or in parameters a message quotes."""

PATH_LIMIT = 300
"""How many characters of a file's path a message shows."""


def describe_error(error: BaseException) -> str:
    """``"ValueError: text"``, robust to exceptions without arguments and to a ``__str__`` that raises.

    Example:
        >>> describe_error(KeyError("loss")), describe_error(StopIteration())
        ("KeyError: 'loss'", 'StopIteration')
    """
    kind = type(error).__qualname__
    try:
        text = str(error)
    except Exception as str_error:
        text = f"<str() failed with {type(str_error).__qualname__}>"
    return f"{kind}: {text}" if text else kind


def class_name(value: object) -> str:
    """The class's qualified name, without the ``function.<locals>.`` of classes defined in a function."""
    return type(value).__qualname__.rpartition("<locals>.")[2]


def safe_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, or ``<Class object>`` when ``repr`` fails.

    The ``repr`` escapes control characters, and the cut keeps huge names and values harmless in messages. Strings,
    bytes, lists, tuples, dicts and sets are written only as far as the cut: a string of a gigabyte, or a list that
    YAML aliases made of a billion values, costs no more than a short one (as :mod:`reprlib` does, but with
    ``repr``'s own text up to the cut). Other objects get their own ``repr``, whole.

    Example:
        >>> safe_repr({"name": "history", "params": {"size": list(range(10**6))}}, 40)
        "{'name': 'history', 'params': {'siz...}"
    """
    writer = _BoundedRepr(limit + 1)  # one character more than the limit tells that the cut is needed
    try:
        writer.write(value)
    except _Full:
        text = "".join(writer.parts)
        return f"{text[: limit - 4]}...{writer.closing}"
    except Exception:  # a repr that raises, or an int too long to print
        return f"<{class_name(value)} object>"
    text = "".join(writer.parts)
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


class _Full(Exception):
    """The bounded repr has written as many characters as it may."""


_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    dict: ("{", "}"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
}


class _BoundedRepr:
    """Writes ``repr(value)`` into :attr:`parts`, at most ``room`` characters, then raises :class:`_Full`.

    Only the exact built-in types are walked (a subclass may have a ``repr`` of its own); recursion is bounded by the
    room, since every level writes at least one character. :attr:`closing` is the last character of the outermost
    value's ``repr``, for the cut.
    """

    def __init__(self, room: int) -> None:
        self.room = room
        self.parts: list[str] = []
        self.closing = ""
        self._active: set[int] = set()  # the containers being written: a value inside itself is "[...]", as repr says

    def _add(self, text: str) -> None:
        if len(text) >= self.room:
            self.parts.append(text[: self.room])
            self.room = 0
            raise _Full
        self.parts.append(text)
        self.room -= len(text)

    def write(self, value: object) -> None:
        kind = type(value)
        outermost = not self.parts
        if isinstance(value, (str, bytes)) and kind in (str, bytes):
            written = repr(value if len(value) < self.room else value[: self.room])
            if outermost:
                self.closing = written[-1]
            self._add(written)
            return
        brackets = _BRACKETS.get(kind)
        empty_set = kind in (set, frozenset) and not value  # set() and frozenset(), as repr writes them
        if brackets is None or empty_set or not isinstance(value, (list, tuple, dict, set, frozenset)):
            written = repr(value)
            if outermost:
                self.closing = written[-1:]
            self._add(written)
            return
        opening, closing = brackets
        if outermost:
            self.closing = closing[-1]
        if id(value) in self._active:
            self._add(f"{opening}...{closing}")
            return
        self._active.add(id(value))
        self._add(opening)
        if isinstance(value, dict):
            for index, (key, item) in enumerate(value.items()):
                self._add(", " if index else "")
                self.write(key)
                self._add(": ")
                self.write(item)
        else:
            for index, item in enumerate(value):
                self._add(", " if index else "")
                self.write(item)
            if kind is tuple and len(value) == 1:
                self._add(",")
        self._add(closing)
        self._active.discard(id(value))


def plain_text(text: str, limit: int) -> str:
    """``text`` as it is when printable and at most ``limit`` characters, else escaped and cut (:func:`safe_repr`)."""
    return text if text.isprintable() and len(text) <= limit else safe_repr(text, limit)


def one_line(text: str, limit: int | None = None) -> str:
    r"""``text`` on one line (runs of white space, newlines included, become one space), cut to ``limit`` characters.

    Example:
        >>> one_line("ConnectionError: refused\n  retry later", 30)
        'ConnectionError: refused re...'
    """
    folded = " ".join(text.split())
    return folded if limit is None or len(folded) <= limit else f"{folded[: limit - 3]}..."


def close_matches(word: object, choices: Iterable[str], n: int = 1) -> list[str]:
    """The (at most ``n``) choices closest to ``word``, best first; none when ``word`` is no string."""
    if not isinstance(word, str):
        return []
    import difflib  # only on error paths: keeps the import of this module light

    return difflib.get_close_matches(word, list(choices), n=n)


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``"did you mean 'closest'? "`` (with its trailing space), or ``""`` when nothing is close to ``word``."""
    close = close_matches(word, choices)
    return f"did you mean {close[0]!r}? " if close else ""
