"""Names that come from user data (model, layer, class and board names): checked where they
enter, so that every later use (file names, identifiers, generated files) starts from a
short printable token. Generated files still escape them (generator/core/escape.py)."""

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


# ---------------------------------------------------------------------------------------
# Hardware identifiers: one derivation for every generated language (C++, Verilog, Tcl ports)

_CXX_KEYWORDS = {
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
    "char", "class", "compl", "const", "constexpr", "const_cast", "continue", "decltype", "default", "delete",
    "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
    "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
    "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
    "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch",
    "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union",
    "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq",
    # HDL keywords Vitis would rename ports for
    "in", "out", "input", "output", "reg", "wire", "module", "begin", "end",
}


def sanitize(name: str, prefix: str = "n") -> str:
    """A C++ (and HDL) safe identifier for `name`: [A-Za-z0-9_], no leading digit or
    underscore, no double underscore, not a keyword."""
    s = re.sub(r"[^0-9A-Za-z_]", "_", str(name))
    s = re.sub(r"_+", "_", s).strip("_")
    if not s or s[0].isdigit() or s.lower() in _CXX_KEYWORDS:
        s = f"{prefix}_{s}" if s else prefix
    return s


def unique_idents(names, prefix: str = "n") -> list[str]:
    out, seen = [], set()
    for n in names:
        base = sanitize(n, prefix)
        s, i = base, 2
        while s.lower() in seen:
            s, i = f"{base}_{i}", i + 1
        seen.add(s.lower())
        out.append(s)
    return out


def node_idents(graph) -> list[str]:
    """The hardware identifier of every node (HLS node headers and functions, RTL memory
    files), unique in the graph."""
    return unique_idents([n.name for n in graph.nodes])


def top_name(graph_name: str) -> str:
    """The accelerator's top-level name (HLS top function, IP, host driver)."""
    return sanitize(f"cf_{graph_name}", "cf")
