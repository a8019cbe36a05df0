"""Render user strings into generated files so they cannot change a file's meaning.

Names are validated where they enter (generator/core/names.py), but paths (checkpoint, build
folder, interpreter) are not names, and a validator can be bypassed by a future caller:
every template renders user strings through the filter of its file's language. Each
function returns text that the target language reads back as the same literal string,
or, for comments, as inert text on one line.
"""

from __future__ import annotations

import re
import shlex

__all__ = ["one_line", "make_comment", "make_value", "make_recipe", "shell_word", "tcl_string",
           "c_string", "c_comment", "verilog_string", "verilog_comment", "markdown_text",
           "markdown_code", "html_text", "py_literal", "filters"]


def one_line(s, limit: int = 200) -> str:
    """Printable text on one line: control characters (newlines included) become '?'."""
    text = "".join(c if c.isprintable() else "?" for c in str(s))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def make_comment(s) -> str:
    """Text after '#' in a Makefile: one line, no backslash (a trailing one continues it)."""
    return one_line(s).replace("\\", "/")


def make_value(s) -> str:
    """A Make variable value that expands to one shell word naming exactly `s`.

    The shell quoting comes first; Make then sees '$' doubled and '#' escaped. A newline
    cannot be carried by either, so it is refused (paths with newlines are refused earlier).
    """
    s = str(s)
    if "\n" in s or "\r" in s or "\0" in s:
        raise ValueError(f"a newline or NUL cannot be written into a Makefile: {s!r}")
    return shell_word(s).replace("$", "$$").replace("#", "\\#")


def make_recipe(s) -> str:
    """One shell word in a Makefile recipe line (Make expands '$' there; '#' is literal)."""
    s = str(s)
    if "\n" in s or "\r" in s or "\0" in s:
        raise ValueError(f"a newline or NUL cannot be written into a Makefile: {s!r}")
    return shell_word(s).replace("$", "$$")


def shell_word(s) -> str:
    """One POSIX shell word."""
    return shlex.quote(str(s))


_TCL_BARE = re.compile(r"[A-Za-z0-9_.:/+=@,\-]+")


def tcl_string(s) -> str:
    """A Tcl word that is the literal `s`: braces would need balancing, so a quoted word with
    every substitution character escaped (a plain token is its own word)."""
    if _TCL_BARE.fullmatch(str(s)):
        return str(s)
    out = []
    for c in str(s):
        if c in '\\"[]${}; ':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif not c.isprintable() or ord(c) > 126:
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else "?")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def c_string(s) -> str:
    """A C/C++ string literal (octal escapes; '?' escaped against trigraphs)."""
    return '"' + "".join(c if (c.isprintable() and ord(c) < 127 and c not in '"\\?') else
                         "".join(f"\\{b:03o}" for b in c.encode("utf-8")) for c in str(s)) + '"'


def c_comment(s) -> str:
    """Text inside // or /* */ comments of C++ and Verilog: one line, no comment delimiters
    and no trailing backslash (which would continue a // comment)."""
    return one_line(s).replace("*/", "* /").replace("/*", "/ *").replace("\\", "/")


verilog_comment = c_comment


def verilog_string(s) -> str:
    """A Verilog string literal: printable ASCII only, quote and backslash escaped."""
    out = []
    for c in str(s):
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable() and ord(c) < 127:
            out.append(c)
        else:
            out.extend(f"\\{b:03o}" for b in c.encode("utf-8"))
    return '"' + "".join(out) + '"'


_MD_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$&")


def markdown_text(s) -> str:
    """Inline Markdown text that renders as `s` literally (one line, specials escaped)."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in one_line(s))


def markdown_code(s) -> str:
    """An inline code span holding `s`: a backtick fence longer than any run inside it."""
    text = one_line(s)
    run = longest = 0
    for c in text:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def html_text(s) -> str:
    import html
    return html.escape(str(s), quote=True)


def py_literal(s) -> str:
    """A Python string literal (for generated Python code and notebook code cells)."""
    return ascii(str(s))


def filters() -> dict:
    """Jinja filters, registered by every template environment."""
    return {"make_comment": make_comment, "hash_comment": make_comment,
            "make_value": make_value, "make_recipe": make_recipe, "shell": shell_word,
            "tcl": tcl_string, "cstr": c_string, "c_comment": c_comment,
            "vstr": verilog_string, "v_comment": verilog_comment, "md": markdown_text,
            "md_code": markdown_code, "py": py_literal, "line": one_line}
