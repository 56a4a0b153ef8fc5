"""Overrides as text: the one place that reads an override's key and value, writes a value so
that Hydra reads back the same string, and prints a command that works when pasted.

Run and sweep folders may be named anything (``3_lr=0.01,seed=2``, a log folder with spaces,
quotes or unicode); Hydra's grammar reads ``=``, ``,`` and spaces in an unquoted value as syntax,
so every value the project writes into a command line goes through ``assign``.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

# Characters Hydra reads as part of an unquoted value (a subset: anything else is quoted).
_PLAIN = re.compile(r"[A-Za-z0-9_./:+@%-]+")


def key(override: str) -> str:
    """``model.net.num_hidden`` of ``+model.net.num_hidden=8`` (also ``~key``, ``++key=...``)."""
    return override.split("=", 1)[0].lstrip("+~")


def value(override: str) -> Any:
    """The value Hydra reads from ``key=value``: a quoted string unquoted, a list as a list;
    None for an override without a value (``~key``)."""
    if "=" not in override:
        return None
    text = override.split("=", 1)[1]
    if _PLAIN.fullmatch(text):
        return text
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(override).value()
    except HydraException:
        return text  # Hydra itself will refuse it, with its own message


def last_value(args: list[str], name: str) -> Any:
    """The value the last override of ``name`` in ``args`` gives (None if none does)."""
    found = [value(a) for a in args if "=" in a and key(a) == name]
    return found[-1] if found else None


def quote(text: str) -> str:
    """``text`` as a Hydra value that reads back as exactly ``text``."""
    if _PLAIN.fullmatch(text) and text not in ("null", "true", "false") and not _number(text):
        return text
    quote_char = "'" if '"' in text and "'" not in text else '"'  # '"' inside the shell's '...'
    # Hydra unescapes backslashes only before a quote and at the end of a quoted value.
    escaped = re.sub(rf"(\\*)({quote_char}|$)",
                     lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""), text)
    return f"{quote_char}{escaped}{quote_char}"


def assign(name: str, text: str) -> str:
    return f"{name}={quote(str(text))}"


def command(script: str, *overrides: str) -> str:
    """A shell command line: each override quoted for the shell (Hydra's quoting inside)."""
    return " ".join(["python", script, *(shlex.quote(o) for o in overrides)])


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
