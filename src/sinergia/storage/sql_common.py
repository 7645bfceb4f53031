"""What the SQL compilers of q and scopeQ share, whatever the SQL dialect: composable SQL
fragments with their bound values, the class of a q value, the checks of an attribute path,
and the shape of a scope pattern. Each dialect module (``sqlite_filters``,
``postgres_filters``) turns these into its own SQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.qlang import (
    KEY_RE,
    PATTERN_OPS,
    RESERVED_MEMBERS,
    AttrPath,
    Comparison,
    DateTimeValue,
    is_scope_pattern,
    is_time,
)


@dataclass(frozen=True, slots=True)
class Frag:
    """A piece of SQL and the values of its placeholders, in order."""

    sql: str
    params: tuple[object, ...] = ()


def concat(*parts: str | Frag) -> Frag:
    """The fragments (and fixed SQL strings) one after the other."""
    sql: list[str] = []
    params: list[object] = []
    for part in parts:
        if isinstance(part, str):
            sql.append(part)
        else:
            sql.append(part.sql)
            params.extend(part.params)
    return Frag("".join(sql), tuple(params))


def joined(frags: Iterable[Frag], sep: str) -> Frag:
    items = list(frags)
    return concat(*[part for i, f in enumerate(items) for part in ((sep, f) if i else (f,))])


def value_class(value: object) -> str:
    """The class a q value compares within (``bool``, ``number``, ``time``, ``datetime`` or
    ``string``): a candidate of another class never matches."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, DateTimeValue):
        return "time" if is_time(value) else "datetime"
    if isinstance(value, str):
        return "string"
    raise BadRequestData(f"q: unsupported value {value!r}")


def split_path(path: AttrPath) -> tuple[str | None, tuple[str, ...]]:
    """Check an attribute path and split it into (final reserved member or None, the
    sub-attributes to walk)."""
    for sub in path.subs[:-1]:
        if sub in RESERVED_MEMBERS:
            raise BadRequestData(f"q: '{sub}' can only end an attribute path")
    for key in path.keys:
        if KEY_RE.fullmatch(key) is None:
            raise BadRequestData(f"q: invalid key {key!r}")
    member = path.subs[-1] if path.subs and path.subs[-1] in RESERVED_MEMBERS else None
    return member, (path.subs[:-1] if member else path.subs)


def vocab_comparison(cmp: Comparison) -> Comparison | None:
    """The comparison to apply to the vocab of a ``VocabProperty`` instance (its value
    replaced by ``vocab_value``), or None when that is ``cmp`` itself: no strings were
    expanded, the path ends on a reserved member, or the operator is a pattern."""
    if cmp.vocab_value is None or cmp.op is None or cmp.op in PATTERN_OPS:
        return None
    if cmp.path.subs and cmp.path.subs[-1] in RESERVED_MEMBERS:
        return None
    return replace(cmp, value=cmp.vocab_value, vocab_value=None)


@dataclass(frozen=True, slots=True)
class ScopeShape:
    """How a scope pattern selects scopes, in the terms SQL can test cheaply.

    ``exact``: the scope equals ``text``. ``subtree``: the scope is ``text`` or starts with
    ``text + "/"``, i.e. (in code point order) lies in ``[text + "/", text + "0")``; an empty
    ``text`` (pattern ``/#``) means any scope. ``wildcard``: the pattern has ``+`` levels and
    needs a level-by-level match (``levels``, with ``any_below`` for a final ``#``).
    """

    kind: Literal["exact", "subtree", "wildcard"]
    text: str
    levels: tuple[str, ...] = ()
    any_below: bool = False


def scope_shape(pattern: str) -> ScopeShape:
    if not is_scope_pattern(pattern):
        raise BadRequestData(f"scopeQ: invalid scope pattern {pattern!r}")
    levels = pattern.split("/")[1:]
    any_below = levels[-1] == "#"
    if "+" in levels:
        return ScopeShape("wildcard", pattern, tuple(levels[:-1] if any_below else levels),
                          any_below)
    if not any_below:
        return ScopeShape("exact", pattern)
    return ScopeShape("subtree", pattern[:-2])
