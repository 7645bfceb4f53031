"""Python regular expressions translated, when it can be done exactly, to PostgreSQL's
(Advanced Regular Expressions, the ``~`` operator).

NGSI-LD leaves the regex flavour open; Sinergia uses Python's ``re.search`` everywhere (the
reference evaluator, the SQLite backend), so PostgreSQL must select exactly the same strings.
The translation reads Python's own parse of the pattern, so every escape and quantifier means
what Python understood, and emits only constructs whose ARE meaning is the same *for deciding
whether some match exists*: literals, ``.``, character sets of literals and ranges, groups,
alternation, bounded or unbounded repetition, ``^``/``\\A``, ``$`` (before an optional final
newline, as in Python) and ``\\Z``. Anything else — ``\\d``/``\\w``/``\\s``/``\\b`` (Unicode
classes in Python), back-references, look-arounds, flags such as ``(?i)``, U+0000, repetition
counts above ARE's 255 — gives ``None``: the caller then selects a superset in SQL and lets
Python decide.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

# ``re._parser`` is the parser ``re`` itself uses (3.11+); typeshed has no stub for it.
_parser: Any = importlib.import_module("re._parser")
_constants: Any = importlib.import_module("re._constants")

_MAXREPEAT: int = _constants.MAXREPEAT
_ARE_DUPMAX = 255   # the largest repetition count ARE accepts
# Flags that leave the parsed pattern's meaning unchanged: UNICODE (the default for str
# patterns) and VERBOSE (it only affects how the text is parsed).
_HARMLESS_FLAGS = _constants.SRE_FLAG_UNICODE | _constants.SRE_FLAG_VERBOSE


class _Untranslatable(Exception):
    pass


@lru_cache(maxsize=1024)
def to_are(pattern: str) -> str | None:
    """An ARE that matches (somewhere in) exactly the strings ``re.search(pattern, ·)``
    matches, or None when no exact translation is known."""
    try:
        parsed = _parser.parse(pattern, 0)
    except Exception:  # invalid patterns were rejected when the query was parsed
        return None
    if parsed.state.flags & ~_HARMLESS_FLAGS:
        return None
    try:
        return _sequence(list(parsed))
    except _Untranslatable:
        return None


def _sequence(items: list[tuple[Any, Any]]) -> str:
    return "".join(_item(op, arg) for op, arg in items)


def _item(op: Any, arg: Any) -> str:
    name = str(op)
    if name == "LITERAL":
        return _char(arg)
    if name == "NOT_LITERAL":
        return "[^" + _char(arg) + "]"
    if name == "ANY":
        return "[^\\n]"  # without DOTALL, Python's '.' is anything but a newline
    if name == "IN":
        return _set(arg)
    if name in ("MAX_REPEAT", "MIN_REPEAT"):  # greediness cannot change whether one matches
        low, high, body = arg
        return _repeat(low, high, list(body))
    if name == "SUBPATTERN":
        _group, add_flags, del_flags, body = arg
        if add_flags or del_flags:
            raise _Untranslatable
        return "(?:" + _sequence(list(body)) + ")"
    if name == "BRANCH":
        _, alternatives = arg
        return "(?:" + "|".join(_sequence(list(alt)) for alt in alternatives) + ")"
    if name == "AT":
        return _anchor(str(arg))
    raise _Untranslatable


def _anchor(name: str) -> str:
    if name in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
        return "^"
    if name == "AT_END":
        return "(?=\\n?$)"  # Python's '$' also matches just before a final newline
    if name == "AT_END_STRING":
        return "$"
    raise _Untranslatable


def _repeat(low: int, high: int, body: list[tuple[Any, Any]]) -> str:
    if any(str(op) == "AT" for op, _ in _walk(body)):
        raise _Untranslatable  # ARE refuses quantified constraints
    if low > _ARE_DUPMAX or (high != _MAXREPEAT and high > _ARE_DUPMAX):
        raise _Untranslatable
    inner = "(?:" + _sequence(body) + ")"
    if high == _MAXREPEAT:
        return inner + ("*" if low == 0 else "+" if low == 1 else f"{{{low},}}")
    return inner + ("?" if (low, high) == (0, 1) else f"{{{low},{high}}}")


def _walk(items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    found: list[tuple[Any, Any]] = []
    for op, arg in items:
        found.append((op, arg))
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            found.extend(_walk(list(arg[2])))
        elif name == "SUBPATTERN":
            found.extend(_walk(list(arg[3])))
        elif name == "BRANCH":
            for alternative in arg[1]:
                found.extend(_walk(list(alternative)))
    return found


def _set(items: list[tuple[Any, Any]]) -> str:
    negate = False
    parts: list[str] = []
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            parts.append(_char(arg))
        elif name == "RANGE":
            low, high = arg
            parts.append(_char(low) + "-" + _char(high))
        else:  # CATEGORY (\d, \w, \s: Unicode-aware in Python) and the rest
            raise _Untranslatable
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _char(code: int) -> str:
    if code == 0:
        raise _Untranslatable  # PostgreSQL text cannot hold U+0000
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    if code < 0x20 or code == 0x7F:
        return f"\\u{code:04x}"
    if char.isascii():
        return "\\" + char  # ARE: a backslash before a non-alphanumeric is that character
    return char


def are_escape(text: str) -> str:
    """``text`` as an ARE that matches it literally (text without U+0000)."""
    return "".join(_char(ord(c)) for c in text)
