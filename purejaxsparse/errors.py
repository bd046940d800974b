"""How a problem is said: in one line, never with a whole value in it.

`ConfigError` is bad input (the CLI exits with code 2); `shown` renders a value that a message
quotes as a short prefix, so that a huge or deeply nested value (e.g. one that YAML aliases
blow up) never has to be printed, or even expanded, to say what is wrong with it; `first_line`
does the same for an exception. A leaf module without jax, so that the jax-free readers
(results.py, config_yaml.py) share it.
"""

from __future__ import annotations

import reprlib

SHOWN_WIDTH = 60
"""The most characters of a value that an error message quotes."""


class ConfigError(ValueError):
    """A bad value in a config or override; the message is one line naming the field."""


def _short_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 3, 6, 8, 8, 6
    r.maxstring = r.maxother = r.maxlong = SHOWN_WIDTH
    return r


_REPR = _short_repr()


def shown(value, width: int = SHOWN_WIDTH) -> str:
    """`repr(value)` cut to at most `width` characters, computed without expanding the value
    (reprlib stops at a few levels and items), for quoting a value in an error message."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 -- a value whose repr fails is still named
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


def one_line(text: str, width: int = 160) -> str:
    """The first line of `text`, cut to at most `width` characters."""
    text = (text.strip().splitlines() or [""])[0]
    return text if len(text) <= width else text[:width - 3] + "..."


def first_line(e: BaseException, width: int = 160) -> str:
    """An exception as one line of at most `width` characters, for errors said in one line."""
    return one_line(str(e), width) or type(e).__name__
