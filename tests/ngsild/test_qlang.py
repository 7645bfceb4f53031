"""The q, type and scopeQ languages: parsing, printing, resolution and the reference evaluator."""

from __future__ import annotations

import contextlib
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.ngsild.errors import BadRequestData, TooComplexQuery
from sinergia.ngsild.qlang import (
    And,
    AttrPath,
    Comparison,
    DateTimeValue,
    Or,
    QExpr,
    Range,
    ScopeAnd,
    ScopeOr,
    TypeAnd,
    TypeOr,
    datetime_key,
    evaluate_q,
    format_q,
    is_scope_pattern,
    is_valid_scope,
    match_scope,
    match_types,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    q_attributes,
    resolve_q,
    resolve_types,
)


def c(attr: str, op: Any = None, value: Any = None, subs: tuple[str, ...] = (),
      keys: tuple[str, ...] = ()) -> Comparison:
    return Comparison(AttrPath(attr, subs, keys), op, value)


# --- parsing ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("a", c("a")),
    ("a==1", c("a", "==", 1)),
    ("a!=1.5", c("a", "!=", 1.5)),
    ("a>=-2e3", c("a", ">=", -2000.0)),
    ("a<0.25", c("a", "<", 0.25)),
    ('a>"b"', c("a", ">", "b")),
    (r'a=="say \"hi\"\n\u00e9"', c("a", "==", 'say "hi"\né')),
    ("a==true", c("a", "==", True)),
    ("a!=false", c("a", "!=", False)),
    ("a==1..5", c("a", "==", Range(1, 5))),
    ("a==-5..-1.5", c("a", "==", Range(-5, -1.5))),
    ('a=="a".."m"', c("a", "==", Range("a", "m"))),
    ("a==1,2,3", c("a", "==", (1, 2, 3))),
    ('a!="x",2,true', c("a", "!=", ("x", 2, True))),
    ("ref==urn:ngsi-ld:Building:1", c("ref", "==", "urn:ngsi-ld:Building:1")),
    ("ref==urn:a:1,urn:b:2", c("ref", "==", ("urn:a:1", "urn:b:2"))),
    ('ref=="urn:ngsi-ld:Building:1"', c("ref", "==", "urn:ngsi-ld:Building:1")),
    ("a.b", c("a", subs=("b",))),
    ("a.b.c>1", c("a", ">", 1, subs=("b", "c"))),
    ("a.observedAt>2024-01-01T10:00:00Z",
     c("a", ">", DateTimeValue("2024-01-01T10:00:00.000Z"), subs=("observedAt",))),
    ("a[k]", c("a", keys=("k",))),
    ("a.b[k][j]==1", c("a", "==", 1, subs=("b",), keys=("k", "j"))),
    ("ex:a.ex:b==1", c("ex:a", "==", 1, subs=("ex:b",))),
    ("a~=^ab.*", c("a", "~=", "^ab.*")),
    ("a~=x(b|c)+", c("a", "~=", "x(b|c)+")),
    (r'a~="(?i)a b\d"', c("a", "~=", r"(?i)a b\d")),
    (r'a!~="q\"\\\\"', c("a", "!~=", 'q"\\\\')),
    ("air-quality_2>1", c("air-quality_2", ">", 1)),
])
def test_parse_terms(text: str, expected: QExpr) -> None:
    assert parse_q(text) == expected


@pytest.mark.parametrize(("text", "iso"), [
    ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00.000Z"),
    ("2024-01-01T10:00:00.123456Z", "2024-01-01T10:00:00.123Z"),
    ("2024-01-01T10:00Z", "2024-01-01T10:00:00.000Z"),
    ("2024-01-01T10:00:00", "2024-01-01T10:00:00.000Z"),
    ("2024-01-01T01:00:00+02:00", "2023-12-31T23:00:00.000Z"),
    ("2024-01-01T10:00:00-0130", "2024-01-01T11:30:00.000Z"),
    ("2024-01-01T10:00:00 01:00", "2024-01-01T09:00:00.000Z"),   # '+' URL-decoded to ' '
    ("2024-02-29", "2024-02-29"),
    ("10:00", "10:00:00.000Z"),
    ("01:30:00.5+02:00", "23:30:00.500Z"),
])
def test_date_time_literals_are_normalised_to_utc(text: str, iso: str) -> None:
    assert parse_q(f"a=={text}") == c("a", "==", DateTimeValue(iso))


def test_date_ranges() -> None:
    assert parse_q("a==2024-01-01..2024-02-01T00:00:00+01:00") == c("a", "==", Range(
        DateTimeValue("2024-01-01"), DateTimeValue("2024-01-31T23:00:00.000Z")))


@pytest.mark.parametrize(("text", "expected"), [
    ("a;b|c", Or((And((c("a"), c("b"))), c("c")))),
    ("a|b;c", Or((c("a"), And((c("b"), c("c")))))),
    ("(a|b);c", And((Or((c("a"), c("b"))), c("c")))),
    ("a;(b;c);d", And((c("a"), c("b"), c("c"), c("d")))),
    ("((a))", c("a")),
    (" ( a == 1 ) ; b ", And((c("a", "==", 1), c("b")))),
])
def test_precedence_and_grouping(text: str, expected: QExpr) -> None:
    assert parse_q(text) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "position 0"),
    ("a=1", "position 1"),
    ("a==", "position 3"),
    ("a==abc", "double-quoted"),
    ("(a", "position 2"),
    ("a;;b", "position 2"),
    ("a==1,", "position 5"),
    ("a b", "position 2"),
    ("a>true", "position 2"),
    ("a>urn:x:y", "position 2"),
    ("a>1,2", "position 3"),
    ("a==1..2..3", "position 7"),
    ('a==1.."x"', "mixes"),
    ("a==1..10:00", "mixes"),
    ("a~=(", "position 3"),
    ('a~="(unclosed"', "regular expression"),
    ("a.observedAt.b", "can only end"),
    ("a==1e999", "out of range"),
    (r'a=="\ud800"', "not valid Unicode"),
    (r'a=="\q"', "escape"),
    ("a==2024-02-30", "invalid date"),
    ("a==25:00", "invalid date"),
    ("a[]", "position 2"),
    ("a..b", "position 2"),
    ("a==\"open", "position 3"),
])
def test_syntax_errors_say_where(text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_q(text)
    assert fragment in info.value.detail


@pytest.mark.parametrize("text", [
    "a" * 9000,
    "(" * 17 + "a" + ")" * 17,
    ";".join(["a"] * 101),
    "a" + ".b" * 9,
    "a" + "[k]" * 9,
])
def test_limits(text: str) -> None:
    with pytest.raises(TooComplexQuery):
        parse_q(text)


def test_limits_leave_room_for_real_queries() -> None:
    assert parse_q("(" * 16 + "a" + ")" * 16) == c("a")
    assert len(parse_q(";".join(["a"] * 100)).terms) == 100  # type: ignore[union-attr]


def test_parentheses_in_strings_do_not_count_as_nesting() -> None:
    assert parse_q('a=="' + "(" * 40 + '"') == c("a", "==", "(" * 40)


def test_large_integers_become_floats() -> None:
    assert parse_q("a==" + "9" * 30) == c("a", "==", float("9" * 30))


# --- printing and fuzzing ---------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b2", "air_quality", "ex:temp", "x-y"])
SUBS = st.sampled_from(["s", "ex:t", "u_1"])
MEMBERS = st.sampled_from(["observedAt", "unitCode", "datasetId", "value", "object"])
KEYS = st.sampled_from(["k", "en", "@value", "a-b", "x:y"])
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
INTS = st.integers(-(2**63) + 1, 2**63 - 1)
TEXTS = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
DATES = st.sampled_from(["2024-01-01T10:00:00.000Z", "1999-12-31T23:59:59.999Z", "2024-02-29",
                         "10:00:00.000Z", "00:00:00.001Z"]).map(DateTimeValue)
COMPARABLE = st.one_of(INTS, FLOATS, TEXTS, DATES)
SCALARS = st.one_of(COMPARABLE, st.booleans())
REGEXES = st.sampled_from(["^a", "a|b", r"\d+", '"quoted"', "x\\\\", "(?i)ab", "[;|()]"])


@st.composite
def paths(draw: st.DrawFn) -> AttrPath:
    subs = tuple(draw(st.lists(SUBS, max_size=2)))
    if draw(st.booleans()):
        subs += (draw(MEMBERS),)
    return AttrPath(draw(NAMES), subs, tuple(draw(st.lists(KEYS, max_size=2))))


def _kind(value: Any) -> str:
    if isinstance(value, DateTimeValue):
        return "time" if "T" not in value.iso and ":" in value.iso else "datetime"
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else "string"


def _same_class_range(pair: tuple[Any, Any]) -> bool:
    return _kind(pair[0]) == _kind(pair[1])


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    path = draw(paths())
    op = draw(st.sampled_from([None, "==", "!=", ">", ">=", "<", "<=", "~=", "!~="]))
    if op is None:
        return Comparison(path)
    if op in ("~=", "!~="):
        return Comparison(path, op, draw(REGEXES))
    if op in (">", ">=", "<", "<="):
        return Comparison(path, op, draw(COMPARABLE))
    value = draw(st.one_of(
        SCALARS,
        st.lists(SCALARS, min_size=2, max_size=4).map(tuple),
        st.tuples(COMPARABLE, COMPARABLE).filter(_same_class_range).map(lambda p: Range(*p))))
    return Comparison(path, op, value)


def expressions(leaves: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[QExpr]:
    def extend(children: st.SearchStrategy[QExpr]) -> st.SearchStrategy[QExpr]:
        groups = st.lists(children, min_size=2, max_size=3)
        return st.one_of(groups.map(lambda ts: And(tuple(_flat(And, ts)))),
                         groups.map(lambda ts: Or(tuple(_flat(Or, ts)))))
    return st.recursive(leaves or comparisons(), extend, max_leaves=6)


def _flat(kind: type, terms: list[QExpr]) -> list[QExpr]:
    out: list[QExpr] = []
    for term in terms:
        out.extend(term.terms if isinstance(term, kind) else [term])  # type: ignore[attr-defined]
    return out


@given(expressions())
def test_printing_round_trips(expr: QExpr) -> None:
    assert parse_q(format_q(expr)) == expr


Q_ALPHABET = string.ascii_letters[:6] + string.digits[:4] + '.:;|()[]"\\=!<>~,-+ TZ#/_'


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=60), st.text(Q_ALPHABET, max_size=60),
                 expressions().map(format_q).flatmap(
                     lambda text: st.integers(0, len(text)).map(lambda i: text[:i]))))
def test_parsers_raise_only_ngsi_ld_errors(text: str) -> None:
    for parse in (parse_q, parse_type_expr, parse_scope_q):
        with contextlib.suppress(BadRequestData, TooComplexQuery):
            parse(text)


# --- resolution -------------------------------------------------------------------------------

def expand(term: str) -> str:
    return term if ":" in term and "//" in term else "https://ex.org/" + term


def test_resolve_expands_names_but_not_members_or_keys() -> None:
    expr = parse_q("a.b.observedAt>2024-01-01;c[k]==1|d.value==2")
    assert resolve_q(expr, expand) == Or((
        And((c("https://ex.org/a", ">", DateTimeValue("2024-01-01"),
               subs=("https://ex.org/b", "observedAt")),
             c("https://ex.org/c", "==", 1, keys=("k",)))),
        c("https://ex.org/d", "==", 2, subs=("value",))))


def test_q_attributes() -> None:
    assert q_attributes(parse_q("a.b>1;(c|a[k]);d.observedAt")) == {"a", "c", "d"}


# --- type expressions -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("A", "A"),
    ("A,B", TypeOr(("A", "B"))),
    ("A|B", TypeOr(("A", "B"))),
    ("A;B", TypeAnd(("A", "B"))),
    ("A,B;C", TypeOr(("A", TypeAnd(("B", "C"))))),
    ("(A,B);C", TypeAnd((TypeOr(("A", "B")), "C"))),
    ("ex:A,https://example.org/T#x", TypeOr(("ex:A", "https://example.org/T#x"))),
])
def test_parse_type_expr(text: str, expected: Any) -> None:
    assert parse_type_expr(text) == expected


@pytest.mark.parametrize("text", ["", "A,", ",A", "A B", "(A", 'A"', "A<B", "-A"])
def test_invalid_type_expr(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_type_expr(text)


def test_resolve_and_match_types() -> None:
    expr = resolve_types(parse_type_expr("A,(B;C)"), expand)
    assert expr == TypeOr(("https://ex.org/A", TypeAnd(("https://ex.org/B", "https://ex.org/C"))))
    assert match_types(expr, ["https://ex.org/A"])
    assert match_types(expr, ["https://ex.org/C", "https://ex.org/B"])
    assert not match_types(expr, ["https://ex.org/B"])
    assert not match_types(expr, [])


# --- scopes -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("/A", "/A"),
    ("/A/B,/C", ScopeOr(("/A/B", "/C"))),
    ("/A/#|/B/+", ScopeOr(("/A/#", "/B/+"))),
    ("/A/#;/B", ScopeAnd(("/A/#", "/B"))),
    ("/#", "/#"),
    ("/+/Gardens", "/+/Gardens"),
    ("(/A,/B);/C", ScopeAnd((ScopeOr(("/A", "/B")), "/C"))),
])
def test_parse_scope_q(text: str, expected: Any) -> None:
    assert parse_scope_q(text) == expected


@pytest.mark.parametrize("text", ["", "A", "/", "//A", "/A/", "/A/#/B", "/A#", "/A+", "/A,"])
def test_invalid_scope_q(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_scope_q(text)


@pytest.mark.parametrize(("scope", "valid"), [
    ("/Milano", True), ("/Milano/Municipio1", True), ("/Città/Zona 1", False), ("Milano", False),
    ("/", False), ("/A//B", False), ("/A/", False), ("/A/#", False), ("/A/+", False),
])
def test_is_valid_scope(scope: str, valid: bool) -> None:
    assert is_valid_scope(scope) is valid


@pytest.mark.parametrize(("pattern", "scope", "matches"), [
    ("/A", "/A", True), ("/A", "/A/B", False), ("/A/B", "/A", False),
    ("/A/#", "/A", True), ("/A/#", "/A/B/C", True), ("/A/#", "/AB", False),
    ("/A/#", "/B/A", False), ("/#", "/X", True), ("/A/+", "/A/B", True),
    ("/A/+", "/A", False), ("/A/+", "/A/B/C", False), ("/+/B", "/X/B", True),
    ("/+/B/#", "/X/B/C", True), ("/+/#", "/X", True),
])
def test_scope_patterns(pattern: str, scope: str, matches: bool) -> None:
    assert is_scope_pattern(pattern)
    assert match_scope(parse_scope_q(pattern), [scope]) is matches


def test_match_scope_combinations() -> None:
    expr = parse_scope_q("/A/#;/B,/C")
    assert match_scope(expr, ["/A/x", "/B"])
    assert match_scope(expr, ["/C"])
    assert match_scope(expr, "/C")
    assert not match_scope(expr, ["/A/x"])
    assert not match_scope(expr, None)
    assert not match_scope(parse_scope_q("/#"), [])


# --- date-time keys ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "want_time", "key"), [
    ("2024-01-01T10:00:00Z", False, "2024-01-01T10:00:00.000Z"),
    ("2024-01-01T10:00:00.000Z", False, "2024-01-01T10:00:00.000Z"),
    ("2024-01-01T10:00:00.9999Z", False, "2024-01-01T10:00:00.999Z"),
    ("2024-01-01T00:30:00+01:00", False, "2023-12-31T23:30:00.000Z"),
    ("2024-01-01", False, "2024-01-01"),
    ("10:00:00", False, None),
    ("10:00:00", True, "10:00:00.000Z"),
    ("2024-01-01", True, None),
    ("2024-02-30", False, None),
    ("0000-01-01T00:00:00.000Z", False, None),
    ("2024-01-01T24:00:00Z", False, None),
    ("hello", False, None),
    ("2024-01-01T10:00:00z", False, None),
])
def test_datetime_key(text: str, want_time: bool, key: str | None) -> None:
    assert datetime_key(text, want_time) == key


# --- evaluation -------------------------------------------------------------------------------

def prop(value: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **members}


ENTITY: dict[str, Any] = {
    "id": "urn:ngsi-ld:T:1", "type": ["https://ex.org/T"],
    "attrs": {
        "temp": [prop(21.5, observedAt="2024-01-01T10:00:00.000Z", unitCode="CEL",
                      attrs={"accuracy": [prop(0.5)]})],
        "multi": [prop(1), prop(7, datasetId="urn:d:2")],
        "list": [prop([1, 2, "x"])],
        "flag": [prop(True)],
        "json": [{"type": "JsonProperty", "json": {"k": {"j": 3}, "s": "t"}}],
        "name": [{"type": "LanguageProperty",
                  "languageMap": {"en": "Park", "it": ["Parco", "Giardino"]}}],
        "ref": [{"type": "Relationship", "object": "urn:ngsi-ld:B:1"}],
        "refs": [{"type": "ListRelationship", "objectList": ["urn:a", "urn:b"]}],
        "cat": [{"type": "VocabProperty", "vocab": "https://ex.org/Small"}],
        "vals": [{"type": "ListProperty", "valueList": [5, 6]}],
        "when": [prop({"@type": "DateTime", "@value": "2024-03-01T12:00:00+01:00"})],
        "nothing": [{"type": "Property"}],
    },
}


@pytest.mark.parametrize(("text", "expected"), [
    ("temp", True), ("absent", False), ("temp==21.5", True), ("temp>21", True),
    ("temp<21", False), ('temp=="21.5"', False), ("temp!=21.5", False), ("temp!=3", True),
    ('temp!="x"', False),                      # a string never compares with a number
    ("temp==20..22", True), ("temp!=20..22", False), ("temp==1,21.5", True),
    ("temp.observedAt>=2024-01-01T11:00:00+01:00", True),
    ("temp.observedAt>2024-01-01T10:00:00Z", False),
    ("temp.observedAt>2024-01-01", True), ("temp.observedAt<2024-01-02", True),
    ("temp.observedAt==2024-01-01", False),
    ('temp.unitCode=="CEL"', True), ("temp.datasetId", False), ("multi.datasetId", True),
    ("temp.accuracy<1", True), ("temp.accuracy", True), ("temp.missing", False),
    ("multi==7", True), ("multi>5", True), ("multi!=1", True), ("multi!=1,7", False),
    ("list==2", True), ('list=="x"', True), ("list!=2", False), ("list!=9", True),
    ("list>1", True), ('list~="^x$"', True),
    ("flag==true", True), ("flag!=false", True), ("flag==1", False),
    ("json[k][j]==3", True), ('json[s]=="t"', True), ("json[k]", True), ("json[z]", False),
    ("json[k][j][z]", False), ("json==3", False),
    ('name=="Parco"', True), ('name[it]=="Giardino"', True), ('name[en]=="Parco"', False),
    ('name!="Park"', False), ('name~="^Gia"', True), ('name[en]', True), ("name[de]", False),
    ("ref==urn:ngsi-ld:B:1", True), ('ref=="urn:ngsi-ld:B:1"', True), ("ref!=urn:x:y", True),
    ("ref.object==urn:ngsi-ld:B:1", True),
    ("refs==urn:b", True), ("refs!=urn:a", False),
    ("cat==https://ex.org/Small", True), ("vals==6", True), ("vals<5", False),
    ("when>2024-03-01T10:59:59Z", True), ("when<2024-03-01T11:00:00Z", False),
    ('when=="2024-03-01T12:00:00+01:00"', True),
    ("nothing", True), ("nothing==1", False), ("nothing!=1", False),
    ('temp~="2"', False), ('temp!~="2"', False), ('ref!~="^urn:x"', True),
    ("temp>21;multi==7", True), ("temp<21;multi==7", False), ("temp<21|multi==7", True),
    ("temp>10:00", False),
])
def test_evaluate(text: str, expected: bool) -> None:
    assert evaluate_q(parse_q(text), ENTITY) is expected


def test_evaluate_never_raises_on_odd_documents() -> None:
    odd: list[dict[str, Any]] = [
        {}, {"attrs": []}, {"attrs": {"a": {}}}, {"attrs": {"a": [5]}},
        {"attrs": {"a": [{"type": ["Property"], "value": 1}]}},
        {"attrs": {"a": [{"type": "LanguageProperty", "languageMap": "en"}]}},
        {"attrs": {"a": [prop(None, attrs=[1])]}},
    ]
    expr = parse_q('a==1|a.s>2|a[k]=="x"|a~="y"|a!=2024-01-01|a')
    assert [evaluate_q(expr, e) for e in odd] == [False, False, False, True, True, True, True]
