"""The PostgreSQL SQL of q, scopeQ, type expressions, date-time keys and regular expressions
selects exactly what the Python reference accepts (a superset, re-checked in Python, only
where the compiled filter says it is not exact)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

# The generators of documents and expressions are the SQLite suite's: both backends are
# held to the same cases.
from test_sqlite_filters import (
    CORPUS,
    INJECTION,
    INJECTION_REGEX,
    PATTERNS,
    SCOPES,
    entity_lists,
    expand,
    expressions,
    vocab_expressions,
)

from sinergia.ngsild.qlang import (
    AttrPath,
    Comparison,
    DateTimeValue,
    QExpr,
    TypeAnd,
    TypeOr,
    datetime_key,
    evaluate_q,
    match_scope,
    match_types,
    parse_q,
    parse_scope_q,
    resolve_q,
)
from sinergia.storage.postgres_filters import compile_q, compile_scope, compile_types
from sinergia.storage.postgres_regex import are_escape, to_are
from sinergia.storage.postgres_schema import MIGRATIONS

pytestmark = pytest.mark.postgres
EX = "https://ex.org/"
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.fixture(scope="module")
def pg(postgres_server: str) -> Iterator[Any]:
    """A connection to a schema of this module's own, migrated, with a ``docs`` table."""
    import psycopg
    from psycopg import sql
    from psycopg.types.json import set_json_loads

    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path = {}, public").format(sql.Identifier(schema)))
        for migration in MIGRATIONS:
            conn.execute(migration.sql)
        conn.execute("CREATE TABLE docs (rid serial PRIMARY KEY, id text, doc jsonb)")
        set_json_loads(orjson.loads, conn)
        try:
            yield conn
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def load(pg: Any, entities: list[dict[str, Any]]) -> None:
    pg.execute("TRUNCATE docs")
    with pg.cursor() as cur:
        cur.executemany("INSERT INTO docs (id, doc) VALUES (%s, %s::jsonb)",
                        [(e["id"], orjson.dumps(e).decode()) for e in entities])


def sql_results(pg: Any, expr: QExpr) -> dict[str, Any]:
    """The condition's value on each document, the same whether it reads the document itself
    or the lateral subquery the store's queries join."""
    compiled = compile_q(expr)
    rows = pg.execute(f"SELECT e.id, {compiled.sql} FROM docs e ORDER BY e.rid",
                      compiled.params).fetchall()
    lateral = compile_q(expr, lateral="a")
    assert lateral.sources is not None
    assert lateral.exact == compiled.exact
    rows_lateral = pg.execute(
        f"SELECT e.id, {lateral.sql} FROM docs e{lateral.sources.sql} ORDER BY e.rid",
        (*lateral.params, *lateral.sources.params)).fetchall()
    assert rows_lateral == rows
    return dict(rows)


def check_agrees(pg: Any, entities: list[dict[str, Any]], expr: QExpr) -> None:
    got = sql_results(pg, expr)
    assert set(got.values()) <= {True, False}, "the SQL must never yield NULL"
    expected = {e["id"]: evaluate_q(expr, e) for e in entities}
    if compile_q(expr).exact:
        assert got == expected
    else:  # a superset: nothing Python accepts may be missing
        assert {k for k, v in expected.items() if v} <= {k for k, v in got.items() if v}


@pytest.fixture(scope="module")
def corpus(pg: Any) -> Any:
    load(pg, CORPUS)
    return pg


@pytest.mark.parametrize("text", [
    "a", "a==5", "a>4", "a!=5", 'a=="b"', 'a!="abc"', "a==10", "a[k][j]==2", 'a[en]=="abc"',
    "a.s==10", 'a.s!="on"', "a.s.t<09:30", "a==urn:x:1", "b==urn:x:2",
    "a>2024-01-01T09:59:59Z", "b>2024-01-01T23:00:00Z", "a.observedAt<2024-01-01T10:00:01Z",
    "a.datasetId", "odd==5", "b==true", 'a~="^a"', 'a!~="c$"', "a==1..5",
])
def test_corpus(corpus: Any, text: str) -> None:
    """The expected ids of these are asserted by the SQLite suite, on the same corpus."""
    load(corpus, CORPUS)
    check_agrees(corpus, CORPUS, resolve_q(parse_q(text), expand))


@pytest.mark.parametrize("text", [
    'a=="x"', 'a=="abc"', 'b=="on"', 'b=="on","z"', 'b!="on"', 'b!="z"', 'b>"ab"',
    'b=="a".."b"', 'a!="x"', 'b~="on$"', 'b~="^on$"', 'a.observedAt=="x"',
])
def test_strings_compared_with_a_vocab_are_expanded(corpus: Any, text: str) -> None:
    load(corpus, CORPUS)
    check_agrees(corpus, CORPUS, resolve_q(parse_q(text), expand, expand))


@settings(max_examples=100, deadline=None, suppress_health_check=HEALTH)
@given(entity_lists(), st.lists(vocab_expressions(), min_size=1, max_size=4))
def test_sql_agrees_with_evaluator_on_vocab_expansion(
        pg: Any, entities: list[dict[str, Any]], exprs: list[QExpr]) -> None:
    load(pg, entities)
    for expr in exprs:
        check_agrees(pg, entities, expr)


@settings(max_examples=150, deadline=None, suppress_health_check=HEALTH)
@given(expressions())
def test_sql_agrees_with_evaluator_on_corpus(corpus: Any, expr: QExpr) -> None:
    load(corpus, CORPUS)
    check_agrees(corpus, CORPUS, expr)


@settings(max_examples=150, deadline=None, suppress_health_check=HEALTH)
@given(entity_lists(), st.lists(expressions(), min_size=1, max_size=4))
def test_sql_agrees_with_evaluator_on_generated_entities(
        pg: Any, entities: list[dict[str, Any]], exprs: list[QExpr]) -> None:
    load(pg, entities)
    for expr in exprs:
        check_agrees(pg, entities, expr)


def test_untranslatable_regex_is_a_superset_flagged_inexact(corpus: Any) -> None:
    expr = resolve_q(parse_q(r'a~="(?i)ABC"'), expand)
    assert not compile_q(expr).exact
    load(corpus, CORPUS)
    check_agrees(corpus, CORPUS, expr)
    assert compile_q(resolve_q(parse_q('a~="^ab+c$"'), expand)).exact


# --- date-time keys -----------------------------------------------------------------------------

DIGIT = st.sampled_from("0123456789")
UNICODE_DIGIT = st.sampled_from("0123456789\u0663\u06f7\u0967\uff10\U0001d7e1")
SEPARATOR = st.sampled_from(["-", "T", ":", ".", "Z", "+", " ", "x", ""])


@st.composite
def date_like(draw: st.DrawFn) -> str:
    """Strings near the date-time grammar: right shapes with any digits, and near misses."""
    digit = UNICODE_DIGIT if draw(st.integers(0, 9)) == 0 else DIGIT
    def num(n: int) -> str:
        return "".join(draw(st.lists(digit, min_size=n, max_size=n)))
    shape = draw(st.integers(0, 3))
    if shape == 0:  # a random walk through the separators
        return "".join(draw(st.lists(st.one_of(digit, SEPARATOR), max_size=30)))
    clock = f"{num(2)}:{num(2)}"
    if draw(st.booleans()):
        clock += f":{num(2)}"
        if draw(st.booleans()):
            clock += "." + num(draw(st.integers(1, 7)))
    offset = draw(st.sampled_from(["", "Z", "+", "-", " "]))
    if offset not in ("", "Z"):
        offset += num(2) + draw(st.sampled_from(["", ":", "X"])) + num(draw(st.sampled_from(
            [0, 2])))
    if shape == 1:
        return clock + offset
    day = f"{num(4)}-{num(2)}-{num(2)}"
    return day if shape == 2 else f"{day}T{clock}{offset}"


@settings(max_examples=400, deadline=None, suppress_health_check=HEALTH)
@given(st.lists(date_like(), min_size=1, max_size=20))
@example(["2024-02-29T10:00:00Z", "2023-02-29", "0001-01-01T00:30:00+01:00",
          "9999-12-31T23:30:00-01:00", "2024-01-01T10:00:00.0004Z", "10:00:00+23:59",
          "10:00+24:00", "00:00:00+01:00", "2024-01-01T24:00:00Z",
          "\u0662\u0660\u0662\u0664-\u0660\u0661-\u0660\u0661",  # Arabic-Indic digits
          "2024-01-01T10:00:00 05:30", "1900-02-29", "2000-02-29"])
def test_dtkey_is_datetime_key(pg: Any, texts: list[str]) -> None:
    for want_time in (False, True):
        rows = pg.execute("SELECT ngsild_dtkey(t, %s) FROM unnest(%s::text[]) "
                          "WITH ORDINALITY AS v(t, n) ORDER BY n",
                          (want_time, texts)).fetchall()
        assert [r[0] for r in rows] == [datetime_key(t, want_time) for t in texts]


# --- regular expressions ------------------------------------------------------------------------

REGEX_ATOMS = st.sampled_from([
    "a", "b", "ab", ".", "\\.", "[ab]", "[^a]", "[a-c]", "[\\]x]", "[-a]", "é", "\\n", "\n",
    "^", "$", "\\A", "\\Z", "(a|b)", "(?:ab)", "x{2}", "a{1,3}?", "b*", "c+", "a?", "[^\\n]",
    "\\$", "\\\\", "\\(", "[.]", "(a)?", "\\x41", "\\u00e9", " ", "'", '"', "%", "_", "\\d",
    "\\w", "(?i)a", "(?=a)", "[\\d]", "\\b", "(a)\\1", "a{300}"])
SUBJECTS = st.text(st.sampled_from("abcxAé.\n$\\()[]'\"%_ 01é"), max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=HEALTH)
@given(st.lists(REGEX_ATOMS, min_size=1, max_size=5).map("".join),
       st.lists(SUBJECTS, min_size=1, max_size=12))
def test_translated_regex_matches_like_python(pg: Any, pattern: str,
                                              subjects: list[str]) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error:
        assume(False)
        return
    are = to_are(pattern)
    assume(are is not None)
    rows = pg.execute("SELECT s ~ %s FROM unnest(%s::text[]) WITH ORDINALITY AS v(s, n) "
                      "ORDER BY n", (are, subjects)).fetchall()
    assert [r[0] for r in rows] == [compiled.search(s) is not None for s in subjects]


@pytest.mark.parametrize("pattern", [r"\d", r"\w+", "(?i)abc", r"(a)\1", "(?=x)y", "a{300}",
                                     "\x00", r"\bx", "(?s).", "(?m)^a"])
def test_regex_without_exact_translation(pattern: str) -> None:
    assert to_are(pattern) is None


def test_escaped_text_matches_itself_only(pg: Any) -> None:
    text = "a.b*c[d]^$(e)|\\f?{1}+\n'\"é"
    rows = pg.execute("SELECT s ~ %s FROM unnest(%s::text[]) WITH ORDINALITY AS v(s, n) "
                      "ORDER BY n", ("^" + are_escape(text) + "$",
                                     [text, text.upper(), "x" + text])).fetchall()
    assert [r[0] for r in rows] == [True, False, False]


# --- scopes and types ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=HEALTH)
@given(st.lists(st.one_of(st.none(), st.sampled_from(SCOPES),
                          st.lists(st.sampled_from(SCOPES), max_size=3)), min_size=1,
                max_size=5),
       st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
       st.sampled_from([";", ",", "|"]))
def test_scope_sql_agrees_with_evaluator(pg: Any, scopes: list[Any], patterns: list[str],
                                         joiner: str) -> None:
    entities = [{"id": f"urn:e:{i}", "attrs": {}, **({} if s is None else {"scope": s})}
                for i, s in enumerate(scopes)]
    expr = parse_scope_q(joiner.join(patterns))
    load(pg, entities)
    compiled = compile_scope(expr)
    got = dict(pg.execute(f"SELECT e.id, {compiled.sql} FROM docs e",
                          compiled.params).fetchall())
    assert got == {e["id"]: match_scope(expr, e.get("scope")) for e in entities}


TYPES = [EX + "A", EX + "B", EX + "C", EX + "A\x00"]


def type_exprs() -> st.SearchStrategy[Any]:
    return st.recursive(st.sampled_from(TYPES), lambda inner: st.lists(
        inner, min_size=2, max_size=3).flatmap(lambda terms: st.sampled_from(
            [TypeAnd(tuple(terms)), TypeOr(tuple(terms))])), max_leaves=5)


@settings(max_examples=100, deadline=None, suppress_health_check=HEALTH)
@given(st.lists(st.lists(st.sampled_from(TYPES[:3]), min_size=1, max_size=3), min_size=1,
                max_size=5), type_exprs())
def test_type_sql_agrees_with_evaluator(pg: Any, types: list[list[str]], expr: Any) -> None:
    entities = [{"id": f"urn:e:{i}", "type": t, "attrs": {}} for i, t in enumerate(types)]
    load(pg, entities)
    compiled = compile_types(expr)
    got = dict(pg.execute(f"SELECT e.id, {compiled.sql} FROM docs e",
                          compiled.params).fetchall())
    assert got == {e["id"]: match_types(expr, e["type"]) for e in entities}


# --- safety -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    f'a=="{INJECTION}"', f'a~="{INJECTION_REGEX}"', f'a!~="{INJECTION_REGEX}"',
    f'a=="{INJECTION}","\\" OR 1=1 --"', f'a=="{INJECTION}".."z"', "odd==1", "odd.odd>1",
    "a[k]==\"') OR 1=1; --\"", 'a=="a\\u0000b"', 'a<"a\\u0000"',
])
def test_injection_looking_input_is_only_data(corpus: Any, text: str) -> None:
    expr = resolve_q(parse_q(text), expand)
    compiled = compile_q(expr)
    assert "DROP" not in compiled.sql and "OR 1=1" not in compiled.sql
    assert "ex.org" not in compiled.sql
    load(corpus, CORPUS)
    check_agrees(corpus, CORPUS, expr)
    assert corpus.execute("SELECT count(*) FROM docs").fetchone() == (len(CORPUS),)


def test_names_with_nul_match_nothing(corpus: Any) -> None:
    expr = Comparison(AttrPath(EX + "a\x00"), "==", 5)
    assert sql_results(corpus, expr) == {e["id"]: False for e in CORPUS}
    expr = Comparison(AttrPath(EX + "a"), ">=", DateTimeValue("0001-01-01"))
    check_agrees(corpus, CORPUS, expr)
