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

    The ``repr`` escapes control characters, and the cut keeps huge names and values harmless in messages.
    """
    try:
        text = repr(value)
    except Exception:  # a repr that raises, or an int too long to print
        return f"<{class_name(value)} object>"
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


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
