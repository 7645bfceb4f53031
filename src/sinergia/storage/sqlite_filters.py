"""q and scopeQ compiled to SQLite SQL over the entity document (``entities.doc``, the JSON of
the internal form of :mod:`sinergia.ngsild.model`, serialised with orjson).

The SQL has exactly the semantics of :func:`sinergia.ngsild.qlang.evaluate_q` and
:func:`~sinergia.ngsild.qlang.match_scope` (the tests check it on generated expressions) and
always yields 0 or 1, never NULL. Every value and every JSON path is a bound parameter.

Speed: SQLite caches the parse of a document across the JSON function calls of one row, but
``json_each`` parses its argument again. The SQL therefore tests the common shape first (one
instance, a ``Property``, a scalar value: three ``json_*`` look-ups and a comparison) and walks
instances, arrays and language maps with ``json_each`` only when the document has them. Python
functions run only for regular expressions, ``+`` scope wildcards, and date-times that are not
already in the canonical ``YYYY-MM-DDTHH:MM:SS.fffZ`` form.

Faster still: given the row id (``rid``), a comparison on a top-level attribute first looks for
the attribute's row in the ``attr_values`` side table (:mod:`sinergia.storage.sqlite_values`),
which exists when the attribute is one Property or Relationship with a scalar value, and applies
the very same per-JSON-type test to the stored value. Only an entity without that row (the
attribute is absent or has another shape) is judged on its document.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from sinergia.ngsild.errors import BadRequestData, TooComplexQuery
from sinergia.ngsild.model import (
    JSON_PROPERTY,
    LANGUAGE_PROPERTY,
    LIST_PROPERTY,
    LIST_RELATIONSHIP,
    PROPERTY,
    RELATIONSHIP,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
)
from sinergia.ngsild.qlang import (
    ORDER_OPS,
    PATTERN_OPS,
    And,
    Comparison,
    DateTimeValue,
    QExpr,
    Range,
    ScopeAnd,
    ScopeExpr,
    ScopeOr,
    compiled_regex,
    datetime_key,
    scope_matches,
)
from sinergia.storage.q_shapes import Bound, shape_of
from sinergia.storage.sql_common import Frag, scope_shape, split_path, vocab_comparison
from sinergia.storage.sql_common import concat as _j
from sinergia.storage.sql_common import joined as _joined
from sinergia.storage.sql_common import value_class as _class_of


def _p(value: object) -> Frag:
    return Frag("?", (value,))


TRUE, FALSE = Frag("1"), Frag("0")
# A key SQLite 3.40 can name in a JSON path: it compares labels with the raw JSON text, and
# orjson escapes only '"', '\' and control characters.
_PATH_SAFE = re.compile(r'[^"\\\x00-\x1f]*')
_CANONICAL_DT = "'%Y-%m-%dT%H:%M:%fZ'"


class _Loc:
    """A JSON location: a JSON text (SQL) and a path into it (bound)."""

    __slots__ = ("base", "path")

    def __init__(self, base: Frag, path: str) -> None:
        self.base, self.path = base, path

    def child(self, name: str) -> _Loc:
        if _PATH_SAFE.fullmatch(name):
            return _Loc(self.base, f'{self.path}."{name}"')
        # A JSON path cannot quote this name: find the member by key instead.
        found = _j("(SELECT json_quote(value) FROM json_each(", self.base, ", ", _p(self.path),
                   ") WHERE key = ", _p(name), ")")
        return _Loc(found, "$")

    def keys(self, keys: Iterable[str]) -> _Loc:
        loc = self
        for key in keys:
            loc = loc.child(key)
        return loc

    def index(self, i: int) -> _Loc:
        return _Loc(self.base, f"{self.path}[{i}]")

    @property
    def ref(self) -> _Ref:
        return _Ref(self.base, _p(self.path), self.path)

    def call(self, fn: str) -> Frag:
        return self.ref.call(fn)


@dataclass(frozen=True, slots=True)
class _Ref:
    """A JSON location whose path is an SQL expression (``text``: the path, when fixed)."""

    base: Frag
    path: Frag
    text: str | None = None

    def call(self, fn: str) -> Frag:
        return _j(fn, "(", self.base, ", ", self.path, ")")

    def at_value(self) -> _Ref:
        """The ``@value`` member of the object here (a JSON-LD typed literal)."""
        if self.text is not None:
            text = self.text + '."@value"'
            return _Ref(self.base, _p(text), text)
        return _Ref(self.base, _j("(", self.path, """ || '."@value"')"""))


# A test on one candidate value: JSON type → condition on the value (SQL).
_Test = dict[str, Callable[[Frag], Frag]]


@dataclass(frozen=True, slots=True)
class _Semantics:
    """How a comparison judges a group of candidates (array, language map) and a single one."""

    single: _Test
    group: Callable[[Callable[[_Test], Frag]], Frag]


def _positive(test: _Test) -> _Semantics:
    return _Semantics(test, lambda any_of: any_of(test))


def _negative(comparable: _Test, equal: _Test) -> _Semantics:
    """``!=``/``!~=``: some candidate is comparable and none is equal."""

    def single_test(jtype: str) -> Callable[[Frag], Frag]:
        def cond(x: Frag) -> Frag:
            comp = comparable[jtype](x)
            if jtype not in equal:
                return comp
            not_equal = _j("NOT (", equal[jtype](x), ")")
            return not_equal if comp is TRUE else _j("(", comp, " AND ", not_equal, ")")
        return cond

    return _Semantics({t: single_test(t) for t in comparable},
                      lambda any_of: _j("(", any_of(comparable), " AND NOT ", any_of(equal),
                                        ")"))


def _on_date_key(x: Frag, want_time: bool, cond: Callable[[Frag], Frag]) -> Frag:
    """``cond`` on the comparison key of the date-time string ``x`` (``qlang.datetime_key``),
    0 when ``x`` is not one. A value already in canonical form is its own key: SQLite checks
    that without calling Python."""
    slow = _j("coalesce(", cond(_j("ngsild_dtkey(", x, ", 1)" if want_time else ", 0)")), ", 0)")
    if want_time:
        return slow
    return _j("CASE WHEN strftime(", _CANONICAL_DT, ", ", x, ", '+0 days') = ", x, " AND ", x,
              " >= '0001' THEN ", cond(x), " ELSE ", slow, " END")


_JSON_TYPES = {"number": ("integer", "real"), "string": ("text",), "datetime": ("text",),
               "time": ("text",), "bool": ("true", "false")}


def _param(value: object) -> Frag:
    return _p(value.iso if isinstance(value, DateTimeValue) else value)


def _on_key(kind: str, x: Frag, cond: Callable[[Frag], Frag]) -> Frag:
    """``cond`` on the value ``x`` made comparable with values of ``kind``."""
    return _on_date_key(x, kind == "time", cond) if kind in ("datetime", "time") else cond(x)


def _merge(parts: dict[str, list[Callable[[Frag], Frag]]]) -> _Test:
    def merged(builders: list[Callable[[Frag], Frag]]) -> Callable[[Frag], Frag]:
        def cond(x: Frag) -> Frag:
            conds = [b(x) for b in builders]
            if any(c is TRUE for c in conds):
                return TRUE
            return conds[0] if len(conds) == 1 else _j("(", _joined(conds, " OR "), ")")
        return cond
    return {jtype: merged(builders) for jtype, builders in parts.items()}


def _add(parts: dict[str, list[Callable[[Frag], Frag]]], kind: str,
         build: Callable[[Frag], Frag]) -> None:
    for jtype in _JSON_TYPES[kind]:
        parts.setdefault(jtype, []).append(build)


def _order_test(op: str, value: object) -> _Test:
    kind = _class_of(value)
    parts: dict[str, list[Callable[[Frag], Frag]]] = {}
    _add(parts, kind, lambda x: _on_key(kind, x, lambda k: _j(k, f" {op} ", _param(value))))
    return _merge(parts)


def _equal_test(value: object) -> _Test:
    parts: dict[str, list[Callable[[Frag], Frag]]] = {}
    if isinstance(value, Range):
        kind = _class_of(value.low)
        if _class_of(value.high) != kind:
            raise BadRequestData("q: a range must have bounds of the same kind")
        _add(parts, kind, lambda x: _on_key(kind, x, lambda k: _j(
            k, " BETWEEN ", _param(value.low), " AND ", _param(value.high))))
        return _merge(parts)
    values = value if isinstance(value, tuple) else (value,)
    by_kind: dict[str, list[object]] = {}
    for item in values:
        by_kind.setdefault(_class_of(item), []).append(item)
    for kind, items in by_kind.items():
        if kind == "bool":
            for flag in set(items):
                parts.setdefault("true" if flag else "false", []).append(lambda x: TRUE)
            continue
        _add(parts, kind, _in_builder(kind, items))
    return _merge(parts)


def _in_builder(kind: str, items: list[object]) -> Callable[[Frag], Frag]:
    return lambda x: _on_key(kind, x, lambda k: _in(k, items))


def _is_date_builder(want_time: bool) -> Callable[[Frag], Frag]:
    return lambda x: _on_date_key(x, want_time, lambda k: _j(k, " IS NOT NULL"))


def _in(x: Frag, items: list[object]) -> Frag:
    if len(items) == 1:
        return _j(x, " = ", _param(items[0]))
    return _j(x, " IN (", _joined((_param(i) for i in items), ", "), ")")


def _comparable_test(value: object) -> _Test:
    values: Iterable[object]
    if isinstance(value, Range):
        values = (value.low,)
    else:
        values = value if isinstance(value, tuple) else (value,)
    parts: dict[str, list[Callable[[Frag], Frag]]] = {}
    for kind in {_class_of(v) for v in values}:
        if kind in ("datetime", "time"):
            _add(parts, kind, _is_date_builder(kind == "time"))
        else:
            _add(parts, kind, lambda x: TRUE)
    return _merge(parts)


def _semantics(cmp: Comparison) -> _Semantics:
    op, value = cmp.op, cmp.value
    if op in PATTERN_OPS:
        if not isinstance(value, str):
            raise BadRequestData("q: a pattern must be a string")
        matches: _Test = {"text": lambda x: _j("regexp(", _p(value), ", ", x, ")")}
        return _positive(matches) if op == "~=" else _negative({"text": lambda x: TRUE},
                                                               matches)
    if op in ORDER_OPS:
        if isinstance(value, tuple | Range):
            raise BadRequestData(f"q: {op} needs a single value")
        return _positive(_order_test(str(op), value))
    if op == "==":
        return _positive(_equal_test(value))
    if op == "!=":
        return _negative(_comparable_test(value), _equal_test(value))
    raise BadRequestData(f"q: unknown operator {op!r}")


class _Compiler:
    """Builds the SQL of one expression. The SQL nests as little as it can: SQLite's parser
    has a small fixed stack (about 20 nested CASEs or 12 nested sub-selects)."""

    def __init__(self, rid: str | None = None) -> None:
        self._aliases = 0
        self._rid = rid

    def _alias(self) -> str:
        self._aliases += 1
        return f"q{self._aliases}"

    def expr(self, expr: QExpr, doc: Frag) -> Frag:
        if isinstance(expr, Comparison):
            return self.comparison(expr, doc)
        if not expr.terms:
            raise BadRequestData("q: empty expression")
        sep = " AND " if isinstance(expr, And) else " OR "
        return _j("(", _joined((self.expr(t, doc) for t in expr.terms), sep), ")")

    def comparison(self, cmp: Comparison, doc: Frag) -> Frag:
        path = cmp.path
        member, subs = split_path(path)
        attr_list = _Loc(doc, "$").child("attrs").child(path.attr)
        if cmp.op is None and member is None and not path.keys:
            return self._some_instance(attr_list, subs, None)
        semantics = None if cmp.op is None else _semantics(cmp)
        vocab = vocab_comparison(cmp)
        vocab_semantics = None if vocab is None else _semantics(vocab)

        def on_instance(inst: _Loc) -> Frag:
            return self._instance(inst, member, path.keys, semantics, vocab_semantics)
        return self._some_instance(attr_list, subs, on_instance)

    def stored(self, expr: QExpr) -> Frag | None:
        """``expr`` judged on the ``attr_values`` rows alone, in SQL's three-valued logic: 1 or
        0 when the rows decide, NULL when some comparison needs the document (its attribute
        has no row, or it is not a plain comparison of a top-level attribute's value). An And
        with a false part is false, an Or with a true part is true, whatever the rest says.
        None when no comparison can be judged on rows."""
        if isinstance(expr, Comparison):
            member, subs = split_path(expr.path)
            if expr.op is None or member is not None or subs or expr.path.keys:
                return None
            return self._stored_value(expr.path.attr, _semantics(expr).single)
        if not expr.terms:
            raise BadRequestData("q: empty expression")
        parts = [self.stored(term) for term in expr.terms]
        if all(part is None for part in parts):
            return None
        known = [Frag("NULL") if p is None else p for p in parts]
        if len(known) <= _SHORT_CIRCUIT_MAX:
            return _short_circuit(known, isinstance(expr, And))
        sep = " AND " if isinstance(expr, And) else " OR "
        return _j("(", _joined(known, sep), ")")

    def _stored_value(self, attr: str, test: _Test) -> Frag:
        """The test on the attribute's ``attr_values`` row: 0 or 1, NULL when it has none.
        The row holds what ``json_type``/``json_extract`` give for the one instance's scalar
        value, so the test is the one the document would get (``_value``, scalar case)."""
        a = self._alias()
        whens: list[str | Frag] = []
        for json_type, cond in test.items():
            whens += [f" WHEN '{json_type}' THEN ", cond(Frag(f"{a}.v"))]
        # ``self._rid`` is the caller's column expression, never request data.
        sql = (f" ELSE 0 END FROM attr_values {a} WHERE {a}.rid = {self._rid} "  # noqa: S608
               f"AND {a}.aid = (SELECT aid FROM attr_names WHERE iri = ")
        return _j(f"(SELECT CASE {a}.t", *whens, sql, _p(attr), "))")

    def _some_instance(self, instances: _Loc, subs: tuple[str, ...],
                       pred: Callable[[_Loc], Frag] | None) -> Frag:
        """Some instance at the end of ``subs``, starting from the instance list at
        ``instances``, satisfies ``pred`` (exists, when None). When every level has one
        instance this is a path look-up; otherwise ``json_each`` walks the instances."""
        count = _j("coalesce(", instances.call("json_array_length"), ", 0)")
        if pred is None and not subs:
            return _j(count, " > 0")
        inst = instances.index(0)
        ones: list[Frag] = []
        fast: Frag | None = None
        for level, sub in enumerate(subs):
            found = inst.child("attrs").child(sub)
            if pred is None and level == len(subs) - 1:
                fast = _j("coalesce(", found.call("json_array_length"), ", 0) > 0")
                break
            ones.append(_j(found.call("json_array_length"), " = 1"))
            inst = found.index(0)
        if fast is None:
            assert pred is not None
            fast = pred(inst)
        walk = self._each_instance(instances, subs, pred)
        if not ones:
            return _j("CASE ", count, " WHEN 0 THEN 0 WHEN 1 THEN ", fast, " ELSE ", walk, " END")
        return _j("CASE WHEN ", count, " = 0 THEN 0 WHEN ", _joined([_j(count, " = 1"), *ones],
                  " AND "), " THEN ", fast, " ELSE ", walk, " END")

    def _each_instance(self, instances: _Loc, subs: tuple[str, ...],
                       pred: Callable[[_Loc], Frag] | None) -> Frag:
        sources: list[Frag] = []
        current = instances
        for level in range(len(subs) + 1):
            alias = self._alias()
            sources.append(_j("json_each(", current.base, ", ", _p(current.path), ") AS " + alias))
            # json_quote keeps objects as they are and makes any malformed instance valid JSON.
            inst = _Loc(Frag(f"json_quote({alias}.value)"), "$")
            if level < len(subs):
                current = inst.child("attrs").child(subs[level])
        where = TRUE if pred is None else pred(inst)
        return _j("EXISTS (SELECT 1 FROM ", _joined(sources, ", "), " WHERE ", where, ")")

    def _instance(self, inst: _Loc, member: str | None, keys: tuple[str, ...],
                  semantics: _Semantics | None,
                  vocab_semantics: _Semantics | None = None) -> Frag:
        if member is not None:
            return self._value(inst.child(member).keys(keys).ref, semantics)
        kind = inst.child("type").call("json_extract")
        whens: list[str | Frag] = []
        for k in (PROPERTY, RELATIONSHIP, LANGUAGE_PROPERTY):
            ref = inst.child(VALUE_MEMBER[k]).keys(keys).ref
            lang = k == LANGUAGE_PROPERTY and not keys
            whens += [f" WHEN '{k}' THEN ", self._value(ref, semantics, lang=lang)]
        rare = [LIST_PROPERTY, LIST_RELATIONSHIP, VOCAB_PROPERTY, JSON_PROPERTY]
        if vocab_semantics is not None:
            # The vocab is compared with the query's strings expanded as vocabulary terms.
            ref = inst.child(VALUE_MEMBER[VOCAB_PROPERTY]).keys(keys).ref
            whens += [f" WHEN '{VOCAB_PROPERTY}' THEN ", self._value(ref, vocab_semantics)]
            rare.remove(VOCAB_PROPERTY)
        # The rarer kinds share one branch whose path depends on the kind.
        paths = [_j(f" WHEN '{k}' THEN ", _p(inst.child(VALUE_MEMBER[k]).keys(keys).path))
                 for k in rare]
        path = _j("CASE ", kind, *paths, " ELSE ", _p(inst.child("value").keys(keys).path),
                  " END")
        other = self._value(_Ref(inst.base, path), semantics)
        return _j("CASE ", kind, *whens, " ELSE ", other, " END")

    def _value(self, ref: _Ref, semantics: _Semantics | None, *, lang: bool = False) -> Frag:
        """The semantics on the value at ``ref``: a scalar, an array of candidates, a typed
        literal ``{"@value": …}``, or (``lang``) a language map."""
        if semantics is None:
            return _j(ref.call("json_type"), " IS NOT NULL")
        value = ref.call("json_extract")
        source = self._language_items(ref) if lang else None
        whens: list[str | Frag] = [
            " WHEN 'array' THEN ", semantics.group(
                lambda t: self._some_candidate(self._elements(ref), t)),
            " WHEN 'object' THEN ",
            semantics.group(lambda t: self._some_candidate(source, t)) if source is not None
            else self._typed_literal(ref.at_value(), semantics.single)]
        for json_type, cond in semantics.single.items():
            whens += [f" WHEN '{json_type}' THEN ", cond(value)]
        return _j("CASE ", ref.call("json_type"), *whens, " ELSE 0 END")

    def _typed_literal(self, at_value: _Ref, test: _Test) -> Frag:
        """The test on the ``@value`` of a JSON object, 0 when it has none."""
        if not test:
            return FALSE
        value = at_value.call("json_extract")
        whens: list[str | Frag] = []
        for json_type, cond in test.items():
            whens += [f" WHEN '{json_type}' THEN ", cond(value)]
        return _j("CASE ", at_value.call("json_type"), *whens, " ELSE 0 END")

    def _some_candidate(self, source: Frag, test: _Test) -> Frag:
        """Some row ``(v, t)`` of ``source`` passes ``test``."""
        c = self._alias()
        whens: list[str | Frag] = []
        for json_type, cond in test.items():
            whens += [f" WHEN '{json_type}' THEN ", cond(Frag(f"{c}.v"))]
        return _j("EXISTS (SELECT 1 FROM ", source, f" AS {c} WHERE CASE {c}.t", *whens,
                  " ELSE 0 END)")

    def _elements(self, ref: _Ref) -> Frag:
        """The elements of the array at ``ref`` as rows ``(v, t)``, typed literals unwrapped."""
        e = self._alias()
        return _j("(SELECT ", _unwrapped_columns(e), " FROM ", ref.call("json_each"), f" AS {e})")

    def _language_items(self, ref: _Ref) -> Frag:
        """The strings of the language map at ``ref``, ``{"en": "x", "it": ["y", "z"]}``, as
        rows ``(v, t)``: the values, and the elements of the values that are arrays."""
        m, e = self._alias(), self._alias()
        return _j("(SELECT ", _unwrapped_columns(m), " FROM ", ref.call("json_each"),
                  f" AS {m} WHERE {m}.type <> 'array' UNION ALL SELECT ", _unwrapped_columns(e),
                  " FROM ", ref.call("json_each"), f" AS {m}, json_each(CASE {m}.type WHEN "
                  f"'array' THEN {m}.value END) AS {e})")


# Up to this many parts, an And/Or on stored values stops at the first part that decides it
# (each part one more nested CASE: SQLite's parser allows some twenty).
_SHORT_CIRCUIT_MAX = 4


def _short_circuit(parts: list[Frag], conjunction: bool) -> Frag:
    """The three-valued And (Or) of ``parts``, evaluating each part at most once and none after
    one that decides: 0 (1) as soon as a part is 0 (1)."""
    first, rest = parts[0], parts[1:]
    if not rest:
        return first
    decides, passes = ("0", "1") if conjunction else ("1", "0")
    tail = _short_circuit(rest, conjunction)
    # first is NULL: the result is ``decides`` if the rest decides, else unknown.
    return _j("CASE ", first, f" WHEN {decides} THEN {decides} WHEN {passes} THEN ", tail,
              " ELSE (CASE ", tail, f" WHEN {decides} THEN {decides} END) END")


def _unwrapped_columns(alias: str) -> str:
    """The columns ``v`` (value) and ``t`` (JSON type) of a ``json_each`` row, taken from the
    ``@value`` when the row is an object."""
    at_value = """'$."@value"'"""
    return (f"CASE {alias}.type WHEN 'object' THEN json_extract({alias}.value, {at_value}) "
            f"ELSE {alias}.value END AS v, CASE {alias}.type WHEN 'object' THEN "
            f"json_type({alias}.value, {at_value}) ELSE {alias}.type END AS t")


@lru_cache(maxsize=512)
def _compile_shape(shape: QExpr, doc: str, rid: str | None) -> tuple[str, Bound]:
    frag = _compile_q(shape, doc, rid)
    return frag.sql, Bound.of(frag.params)


def _compile_q(expr: QExpr, doc: str, rid: str | None) -> Frag:
    generic = _Compiler().expr(expr, Frag(doc))
    if rid is not None:
        stored = _Compiler(rid).stored(expr)
        if stored is not None:
            # The document is read (by row id) only when the rows leave the answer open, so
            # the whole condition needs nothing but the row id: a scan driven by the type
            # index tests it before it reads any entity row.
            fallback = _Compiler().expr(expr, Frag("qd.doc"))
            frag = _j("coalesce(", stored, ", (SELECT ", fallback,
                      f" FROM entities qd WHERE qd.rid = {rid}))")
            try:
                _check_parseable(frag)
                return frag
            except TooComplexQuery:
                pass  # the shortcut nests deeper; the generic SQL may still fit
    _check_parseable(generic)
    return generic


def compile_q(expr: QExpr, doc: str = "e.doc", rid: str | None = None,
              ) -> tuple[str, list[object]]:
    """A SQL condition (0 or 1) selecting the documents ``evaluate_q`` accepts. ``doc`` is the
    SQL expression of the document column. With ``rid``, the SQL expression of the entity's
    row id in ``entities``, the condition judges on the ``attr_values`` rows first and reads
    the document only when they cannot decide (both trusted, written by the caller).
    TooComplexQuery when SQLite cannot parse that much nesting.

    The SQL is made once per shape of expression (:mod:`sinergia.storage.q_shapes`): a
    client that sends ``x>0.31``, then ``x>0.77``, compiles (and test-parses) it once."""
    shape, values = shape_of(expr)
    sql, bound = _compile_shape(shape, doc, rid)
    return sql, bound.params(values)


_probe_lock = threading.Lock()
_probe: sqlite3.Connection | None = None


def _check_parseable(frag: Frag) -> None:
    """Parse the SQL once, inside some margin of nesting for the caller's statement: SQLite's
    parser stack (100 entries in common builds) overflows on deeply nested expressions."""
    global _probe  # noqa: PLW0603 - one private connection, created on first use
    with _probe_lock:
        if _probe is None:
            _probe = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            _probe.execute("EXPLAIN SELECT 1 WHERE ((((" + frag.sql + "))))", frag.params)
        except sqlite3.OperationalError as exc:
            # Parsing comes before name resolution: other errors only reflect the probe.
            if "parser stack overflow" in str(exc):
                raise TooComplexQuery("q is nested too deeply to run") from None


def _scope_condition(pattern: str, value: str) -> Frag:
    shape = scope_shape(pattern)
    if shape.kind == "wildcard":
        return _j("ngsild_scope(", _p(pattern), f", {value})")
    if shape.kind == "exact":
        return _j(value, " = ", _p(pattern))
    # "/A/#": "/A" itself, or anything starting with "/A/", i.e. in ["/A/", "/A0").
    base = shape.text
    prefix = _j(value, " >= ", _p(base + "/"), f" AND {value} < ", _p(base + "0"))
    return prefix if not base else _j("(", value, " = ", _p(base), " OR (", prefix, "))")


def _compile_scope(expr: ScopeExpr, doc: str) -> Frag:
    if isinstance(expr, str):
        # ``doc`` is the caller's column expression, never request data.
        return _j("EXISTS (SELECT 1 FROM json_each(", doc, ", '$.scope') AS s "
                  "WHERE s.type = 'text' AND ", _scope_condition(expr, "s.value"), ")")
    if not expr.terms:
        raise BadRequestData("scopeQ: empty expression")
    sep = " AND " if isinstance(expr, ScopeAnd) else " OR "
    assert isinstance(expr, ScopeAnd | ScopeOr)
    return _j("(", _joined((_compile_scope(t, doc) for t in expr.terms), sep), ")")


def compile_scope(expr: ScopeExpr, doc: str = "e.doc") -> tuple[str, list[object]]:
    """A SQL condition (0 or 1) selecting the documents whose ``scope`` matches."""
    frag = _compile_scope(expr, doc)
    return frag.sql, list(frag.params)


# --- functions the SQL calls ----------------------------------------------------------------


def _regexp(pattern: object, value: object) -> int:
    if not isinstance(pattern, str) or not isinstance(value, str):
        return 0
    try:
        return 1 if compiled_regex(pattern).search(value) else 0
    except re.error:
        return 0


def _datetime_key(value: object, want_time: object) -> str | None:
    return datetime_key(value, bool(want_time)) if isinstance(value, str) else None


def _scope(pattern: object, value: object) -> int:
    ok = isinstance(pattern, str) and isinstance(value, str) and scope_matches(pattern, value)
    return 1 if ok else 0


def register_functions(conn: sqlite3.Connection) -> None:
    """The deterministic functions the compiled SQL calls: ``regexp(pattern, text)``
    (Python ``re.search``), ``ngsild_dtkey(text, want_time)`` and ``ngsild_scope(pattern,
    scope)``."""
    conn.create_function("regexp", 2, _regexp, deterministic=True)
    conn.create_function("ngsild_dtkey", 2, _datetime_key, deterministic=True)
    conn.create_function("ngsild_scope", 2, _scope, deterministic=True)
