"""Names that come from user data (model, layer, class and board names): checked where they
enter, so that every later use (file names, identifiers, generated files) starts from a
short printable token. Generated files still escape them (generator/escape.py)."""

from __future__ import annotations

import re

MAX_NAME = 64
# A model / board / class name: letters, digits, '_', '-', '.', starting with a letter,
# digit or '_'. No spaces, quotes, '$', '/', or control characters.
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
# A layer name is also a hardware identifier stem.
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(value, what: str, error=ValueError, *, ident: bool = False,
               limit: int = MAX_NAME) -> str:
    """`value` if it is a safe name, else `error` with one line saying what is allowed."""
    rule = IDENT_RE if ident else NAME_RE
    if not isinstance(value, str):
        raise error(f"{what} must be a string, got {type(value).__name__}")
    if not value or len(value) > limit or not rule.fullmatch(value):
        shown = value if len(value) <= 40 else value[:37] + "..."
        allowed = ("letters, digits and '_', not starting with a digit" if ident else
                   "letters, digits, '_', '-' and '.', starting with a letter, digit or '_'")
        raise error(f"{what} {shown!r} is not a safe name: {allowed}, at most {limit} characters")
    return value


def name_from(text: str, fallback: str = "model") -> str:
    """A safe name derived from free text (a file stem): bad characters become '_'."""
    s = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(text))[:MAX_NAME].lstrip(".-")
    return s or fallback
