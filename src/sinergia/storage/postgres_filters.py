"""q, scopeQ and type expressions compiled to PostgreSQL SQL over the JSONB entity document
(``entities.doc``, the internal form of :mod:`sinergia.ngsild.model`).

The SQL has the semantics of :func:`sinergia.ngsild.qlang.evaluate_q`,
:func:`~sinergia.ngsild.qlang.match_scope` and :func:`~sinergia.ngsild.qlang.match_types`
(the tests check it on generated expressions), is never NULL, and takes every value and every
name as a bound parameter. One thing SQL cannot do exactly is a Python regular expression that
has no exact PostgreSQL equivalent (:mod:`sinergia.storage.postgres_regex`): the compiled
filter then selects a superset and says so (``exact=False``); the caller re-checks the rows
with the Python evaluator.

Shape of a comparison: ``EXISTS`` over the attribute's instances (``jsonb_path_query`` walks
them, and the sub-attributes' instances, and yields nothing where the document has no array),
then over the candidates of the instance's value (array elements, language-map strings,
``@value`` of typed literals), each tested only against q values of its own class. The
common shape — one instance, a ``Property``, a scalar value — is tested first without walking,
with as few jsonb operations as possible: a query scanning for its page runs that test on
hundreds of rows, and each operation copies the value it extracts.

Given ``lateral``, ``attrs`` and each attribute's instance array are extracted once a row, by
a lateral subquery the caller adds to its FROM clause (``CompiledFilter.sources``), instead of
once per use (a lookup in the whole ``attrs`` object and a copy each time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.model import LANGUAGE_PROPERTY, PROPERTY, VALUE_MEMBER, VOCAB_PROPERTY
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
    TypeAnd,
    TypeExpr,
    TypeOr,
)
from sinergia.storage.postgres_regex import are_escape, to_are
from sinergia.storage.sql_common import (
    Frag,
    concat,
    joined,
    scope_shape,
    split_path,
    value_class,
    vocab_comparison,
)


def _p(value: object, cast: str = "") -> Frag:
    return Frag("%s" + cast, (value,))


TRUE, FALSE = Frag("true"), Frag("false")
_MAX_EXACT_FLOAT_INT = 2**53

# The value member of an instance by its kind (kinds are our own constants: inlined).
_MEMBER = ("CASE {kind} " + "".join(
    f"WHEN '{kind}' THEN '{member}' " for kind, member in VALUE_MEMBER.items()
    if member != "value") + "ELSE 'value' END")
_UNWRAP = "CASE WHEN jsonb_typeof({c}) = 'object' AND {c} ? '@value' THEN {c} -> '@value' " \
          "ELSE {c} END"
_SQL_TYPE = {"number": "number", "string": "string", "datetime": "string", "time": "string",
             "bool": "boolean"}


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A SQL condition and its parameters. ``exact`` is False when the condition selects a
    superset of the matching rows (the caller must re-check them in Python)."""

    sql: str
    params: tuple[object, ...]
    exact: bool = True
    sources: Frag | None = None  # the lateral subquery to join before the condition


def _has_nul(text: str) -> bool:
    return "\x00" in text


# --- tests on one candidate (a jsonb SQL expression) -------------------------------------------


def _typed(kind: str, v: str) -> Frag:
    return Frag(f"jsonb_typeof({v}) = '{_SQL_TYPE[kind]}'")


def _text_of(v: str) -> str:
    return f"({v} #>> '{{}}')"


def _compare(kind: str, v: str, op: str, value: object) -> Frag:
    """``candidate op value`` for a candidate already known to be of ``kind``'s JSON type;
    NULL or false when it is not comparable (a string that is no date-time)."""
    if kind == "number":
        assert isinstance(value, int | float)
        if isinstance(value, float):
            return concat(f"({v})::float8 {op} ", _p(value, "::float8"))
        # Integers compare exactly with integers; a stored float compares as a float (exact
        # too while the integer is below 2^53).
        return concat(f"CASE WHEN scale(({v})::numeric) > 0 THEN ({v})::float8 {op} ",
                      _p(float(value), "::float8"), f" ELSE ({v})::numeric {op} ",
                      _p(value, "::numeric"), " END")
    if kind == "bool":
        return concat(f"({v})::boolean {op} ", _p(bool(value), "::boolean"))
    if kind == "string":
        assert isinstance(value, str)
        if _has_nul(value):  # text cannot hold U+0000: compare the UTF-8 bytes instead
            return concat(f"convert_to({_text_of(v)}, 'UTF8') {op} ",
                          _p(value.encode(), "::bytea"))
        return concat(f'{_text_of(v)} COLLATE "C" {op} ', _p(value, "::text"))
    assert isinstance(value, DateTimeValue)
    want_time = "true" if kind == "time" else "false"
    return concat(f'ngsild_dtkey({_text_of(v)}, {want_time}) COLLATE "C" {op} ',
                  _p(value.iso, "::text"))


_Test = Callable[[str], Frag]


def _either(conds: list[Frag]) -> Frag:
    if not conds:
        return FALSE
    return conds[0] if len(conds) == 1 else concat("(", joined(conds, " OR "), ")")


def _guarded(kind: str, v: str, *conds: Frag) -> Frag:
    """The conditions on a candidate of ``kind``'s JSON type, false for any other: a CASE,
    because SQL may evaluate AND's operands in any order and a cast of the wrong type fails."""
    return concat("CASE WHEN ", _typed(kind, v), " THEN ", joined(conds, " AND "),
                  " ELSE false END")


def _order_test(op: str, value: object) -> _Test:
    kind = value_class(value)
    return lambda v: _guarded(kind, v, _compare(kind, v, op, value))


def _equal_test(value: object) -> _Test:
    if isinstance(value, Range):
        kind = value_class(value.low)
        if value_class(value.high) != kind:
            raise BadRequestData("q: a range must have bounds of the same kind")
        return lambda v: _guarded(kind, v, _compare(kind, v, ">=", value.low),
                                  _compare(kind, v, "<=", value.high))
    values = value if isinstance(value, tuple) else (value,)
    by_kind: dict[str, list[object]] = {}
    for item in values:
        by_kind.setdefault(value_class(item), []).append(item)

    def test(v: str) -> Frag:
        conds = []
        for kind, items in by_kind.items():
            # A string with U+0000 equals nothing stored (text cannot hold it).
            wanted = [i for i in items if not (kind == "string" and _has_nul(str(i)))]
            if kind == "bool" and len(set(wanted)) == 2:
                conds.append(_typed(kind, v))
            elif wanted:
                conds.append(_guarded(kind, v, _either([_compare(kind, v, "=", i)
                                                        for i in wanted])))
        return _either(conds)
    return test


def _comparable_test(value: object) -> _Test:
    values = (value.low,) if isinstance(value, Range) else (
        value if isinstance(value, tuple) else (value,))
    kinds = sorted({value_class(v) for v in values})

    def test(v: str) -> Frag:
        conds = []
        for kind in kinds:
            if kind in ("datetime", "time"):
                want_time = "true" if kind == "time" else "false"
                conds.append(_guarded(kind, v, Frag(
                    f"ngsild_dtkey({_text_of(v)}, {want_time}) IS NOT NULL")))
            else:
                conds.append(_typed(kind, v))
        return _either(conds)
    return test


@dataclass(frozen=True, slots=True)
class _Semantics:
    """``test`` must hold for some candidate; with ``unless``, additionally no candidate may
    pass ``unless`` (the ``!=``/``!~=`` rule)."""

    test: _Test
    unless: _Test | None = None


class _Compiler:
    def __init__(self, attrs: str, lateral: str | None) -> None:
        self._aliases = 0
        self.exact = True
        self._attrs = attrs if lateral is None else f"{lateral}.attrs"
        self._lateral = lateral
        self.columns: dict[str, str] = {}  # attribute -> column of the lateral subquery

    def instances(self, attr: str) -> Frag:
        """The SQL of ``attr``'s instance array (NULL when the entity has no such attribute)."""
        if self._lateral is None:
            return concat(f"{self._attrs} -> ", _p(attr, "::text"))
        column = self.columns.setdefault(attr, f"c{len(self.columns) + 1}")
        return Frag(f"{self._lateral}.{column}")

    def sources(self, attrs: str) -> Frag | None:
        """The lateral subquery of ``attrs`` (trusted SQL) and the instance arrays."""
        if self._lateral is None:
            return None
        # One subquery (a second lateral would get a Memoize node keyed by the whole attrs
        # object, hashed a row); OFFSET 0 keeps each expression evaluated once a row.
        columns = "".join(f", x.attrs -> %s::text AS {column}"
                          for column in self.columns.values())
        return Frag(f" CROSS JOIN LATERAL (SELECT x.attrs{columns} FROM (SELECT {attrs} AS "  # noqa: S608
                    f"attrs OFFSET 0) x OFFSET 0) {self._lateral}", tuple(self.columns))

    def _alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    def expr(self, expr: QExpr) -> Frag:
        if isinstance(expr, Comparison):
            return self.comparison(expr)
        if not expr.terms:
            raise BadRequestData("q: empty expression")
        sep = " AND " if isinstance(expr, And) else " OR "
        return concat("(", joined((self.expr(t) for t in expr.terms), sep), ")")

    def _semantics(self, cmp: Comparison) -> _Semantics:
        op, value = cmp.op, cmp.value
        if op in PATTERN_OPS:
            if not isinstance(value, str):
                raise BadRequestData("q: a pattern must be a string")
            is_text: _Test = lambda v: Frag(f"jsonb_typeof({v}) = 'string'")  # noqa: E731
            are = to_are(value)
            if are is None:
                self.exact = False  # some string candidate: Python decides the rest
                return _Semantics(is_text)
            matches: _Test = lambda v: concat(  # noqa: E731
                f"jsonb_typeof({v}) = 'string' AND {_text_of(v)} ~ ", _p(are, "::text"))
            return _Semantics(matches) if op == "~=" else _Semantics(is_text, matches)
        if op in ORDER_OPS:
            if isinstance(value, tuple | Range):
                raise BadRequestData(f"q: {op} needs a single value")
            return _Semantics(_order_test(str(op), value))
        if op == "==":
            return _Semantics(_equal_test(value))
        if op == "!=":
            return _Semantics(_comparable_test(value), _equal_test(value))
        raise BadRequestData(f"q: unknown operator {op!r}")

    def comparison(self, cmp: Comparison) -> Frag:
        path = cmp.path
        member, subs = split_path(path)
        if any(_has_nul(name) for name in (path.attr, *subs)):
            return FALSE  # no stored name can hold U+0000
        instances = self.instances(path.attr)
        if cmp.op is None and member is None and not path.keys:
            if not subs:
                return concat("coalesce(jsonb_typeof(", instances, ") = 'array' AND ",
                              instances, " <> '[]'::jsonb, false)")
            return self._some_instance(instances, subs, None)
        semantics = None if cmp.op is None else self._semantics(cmp)
        vocab = vocab_comparison(cmp)
        vocab_semantics = None if vocab is None else self._semantics(vocab)

        def on_instance(inst: str) -> Frag:
            return self._instance(inst, member, path.keys, semantics, vocab_semantics)
        walk = self._some_instance(instances, subs, on_instance)
        if subs or member is not None or path.keys or semantics is None:
            return walk
        # The common shape first: one Property instance (no element 1; an object has none
        # either, but no element 0 then) with a scalar value. The walk answers the rest,
        # including a value that is not an array of instances.
        value = concat("(", instances, " -> 0 -> 'value')")
        return concat("CASE WHEN ", instances, " IS NULL THEN false WHEN ", instances,
                      " -> 1 IS NULL AND (", instances, f" -> 0 ->> 'type') = '{PROPERTY}' "
                      "AND jsonb_typeof(", value, ") IN ('number', 'string', 'boolean') "
                      "THEN coalesce(", self._scalar_value(value, semantics), ", false) ELSE ",
                      walk, " END")

    def _scalar_value(self, value: Frag, semantics: _Semantics) -> Frag:
        """The semantics on one scalar candidate (its own and only candidate)."""
        if value.params:
            # The tests take SQL text, which may repeat it: a parameter becomes a column.
            alias = self._alias("s")
            return concat("(SELECT ", self._scalar_value(Frag(f"{alias}.v"), semantics),
                          " FROM (SELECT ", value, f" AS v) AS {alias})")
        v = value.sql
        if semantics.unless is None:
            return semantics.test(v)
        return concat("(coalesce(", semantics.test(v), ", false) AND NOT coalesce(",
                      semantics.unless(v), ", false))")

    def _some_instance(self, instances: Frag, subs: tuple[str, ...],
                       pred: Callable[[str], Frag] | None) -> Frag:
        """Some instance at the end of ``subs`` (starting from the instance array
        ``instances``) satisfies ``pred`` (exists, when None)."""
        alias = self._alias("i")
        sources = [concat("jsonb_path_query(", instances,
                          f", 'strict $[*]', '{{}}', true) AS {alias}(v)")]
        for sub in subs:
            inner = self._alias("i")
            sources.append(concat(f"jsonb_path_query({alias}.v -> 'attrs' -> ",
                                  _p(sub, "::text"), f", 'strict $[*]', '{{}}', true) "
                                  f"AS {inner}(v)"))
            alias = inner
        where = TRUE if pred is None else pred(f"{alias}.v")
        return concat("EXISTS (SELECT 1 FROM ", joined(sources, ", "), " WHERE ", where, ")")

    def _instance(self, inst: str, member: str | None, keys: tuple[str, ...],
                  semantics: _Semantics | None,
                  vocab_semantics: _Semantics | None = None) -> Frag:
        kind = f"({inst} ->> 'type')"
        if member is not None:
            target = concat(f"{inst} -> ", _p(member, "::text"))
            lang: str | None = None
        else:
            target = Frag(f"{inst} -> ({_MEMBER.format(kind=kind)})")
            lang = None if keys else f"{kind} = '{LANGUAGE_PROPERTY}'"
        for key in keys:
            target = concat(target, " -> ", _p(key, "::text"))
        if semantics is None:
            return concat("(", target, ") IS NOT NULL")
        matches = self._value(target, semantics, lang)
        if vocab_semantics is None:
            return matches
        # The vocab of a VocabProperty is compared with the query's strings expanded as
        # vocabulary terms.
        vocab = Frag(f"{inst} -> '{VALUE_MEMBER[VOCAB_PROPERTY]}'")
        for key in keys:
            vocab = concat(vocab, " -> ", _p(key, "::text"))
        return concat(f"CASE WHEN {kind} = '{VOCAB_PROPERTY}' THEN ",
                      self._value(vocab, vocab_semantics, None), " ELSE ", matches, " END")

    def _value(self, target: Frag, semantics: _Semantics, lang: str | None) -> Frag:
        """The semantics over the candidates of the value ``target``: its elements when an
        array, the strings of a language map (``lang``: the SQL saying it is one), or the
        value itself; a typed literal ``{"@value": …}`` stands for its ``@value``."""
        t, j, r = self._alias("t"), self._alias("j"), self._alias("r")
        path = "'lax $[*]'::jsonpath"
        if lang is not None:
            path = (f"CASE WHEN {lang} AND jsonb_typeof({t}.x) = 'object' "
                    f"THEN 'lax $.*[*]'::jsonpath ELSE {path} END")
        unwrap = _UNWRAP.format(c=f"{j}.c")
        source = concat("(SELECT ", target, f" AS x) AS {t}, LATERAL (SELECT {unwrap} AS v "  # noqa: S608
                        f"FROM jsonb_path_query({t}.x, {path}) AS {j}(c)) AS {r}")
        v = f"{r}.v"
        if semantics.unless is None:
            return concat("EXISTS (SELECT 1 FROM ", source, " WHERE ", semantics.test(v), ")")
        return concat("(SELECT count(*) FILTER (WHERE ", semantics.test(v), ") > 0 AND "
                      "count(*) FILTER (WHERE ", semantics.unless(v), ") = 0 FROM ", source,
                      ")")


@lru_cache(maxsize=512)
def compile_q(expr: QExpr, doc: str = "e.doc", attrs: str | None = None,
              lateral: str | None = None) -> CompiledFilter:
    """A SQL condition selecting the documents ``evaluate_q`` accepts (a superset when
    ``exact`` is False). ``doc`` is the SQL of the document column, ``attrs`` (when given)
    that of its ``attrs`` object, both trusted.

    The condition reads ``attrs`` several times per comparison: when it is the document's
    member, every read decompresses the whole stored document again. Given ``lateral`` (an
    alias), it reads a lateral subquery instead (``sources``, for the caller's FROM clause
    after the document's table), which extracts ``attrs`` once a row as ``{lateral}.attrs``,
    and each attribute's instance array once."""
    attrs_sql = attrs if attrs is not None else f"{doc} -> 'attrs'"
    compiler = _Compiler(attrs_sql, lateral)
    frag = compiler.expr(expr)
    return CompiledFilter(frag.sql, frag.params, compiler.exact, compiler.sources(attrs_sql))


# --- scopeQ ----------------------------------------------------------------------------------


def _scope_condition(pattern: str, s: str) -> Frag:
    shape = scope_shape(pattern)
    if shape.kind == "exact":
        return concat(f"{s} = ", _p(pattern, "::text"))
    if shape.kind == "subtree":
        # "/A/#": "/A" itself or anything below, i.e. in ["/A/", "/A0") in code point order.
        base = shape.text
        below = concat(f'{s} COLLATE "C" >= ', _p(base + "/", "::text"),
                       f' AND {s} COLLATE "C" < ', _p(base + "0", "::text"))
        return below if not base else concat(f"({s} = ", _p(base, "::text"), " OR (", below,
                                              "))")
    levels = "".join("/" + ("[^/]+" if level == "+" else are_escape(level))
                     for level in shape.levels)
    regex = "^" + levels + ("(/.*)?$" if shape.any_below else "$")
    return concat(f"{s} ~ ", _p(regex, "::text"))


def _compile_scope(expr: ScopeExpr, doc: str) -> Frag:
    if isinstance(expr, str):
        # ``doc`` is the caller's column expression, never request data.
        return concat(f"EXISTS (SELECT 1 FROM jsonb_path_query({doc} -> 'scope', 'lax $[*]') "  # noqa: S608
                      "AS sc(v) WHERE jsonb_typeof(sc.v) = 'string' AND ",
                      _scope_condition(expr, "(sc.v #>> '{}')"), ")")
    if not expr.terms:
        raise BadRequestData("scopeQ: empty expression")
    sep = " AND " if isinstance(expr, ScopeAnd) else " OR "
    assert isinstance(expr, ScopeAnd | ScopeOr)
    return concat("(", joined((_compile_scope(t, doc) for t in expr.terms), sep), ")")


@lru_cache(maxsize=256)
def compile_scope(expr: ScopeExpr, doc: str = "e.doc") -> CompiledFilter:
    """A SQL condition selecting the documents whose ``scope`` matches."""
    frag = _compile_scope(expr, doc)
    return CompiledFilter(frag.sql, frag.params)


# --- type expressions --------------------------------------------------------------------------


def _compile_types(expr: TypeExpr, types: str) -> Frag:
    if isinstance(expr, str):
        if _has_nul(expr):
            return FALSE
        return concat(f"({types}) ? ", _p(expr, "::text"))
    sep = " AND " if isinstance(expr, TypeAnd) else " OR "
    assert isinstance(expr, TypeAnd | TypeOr)
    return concat("(", joined((_compile_types(t, types) for t in expr.terms), sep), ")")


def compile_types(expr: TypeExpr, types: str = "e.doc -> 'type'") -> CompiledFilter:
    """A SQL condition selecting the rows whose types (``types``: the SQL of a JSON array of
    type IRIs, trusted) satisfy the expression."""
    frag = _compile_types(expr, types)
    return CompiledFilter(frag.sql, frag.params)
