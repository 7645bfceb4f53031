"""The SQL that q and scopeQ compile to selects exactly what the Python evaluator accepts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinergia.ngsild.qlang import (
    And,
    AttrPath,
    Comparison,
    DateTimeValue,
    Or,
    QExpr,
    Range,
    datetime_key,
    evaluate_q,
    match_scope,
    parse_q,
    parse_scope_q,
    resolve_q,
)
from sinergia.storage.sqlite_filters import compile_q, compile_scope, register_functions
from sinergia.storage.sqlite_schema import _VALUES_SCHEMA
from sinergia.storage.sqlite_values import AttrIds, sync_values

EX = "https://ex.org/"
INJECTION = "x'); DROP TABLE entities; --"
INJECTION_REGEX = INJECTION.replace("(", r"\(").replace(")", r"\)")
ODD_NAME = EX + 'q"uote\\d'   # no JSON path can name it: the SQL looks it up by key


def expand(term: str) -> str:
    return ODD_NAME if term == "odd" else EX + term


def connect(entities: list[dict[str, Any]]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    register_functions(conn)
    conn.execute("CREATE TABLE entities (rid INTEGER PRIMARY KEY, id TEXT, doc TEXT)")
    conn.executemany("INSERT INTO entities (id, doc) VALUES (?, ?)",
                     [(e["id"], orjson.dumps(e).decode()) for e in entities])
    # The side table of stored scalar values, kept by the same code as the store's writer.
    for statement in filter(None, (s.strip() for s in _VALUES_SCHEMA.split(";"))):
        conn.execute(statement)
    rids = dict(conn.execute("SELECT id, rid FROM entities").fetchall())
    sync_values(conn, AttrIds(), [(rids[e["id"]], None, e) for e in entities])
    return conn


def sql_results(conn: sqlite3.Connection, expr: QExpr, *, shortcut: bool = False
                ) -> dict[str, Any]:
    sql, params = compile_q(expr, rid="e.rid" if shortcut else None)
    query = f"SELECT e.id, {sql} FROM entities e"
    return dict(conn.execute(query, params).fetchall())


def check_agrees(conn: sqlite3.Connection, entities: list[dict[str, Any]], expr: QExpr) -> None:
    """Both the SQL over the documents and the one that reads stored scalar values first
    select exactly what the evaluator accepts."""
    expected = {e["id"]: int(evaluate_q(expr, e)) for e in entities}
    for shortcut in (False, True):
        got = sql_results(conn, expr, shortcut=shortcut)
        assert set(got.values()) <= {0, 1}, "the SQL must never yield NULL"
        assert got == expected, f"shortcut={shortcut}"


# --- generated documents ----------------------------------------------------------------------

# No U+0000 in stored strings: SQLite 3.40's JSON functions cut strings there.
STRINGS = ["", "a", "b", "abc", "ABC", "on", "é", 'x"y', "tab\t", INJECTION,
           "urn:x:1", "urn:x:2", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.000Z",
           "2024-01-01T11:00:00+01:00", "2024-01-01T10:00:00.0004Z", "2024-01-01",
           "2024-01-02", "10:00:00", "09:00:00Z", "2024-02-30T00:00:00.000Z",
           "0000-01-01T00:00:00.000Z", "2024-01-01T24:00:00.000Z", "2024-01-01 10:00:00"]
VOCABS = [*STRINGS, EX + "a", EX + "abc", EX + "on"]   # stored vocab terms are IRIs
SCALARS = st.one_of(
    st.sampled_from([-1, 0, 1, 5, 10, 2**40, 0.5, -1.5, 2.5, 1.0, 1e16, True, False, None]),
    st.sampled_from(STRINGS),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=4))
LEAF_VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.fixed_dictionaries({"@value": SCALARS}, optional={"@type": st.just("DateTime")}),
)
VALUES = st.one_of(
    LEAF_VALUES,
    st.dictionaries(st.sampled_from(["k", "j", "en"]), LEAF_VALUES, max_size=2),
    st.lists(st.one_of(SCALARS, st.dictionaries(st.just("@value"), SCALARS)), max_size=3),
)
LANGUAGE_MAPS = st.dictionaries(st.sampled_from(["en", "it", "k"]), st.one_of(
    st.sampled_from(STRINGS), st.lists(st.sampled_from([*STRINGS, None]), max_size=2)),
    max_size=2)
KIND_VALUES: dict[str | None, tuple[str, st.SearchStrategy[Any]]] = {
    "Property": ("value", VALUES),
    "Relationship": ("object", st.one_of(st.sampled_from(STRINGS), SCALARS)),
    "GeoProperty": ("value", st.just({"type": "Point", "coordinates": [9.1, 45.4]})),
    "LanguageProperty": ("languageMap", st.one_of(LANGUAGE_MAPS, SCALARS)),
    "VocabProperty": ("vocab", st.one_of(st.sampled_from(VOCABS), st.lists(
        st.sampled_from(VOCABS), max_size=2))),
    "JsonProperty": ("json", VALUES),
    "ListProperty": ("valueList", st.lists(SCALARS, max_size=3)),
    "ListRelationship": ("objectList", st.lists(st.sampled_from(STRINGS), max_size=3)),
    "Weird": ("value", VALUES),
    None: ("value", VALUES),
}
ATTRS = [EX + "a", EX + "b", ODD_NAME]
SUBS = [EX + "s", EX + "t"]


@st.composite
def instances(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    kind = draw(st.sampled_from(list(KIND_VALUES)))
    member, values = KIND_VALUES[kind]
    inst: dict[str, Any] = {} if kind is None else {"type": kind}
    if draw(st.integers(0, 9)):
        inst[member] = draw(values)
    for name, strategy in (("observedAt", st.sampled_from(STRINGS)),
                           ("unitCode", st.sampled_from(["CEL", "a"])),
                           ("datasetId", st.sampled_from(["urn:d:1", "urn:d:2"]))):
        if draw(st.booleans()):
            inst[name] = draw(strategy)
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        inst["attrs"] = draw(st.dictionaries(st.sampled_from(SUBS), st.lists(
            instances(depth + 1), min_size=1, max_size=2), max_size=2))
    return inst


def entity_lists(max_size: int = 6) -> st.SearchStrategy[list[dict[str, Any]]]:
    entity = st.fixed_dictionaries({"attrs": st.dictionaries(
        st.sampled_from(ATTRS), st.lists(instances(), min_size=1, max_size=3), max_size=3)})
    return st.lists(entity, min_size=1, max_size=max_size).map(
        lambda es: [{"id": f"urn:e:{i}", **e} for i, e in enumerate(es)])


# --- generated expressions (compact names, resolved like the API does) ------------------------

DATE_LITERALS = ["2024-01-01T10:00:00Z", "2024-01-01T11:00:00+01:00", "2024-01-01",
                 "2024-01-02", "10:00:00", "09:00:00Z", "2024-01-01T10:00:00.0001Z"]
QUERY_DATES = st.sampled_from(DATE_LITERALS).map(
    lambda t: DateTimeValue(datetime_key(t, ":" in t and "T" not in t) or ""))
QUERY_NUMBERS = st.sampled_from([-1, 0, 1, 2, 5, 10, 2**40, 0.5, 2.5, -1.5, 1e16])
QUERY_STRINGS = st.sampled_from([*STRINGS, "c", "a\x00", "urn:x:10"])
COMPARABLE = st.one_of(QUERY_NUMBERS, QUERY_STRINGS, QUERY_DATES)
QUERY_SCALARS = st.one_of(COMPARABLE, st.booleans())
REGEXES = st.sampled_from(["^a", "b|c", r"\d", "^$", "(?i)abc", "x\"", "^urn:x:[12]$", "\x00",
                           INJECTION_REGEX])


def _kind(value: Any) -> str:
    if isinstance(value, DateTimeValue):
        return "time" if "T" not in value.iso and ":" in value.iso else "datetime"
    return "number" if isinstance(value, int | float) else "string"


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    subs = tuple(draw(st.lists(st.sampled_from(["s", "t"]), max_size=2)))
    if draw(st.integers(0, 2)) == 0:
        subs += (draw(st.sampled_from(["observedAt", "unitCode", "datasetId", "value",
                                       "object"])),)
    keys = tuple(draw(st.lists(st.sampled_from(["k", "j", "en", "it", "@value"]), max_size=2)))
    path = AttrPath(draw(st.sampled_from(["a", "b", "odd"])), subs, keys)
    op = draw(st.sampled_from([None, "==", "!=", ">", ">=", "<", "<=", "~=", "!~="]))
    if op is None:
        return Comparison(path)
    if op in ("~=", "!~="):
        return Comparison(path, op, draw(REGEXES))
    if op in (">", ">=", "<", "<="):
        return Comparison(path, op, draw(COMPARABLE))
    value = draw(st.one_of(
        QUERY_SCALARS,
        st.lists(QUERY_SCALARS, min_size=2, max_size=4).map(tuple),
        st.tuples(COMPARABLE, COMPARABLE).filter(lambda p: _kind(p[0]) == _kind(p[1])).map(
            lambda p: Range(*p))))
    return Comparison(path, op, value)


def expressions() -> st.SearchStrategy[QExpr]:
    def extend(children: st.SearchStrategy[QExpr]) -> st.SearchStrategy[QExpr]:
        groups = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.one_of(groups.map(And), groups.map(Or))
    return st.recursive(comparisons(), extend, max_leaves=4).map(lambda e: resolve_q(e, expand))


def vocab_expressions() -> st.SearchStrategy[QExpr]:
    """Like :func:`expressions`, resolved the way the API does it: the strings compared are
    also expanded, for the vocab of VocabProperty instances."""
    def extend(children: st.SearchStrategy[QExpr]) -> st.SearchStrategy[QExpr]:
        groups = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.one_of(groups.map(And), groups.map(Or))
    return st.recursive(comparisons(), extend, max_leaves=4).map(
        lambda e: resolve_q(e, expand, expand))


# --- a fixed corpus with every shape ----------------------------------------------------------

def p(value: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **members}


CORPUS: list[dict[str, Any]] = [
    {"id": "urn:c:1", "attrs": {EX + "a": [p(5, observedAt="2024-01-01T10:00:00.000Z")]}},
    {"id": "urn:c:2", "attrs": {EX + "a": [p(1, datasetId="urn:d:1"), p("abc")]}},
    {"id": "urn:c:3", "attrs": {EX + "a": [p([1, "b", {"@value": 10}, [5]])]}},
    {"id": "urn:c:4", "attrs": {EX + "a": [p({"k": {"j": 2}, "en": "abc"})]}},
    {"id": "urn:c:5", "attrs": {EX + "a": [{"type": "LanguageProperty",
                                           "languageMap": {"en": "abc", "it": ["b", "c"]}}]}},
    {"id": "urn:c:6", "attrs": {EX + "a": [{"type": "Relationship", "object": "urn:x:1"}],
                                EX + "b": [{"type": "ListRelationship",
                                            "objectList": ["urn:x:1", "urn:x:2"]}]}},
    {"id": "urn:c:7", "attrs": {EX + "a": [p({"@type": "DateTime",
                                              "@value": "2024-01-01T11:00:00+01:00"})]}},
    {"id": "urn:c:8", "attrs": {EX + "a": [p(2.5, attrs={EX + "s": [p("on"), p(10)]})]}},
    {"id": "urn:c:9", "attrs": {EX + "b": [p(True)], ODD_NAME: [p(5)]}},
    {"id": "urn:c:10", "attrs": {EX + "a": [{"type": "VocabProperty", "vocab": EX + "x"},
                                            {"type": "JsonProperty", "json": {"k": 1}}]}},
    {"id": "urn:c:11", "attrs": {EX + "a": [{"type": "ListProperty", "valueList": [0, 5]}],
                                 EX + "b": [p("2024-01-02")]}},
    {"id": "urn:c:12", "attrs": {}},
    {"id": "urn:c:13", "attrs": {EX + "a": [{"type": "Property"}, p(None)]}},
    {"id": "urn:c:14", "attrs": {EX + "a": [p(INJECTION, attrs={EX + "s": [
        p(1, attrs={EX + "t": [p("10:00:00+01:00")]})]})]}},
    {"id": "urn:c:15", "attrs": {EX + "b": [{"type": "VocabProperty", "vocab": [EX + "on",
                                                                               EX + "abc"]}]}},
]


@pytest.fixture(scope="module")
def corpus() -> Iterator[sqlite3.Connection]:
    conn = connect(CORPUS)
    yield conn
    conn.close()


@pytest.mark.parametrize(("text", "ids"), [
    ("a", [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14]),
    ("a==5", [1, 11]), ("a>4", [1, 3, 11]), ("a!=5", [2, 3, 8]), ('a=="b"', [3, 5]),
    ('a!="abc"', [3, 6, 7, 10, 14]), ("a==10", [3]), ("a[k][j]==2", [4]),
    ('a[en]=="abc"', [4, 5]), ("a.s==10", [8]), ('a.s!="on"', []), ("a.s.t<09:30", [14]),
    ("a==urn:x:1", [6]), ("b==urn:x:2", [6]), ("a>2024-01-01T09:59:59Z", [7]),
    ("b>2024-01-01T23:00:00Z", [11]), ("a.observedAt<2024-01-01T10:00:01Z", [1]),
    ("a.datasetId", [2]), ("odd==5", [9]), ("b==true", [9]), ('a~="^a"', [2, 5]),
    ('a!~="c$"', [3, 6, 7, 10, 14]), ("a==1..5", [1, 2, 3, 8, 11]), ("a", None),
])
def test_corpus(corpus: sqlite3.Connection, text: str, ids: list[int] | None) -> None:
    expr = resolve_q(parse_q(text), expand)
    check_agrees(corpus, CORPUS, expr)
    if ids is not None:
        assert [e["id"] for e in CORPUS if evaluate_q(expr, e)] == [f"urn:c:{i}" for i in ids]


@pytest.mark.parametrize(("text", "ids"), [
    ('a=="x"', [10]), ('a=="abc"', [2, 5]), ('b=="on"', [15]), ('b=="on","z"', [15]),
    ('b!="on"', [6, 11]), ('b!="z"', [6, 11, 15]), ('b>"ab"', [6, 15]), ('b=="a".."b"', [15]),
    ('a!="x"', [2, 3, 5, 6, 7, 14]), ('b~="on$"', [15]), ('b~="^on$"', []),
    ('a.observedAt=="x"', []),
])
def test_strings_compared_with_a_vocab_are_expanded(corpus: sqlite3.Connection, text: str,
                                                    ids: list[int]) -> None:
    expr = resolve_q(parse_q(text), expand, expand)
    check_agrees(corpus, CORPUS, expr)
    assert [e["id"] for e in CORPUS if evaluate_q(expr, e)] == [f"urn:c:{i}" for i in ids]


@pytest.mark.parametrize(("texts", "sql_texts"), [
    (["a>0", "a>4", "a>4.5", "a>-1e3"], 1),
    (['a=="abc"', 'a=="b"', 'a==""', "a==urn:x:1"], 1),
    (["a==1..5", "a==5..10", "a==2.5..2.5"], 1),
    (['a==1,"b"', 'a==5,"abc"', 'a==10,"on"'], 1),
    (['a~="^a"', 'a~="c$"', 'a!~="^a"', 'a!~="b"'], 2),
    (["a==5;b==true", "a==1;b==true", "a==5;b==false", "a==1|b==true"], 3),
    (["a==1", "a==true", "a==5", "a==false"], 3),
])
def test_expressions_of_one_shape_share_their_sql_and_keep_their_values(
        corpus: sqlite3.Connection, texts: list[str], sql_texts: int) -> None:
    """The SQL is made once per shape (numbers and strings left as parameters; booleans,
    operators and structure are the shape); each expression still selects exactly its own
    entities, whatever was compiled before it."""
    exprs = [resolve_q(parse_q(text), expand, expand) for text in texts]
    for expr in [*exprs, *reversed(exprs)]:
        check_agrees(corpus, CORPUS, expr)
    compiled = [compile_q(expr) for expr in exprs]
    assert len({sql for sql, _ in compiled}) == sql_texts
    assert len({(sql, tuple(params)) for sql, params in compiled}) == len(texts)


def test_booleans_and_numbers_never_share_a_shape(corpus: sqlite3.Connection) -> None:
    one = compile_q(resolve_q(parse_q("b==1"), expand))
    true = compile_q(resolve_q(parse_q("b==true"), expand))
    assert one[0] != true[0]
    assert [e["id"] for e in CORPUS if sql_results(corpus, resolve_q(parse_q("b==true"),
                                                                       expand))[e["id"]]] == [
        "urn:c:9"]
    assert not any(sql_results(corpus, resolve_q(parse_q("b==1"), expand)).values())


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expressions())
def test_sql_agrees_with_evaluator_on_corpus(corpus: sqlite3.Connection, expr: QExpr) -> None:
    check_agrees(corpus, CORPUS, expr)


@settings(max_examples=300, deadline=None)
@given(entity_lists(), st.lists(expressions(), min_size=1, max_size=4))
def test_sql_agrees_with_evaluator_on_generated_entities(
        entities: list[dict[str, Any]], exprs: list[QExpr]) -> None:
    conn = connect(entities)
    try:
        for expr in exprs:
            check_agrees(conn, entities, expr)
    finally:
        conn.close()


@settings(max_examples=200, deadline=None)
@given(entity_lists(), st.lists(vocab_expressions(), min_size=1, max_size=4))
def test_sql_agrees_with_evaluator_on_vocab_expansion(
        entities: list[dict[str, Any]], exprs: list[QExpr]) -> None:
    conn = connect(entities)
    try:
        for expr in exprs:
            check_agrees(conn, entities, expr)
    finally:
        conn.close()


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z"))
def test_canonical_date_times_are_recognised_in_sql_exactly(text: str) -> None:
    """SQLite alone decides that an already canonical date-time is its own key; it must
    agree with Python on every string of that shape (invalid days, hour 24, year 0…)."""
    entities = [{"id": "urn:e:1", "attrs": {EX + "a": [p(text)]}}]
    conn = connect(entities)
    try:
        key = datetime_key(text)
        exprs = [Comparison(AttrPath(EX + "a"), ">=", DateTimeValue("0001-01-01"))]
        if key is not None:
            exprs.append(Comparison(AttrPath(EX + "a"), "==", DateTimeValue(key)))
        for expr in exprs:
            check_agrees(conn, entities, expr)
        assert sql_results(conn, exprs[0])["urn:e:1"] == int(key is not None)
    finally:
        conn.close()


# --- safety -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    f'a=="{INJECTION}"', f'a~="{INJECTION_REGEX}"', f'a!~="{INJECTION_REGEX}"',
    f'a=="{INJECTION}","\\" OR 1=1 --"', f'a=="{INJECTION}".."z"', "odd==1", "odd.odd>1",
    "a[k]==\"') OR 1=1; --\"",
])
def test_injection_looking_input_is_only_data(corpus: sqlite3.Connection, text: str) -> None:
    expr = resolve_q(parse_q(text), expand)
    sql, _params = compile_q(expr)
    assert "DROP" not in sql and "OR 1=1" not in sql and "ex.org" not in sql
    check_agrees(corpus, CORPUS, expr)
    assert corpus.execute("SELECT count(*) FROM entities").fetchone() == (len(CORPUS),)


def test_names_from_a_hostile_context_are_only_data(corpus: sqlite3.Connection) -> None:
    def hostile(term: str) -> str:
        return f'{EX}{term}"); DROP TABLE entities; --\\'
    expr = resolve_q(parse_q("a.s[k]==1|a>2|a.observedAt"), hostile)
    sql, _ = compile_q(expr)
    assert "DROP" not in sql
    check_agrees(corpus, CORPUS, expr)
    assert corpus.execute("SELECT count(*) FROM entities").fetchone() == (len(CORPUS),)


def test_the_document_column_is_configurable() -> None:
    conn = connect(CORPUS)
    sql, params = compile_q(resolve_q(parse_q("a==5"), expand), doc="x.doc")
    rows = conn.execute(f"SELECT x.id FROM entities x WHERE {sql}", params).fetchall()
    assert rows == [("urn:c:1",), ("urn:c:11",)]


def test_regexp_function() -> None:
    conn = sqlite3.connect(":memory:")
    register_functions(conn)
    rows = conn.execute("SELECT regexp('^a', 'abc'), regexp('^b', 'abc'), regexp('(', 'x'), "
                        "regexp('a', NULL), 'abc' REGEXP 'c$'").fetchone()
    assert rows == (1, 0, 0, 0, 1)


# --- scopes -----------------------------------------------------------------------------------

SCOPES = ["/A", "/A/B", "/A/B/C", "/AB", "/B", "/B/A", "/X/B", "/X/B/C", "A/B", "/A0", "/"]
PATTERNS = ["/A", "/A/B", "/A/#", "/A/B/#", "/#", "/+", "/+/B", "/+/B/#", "/A/+", "/B/+/#"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(SCOPES),
                          st.lists(st.sampled_from(SCOPES), max_size=3)), min_size=1,
                max_size=5),
       st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
       st.sampled_from([";", ",", "|"]))
def test_scope_sql_agrees_with_evaluator(scopes: list[Any], patterns: list[str],
                                         joiner: str) -> None:
    entities = [{"id": f"urn:e:{i}", "attrs": {}, **({} if s is None else {"scope": s})}
                for i, s in enumerate(scopes)]
    expr = parse_scope_q(joiner.join(patterns))
    conn = connect(entities)
    try:
        sql, params = compile_scope(expr)
        got = dict(conn.execute(f"SELECT e.id, {sql} FROM entities e",
                                params).fetchall())
        assert got == {e["id"]: int(match_scope(expr, e.get("scope"))) for e in entities}
    finally:
        conn.close()


def test_scope_examples() -> None:
    entities = [{"id": "urn:e:1", "attrs": {}, "scope": ["/Milano/Municipio1"]},
                {"id": "urn:e:2", "attrs": {}, "scope": ["/Milano"]},
                {"id": "urn:e:3", "attrs": {}}]
    conn = connect(entities)
    for text, ids in [("/Milano/#", ["urn:e:1", "urn:e:2"]), ("/Milano", ["urn:e:2"]),
                      ("/Milano/+", ["urn:e:1"]), ("/#", ["urn:e:1", "urn:e:2"]),
                      ("/Milano/+;/Milano", [])]:
        sql, params = compile_scope(parse_scope_q(text))
        rows = conn.execute(f"SELECT e.id FROM entities e WHERE {sql}", params)
        assert [r[0] for r in rows] == ids
