"""Lexical rules shared by the text parser and the spec's display names."""

from __future__ import annotations

import json
import re

# Reserved words of the text syntax (matched case-insensitively). A column named like one
# of these must be written in backticks: `limit`.
KEYWORDS = frozenset(
    {
        "and", "or", "not", "in", "between", "contains", "icontains", "is", "null",
        "true", "false", "sort", "by", "asc", "desc", "limit", "offset", "top", "bottom",
        "group", "aggregate", "all", "any", "has", "tag",
    }
)

IDENT_RE = re.compile(r"[^\W\d][\w.]*")  # letters (any script), digits, _ and .; no leading digit
TAG_NAME_RE = re.compile(r"[\w][\w.\-]*")
TAG_PREFIX = "tag:"


def _backtick(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def format_tag_name(name: str) -> str:
    """A tag name as written after ``has:`` / ``tag:``."""
    return name if TAG_NAME_RE.fullmatch(name) else _backtick(name)


def format_name(name: str) -> str:
    """A column name as written in the text syntax (backticks when needed)."""
    if name.startswith(TAG_PREFIX) and len(name) > len(TAG_PREFIX):
        return TAG_PREFIX + format_tag_name(name[len(TAG_PREFIX) :])
    if IDENT_RE.fullmatch(name) and name.lower() not in KEYWORDS:
        return name
    return _backtick(name)


def format_number(value: int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def format_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot format value {value!r}")
