"""Parsers for lembro options, shared by every layer.

Values may come from Python code (``max_size=4 * 1024 ** 2``) or from ini
files as strings (``session.max_size = 4M``); each parser accepts both and
raises a ``ValueError`` naming the option and the value it refused::

    >>> parse_size('512K', 'max_size')
    524288
    >>> parse_seconds('none', 'timeout', allow_none=True) is None
    True
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from collections.abc import Iterable

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_NONE = frozenset({"none", "null", ""})
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class Unset(enum.Enum):
    """The default of an option that must tell "not given" from "given its default value"."""

    UNSET = "unset"


UNSET = Unset.UNSET


#: Bounds that keep every figure convertible (timers, floats, HTTP dates): about 31 years, and 1 PiB.
MAX_SECONDS = 10**9
MAX_BYTES = 2**50


def _fail(option: str, value: object, expected: str) -> ValueError:
    return ValueError(f"{option}: expected {expected}, got {value!r}")


def close_option(name: str, known: Iterable[str]) -> str | None:
    """The known option ``name`` most likely meant (``maxSize``, ``max-size``, ``maxsize`` -> ``max_size``)."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower().replace("-", "_")
    options = list(known)
    if snake in options:
        return snake
    close = difflib.get_close_matches(snake, options, n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_option(name: str, known: Iterable[str], otherwise: str) -> ValueError:
    """The error for an option nobody takes: a close match suggested, else ``otherwise`` said."""
    close = close_option(name, known)
    if close and close != name:
        return ValueError(f"{name}: not an option; did you mean {close!r}?")
    return ValueError(f"{name}: {otherwise or 'not an option here'}")


def missing_extra(module: str, package: str, extra: str) -> str:
    """The message for a lembro module whose framework or client is not installed, naming the extra."""
    return f"{module} needs {package}, which is not installed: pip install 'lembro_wsgi[{extra}]'"


def is_none(value: object) -> bool:
    """Whether ``value`` is None as an ini file spells it: ``None``, ``'none'``, ``'null'`` or ``''``."""
    return value is None or (isinstance(value, str) and value.strip().lower() in _NONE)


def parse_size(value: int | str, option: str = "max_size") -> int:
    """Bytes from an int or a string like ``'512K'``, ``'4M'``, ``'1g'``, ``'4mb'``, ``'1.5M'``.

    K, M and G are powers of 1024 and case does not matter; the result must be
    at least one byte.
    """
    expected = "a positive byte count such as 1048576, '512K', '4M' or '1G'"
    if isinstance(value, bool):
        raise _fail(option, value, expected)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise _fail(option, value, expected)
        scaled = float(match.group(1)) * _UNITS[match.group(2).lower()]
        if not math.isfinite(scaled) or scaled > MAX_BYTES:
            raise _fail(option, value, expected)
        number = int(scaled)
    else:
        raise _fail(option, value, expected)
    if not 1 <= number <= MAX_BYTES:
        raise _fail(option, value, expected)
    return number


def parse_seconds(
    value: float | str | None, option: str, allow_none: bool = False
) -> float | None:
    """A positive, finite number of seconds; ``None`` or ``'none'`` only when ``allow_none``."""
    if type(value) is float and 0 < value <= MAX_SECONDS:  # already parsed: the per-request path
        return value
    expected = f"a positive number of seconds up to {MAX_SECONDS:,}" + (" or None" if allow_none else "")
    if isinstance(value, str) and not value.strip():  # an unset variable, never "no expiry" or "no purge"
        raise _fail(option, value, expected + " (spelt 'none')" if allow_none else expected)
    if is_none(value):
        if allow_none:
            return None
        raise _fail(option, value, expected)
    if isinstance(value, bool):
        raise _fail(option, value, expected)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise _fail(option, value, expected) from None
    if not 0 < number <= MAX_SECONDS:
        raise _fail(option, value, expected)
    return number


def parse_count(value: int | str | None, option: str) -> int | None:
    """A positive whole number, or ``None`` / ``'none'`` for no limit."""
    expected = "a positive whole number or None"
    if is_none(value):
        return None
    if isinstance(value, bool):
        raise _fail(option, value, expected)
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise _fail(option, value, expected)
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise _fail(option, value, expected)
    return value


def parse_bool(value: bool | int | str, option: str) -> bool:
    """``True``/``False``, ``1``/``0``, or an ini spelling of them (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _fail(option, value, "true or false")
