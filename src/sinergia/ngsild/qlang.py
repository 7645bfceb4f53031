"""The NGSI-LD query languages: q (attribute filter), type expressions and scopeQ.

Three LALR grammars (lark, built once at import) turn text into the frozen AST below; the
``resolve_*`` functions expand names with a @context; ``evaluate_q``/``match_types``/
``match_scope`` are the reference semantics in pure Python (subscriptions use them, and the SQL
compilers are tested against them).

q semantics, on the internal entity form of :mod:`sinergia.ngsild.model`:

- ``attr`` alone is true when the entity has the attribute; ``attr.sub`` follows sub-attributes,
  ``attr.observedAt`` (and the other :data:`RESERVED_MEMBERS`) reads an instance member and
  ``attr[k1][k2]`` indexes into a JSON object value. Every instance (one per datasetId) is
  tried: the term is true when any instance satisfies it.
- The compared value is the instance's value member for its kind (``value``, ``object``,
  ``languageMap``, ``vocab``, ``json``, ``valueList``, ``objectList``). An array value yields
  its elements as candidates, a language map (no key) the strings of every language, and a
  ``{"@value": …}`` object its ``@value``.
- A candidate is compared only with a value of its own class (number, string, boolean;
  an unquoted date/time only with a string that parses as one, see :func:`datetime_key`):
  anything else simply does not match.
- ``==``/``>``/… and ``~=`` hold when any candidate satisfies them. ``!=`` and ``!~=`` hold
  for an instance when it has at least one comparable candidate and none is equal (matches).
- A ``VocabProperty`` stores its vocab as expanded IRIs, so (as the standard asks) the strings
  of a query value compared with its vocab are expanded with the request's @context too:
  :func:`resolve_q` keeps both forms, and ``Comparison.vocab_value`` is used on the instances
  of that kind (regular expressions are never expanded).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Final, Literal

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from sinergia.ngsild.errors import BadRequestData, TooComplexQuery
from sinergia.ngsild.model import LANGUAGE_PROPERTY, VALUE_MEMBER, VOCAB_PROPERTY

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class DateTimeValue:
    """An unquoted ISO 8601 date-time/date/time literal in q, normalised to UTC ``...Z``."""

    iso: str


@dataclass(frozen=True, slots=True)
class Range:
    low: Scalar | DateTimeValue
    high: Scalar | DateTimeValue


QValue = Scalar | DateTimeValue | Range | tuple[Scalar | DateTimeValue, ...]
Op = Literal["==", "!=", ">", ">=", "<", "<=", "~=", "!~="]


@dataclass(frozen=True, slots=True)
class AttrPath:
    """``attr.sub.sub[key][key]``: ``attr`` and ``subs`` are attribute names (compact terms as
    parsed, expanded IRIs after :func:`resolve_q`); a sub that is a reserved instance member
    (observedAt, unitCode, datasetId, createdAt, modifiedAt) is kept as is. ``keys`` index
    into a JSON value and are never expanded."""

    attr: str
    subs: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Comparison:
    """``path op value``; ``op is None`` means "the attribute exists". ``vocab_value`` is
    ``value`` with its strings expanded as vocabulary terms (see :func:`resolve_q`): what the
    vocab of a ``VocabProperty`` is compared with, None when the value has no strings."""

    path: AttrPath
    op: Op | None = None
    value: QValue | None = None
    vocab_value: QValue | None = None


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[QExpr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[QExpr, ...]


QExpr = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class TypeAnd:
    terms: tuple[TypeExpr, ...]


@dataclass(frozen=True, slots=True)
class TypeOr:
    terms: tuple[TypeExpr, ...]


TypeExpr = str | TypeAnd | TypeOr


@dataclass(frozen=True, slots=True)
class ScopeAnd:
    terms: tuple[ScopeExpr, ...]


@dataclass(frozen=True, slots=True)
class ScopeOr:
    terms: tuple[ScopeExpr, ...]


ScopeExpr = str | ScopeAnd | ScopeOr   # a str is one scope pattern, e.g. "/Milano/#"

Expander = Callable[[str], str]

# --- limits and vocabulary ------------------------------------------------------------------

MAX_QUERY_LENGTH: Final = 8192
MAX_DEPTH: Final = 16          # nested parentheses
MAX_TERMS: Final = 100         # comparisons (or names / scopes) in one expression
MAX_PATH_STEPS: Final = 8      # sub-attributes, and keys, per attribute path

# Instance members a path may name after the attribute; they are never expanded.
RESERVED_MEMBERS: Final = frozenset(
    {"observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "instanceId",
     "value", "object"})
EQUALITY_OPS: Final = frozenset({"==", "!="})
ORDER_OPS: Final = frozenset({">", ">=", "<", "<="})
PATTERN_OPS: Final = frozenset({"~=", "!~="})
KEY_RE: Final = re.compile(r"[A-Za-z0-9_@:\-]+")
# Scope levels: what entity.py accepts, minus the scopeQ separators.
_SCOPE_LEVEL = r"[^/\s\x00-\x1f\x7f-\x9f<>\"'=;()#+]+"
_VALID_SCOPE: Final = re.compile(rf"(?:/{_SCOPE_LEVEL})+")
_TYPE_NAME: Final = re.compile(r"[A-Za-z0-9_][^\s\x00-\x1f\x7f-\x9f<>\"'{}\\^`,;|()]*")

# --- date-times -----------------------------------------------------------------------------

_OFFSET = r"(Z|[+\- ]\d{2}(?::?\d{2})?)"
_DATETIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?" + _OFFSET + "?")
_DATE_RE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME_RE: Final = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?" + _OFFSET + "?")


def _tz(text: str | None) -> timezone:
    if not text or text == "Z":
        return UTC   # NGSI-LD times are UTC unless they say otherwise
    sign = -1 if text[0] == "-" else 1   # " " is a "+" that URL decoding turned into a space
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0)))


def _micros(fraction: str | None) -> int:
    return int((fraction or "").ljust(6, "0")[:6])


def _dt_key(text: str) -> str | None:
    if (m := _DATETIME_RE.fullmatch(text)) is not None:
        y, mo, d, h, mi, s, frac, off = m.groups()
        try:
            when = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0),
                            _micros(frac), _tz(off)).astimezone(UTC)
        except (ValueError, OverflowError):
            return None
        return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:"
                f"{when.minute:02d}:{when.second:02d}.{when.microsecond // 1000:03d}Z")
    if (m := _DATE_RE.fullmatch(text)) is not None:
        try:
            day = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
        return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    return None


def _time_key(text: str) -> str | None:
    if (m := _TIME_RE.fullmatch(text)) is None:
        return None
    h, mi, s, frac, off = m.groups()
    try:
        clock = time(int(h), int(mi), int(s or 0), _micros(frac))
        when = datetime.combine(date(2000, 1, 2), clock, _tz(off)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}.{when.microsecond // 1000:03d}Z"


@lru_cache(maxsize=4096)
def datetime_key(text: str, want_time: bool = False) -> str | None:
    """The comparison key of a date-time string, or None when it is not one.

    Date-times become ``YYYY-MM-DDTHH:MM:SS.fffZ`` in UTC (milliseconds, truncated), dates
    ``YYYY-MM-DD`` (a date sorts just before the date-times of that day), times
    ``HH:MM:SS.fffZ``. With ``want_time`` only times are accepted, otherwise only dates and
    date-times: a time never compares with a date."""
    return _time_key(text) if want_time else _dt_key(text)


def is_time(value: DateTimeValue) -> bool:
    return "T" not in value.iso and ":" in value.iso


# --- grammars -------------------------------------------------------------------------------

_Q_GRAMMAR = r"""
?start: disj
?disj: conj ("|" conj)*
?conj: atom (";" atom)*
?atom: term
     | "(" disj ")"
term: path                   -> exists
    | path ORD_OP comparable -> ordered
    | path EQ_OP eqvalue     -> equality
    | path PAT_OP pattern    -> pattern
path: NAME ("." NAME)* ("[" KEY "]")*
comparable: NUMBER   -> number
          | STRING   -> string
          | DATETIME -> datetime
          | DATE     -> date
          | TIME     -> time
?value: comparable
      | "true"  -> true
      | "false" -> false
      | URI     -> uri
?eqvalue: value
        | value ("," value)+       -> vlist
        | comparable ".." comparable -> vrange
pattern: STRING -> quoted_regex
       | REGEX  -> bare_regex

NAME: /[A-Za-z0-9_\-]+(?::[A-Za-z0-9_\-]+)*/
KEY: /[A-Za-z0-9_@:\-]+/
ORD_OP: /[<>]=?/
EQ_OP: /[=!]=/
PAT_OP: /!?~=/
DATETIME.5: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+\- ]\d{2}(:?\d{2})?)?/
DATE.4: /\d{4}-\d{2}-\d{2}/
TIME.3: /\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+\-]\d{2}(:?\d{2})?)?/
NUMBER.2: /-?\d+(\.\d+)?([eE][+\-]?\d+)?/
STRING.2: /"(?:[^"\\]|\\[\s\S])*"/
URI: /[A-Za-z][A-Za-z0-9+.\-]*:[^\s;|()",]*/
REGEX: /(?:[^;|()\s"]|\([^()\s]*\))+/
%ignore /\s+/
"""

_LIST_GRAMMAR = r"""
?start: disj
?disj: conj (("," | "|") conj)*
?conj: atom (";" atom)*
?atom: ITEM -> item
     | "(" disj ")"
ITEM: /%s/
%%ignore /\s+/
"""

_TERMINAL_NAMES: Final = {
    "NAME": "an attribute name", "KEY": "a key", "ORD_OP": "an operator", "EQ_OP": "an operator",
    "PAT_OP": "an operator", "NUMBER": "a number", "STRING": 'a "string"',
    "DATETIME": "a date-time", "DATE": "a date", "TIME": "a time", "URI": "a URI",
    "REGEX": "a regular expression", "ITEM": "a name", "LPAR": "'('", "RPAR": "')'",
    "SEMICOLON": "';'", "VBAR": "'|'", "COMMA": "','", "DOT": "'.'", "LSQB": "'['",
    "RSQB": "']'", "TRUE": "true", "FALSE": "false", "__ANON_0": "'..'",
}


class _QBuilder:
    """lark callbacks that build the AST while parsing (no parse tree)."""

    def disj(self, terms: list[QExpr]) -> QExpr:
        return Or(tuple(_flatten(Or, terms)))

    def conj(self, terms: list[QExpr]) -> QExpr:
        return And(tuple(_flatten(And, terms)))

    def path(self, items: list[Token]) -> AttrPath:
        names = [str(t) for t in items if t.type == "NAME"]
        keys = tuple(str(t) for t in items if t.type == "KEY")
        subs = tuple(names[1:])
        if len(subs) > MAX_PATH_STEPS or len(keys) > MAX_PATH_STEPS:
            raise TooComplexQuery(f"q: attribute path '{items[0]}…' is too long")
        for i, sub in enumerate(subs[:-1]):
            if sub in RESERVED_MEMBERS:
                raise BadRequestData(f"q: '{sub}' at position {items[i + 1].start_pos} is an "
                                     "attribute member and can only end a path")
        return AttrPath(names[0], subs, keys)

    def exists(self, items: list[AttrPath]) -> Comparison:
        return Comparison(items[0])

    def ordered(self, items: list[Any]) -> Comparison:
        return Comparison(items[0], str(items[1]), items[2])  # type: ignore[arg-type]

    equality = ordered

    def pattern(self, items: list[Any]) -> Comparison:
        return Comparison(items[0], str(items[1]), items[2])  # type: ignore[arg-type]

    def number(self, items: list[Token]) -> int | float:
        text = str(items[0])
        number: int | float
        if any(c in text for c in ".eE"):
            number = float(text)
        else:
            number = int(text)
            if abs(number) >= 2**63:   # beyond SQLite integers: compare as a float
                try:
                    number = float(number)
                except OverflowError:
                    number = math.inf
        if not math.isfinite(number):
            raise BadRequestData(f"q: number {text[:40]} at position {items[0].start_pos} "
                                 "is out of range")
        return number

    def string(self, items: list[Token]) -> str:
        try:
            value = json.loads(str(items[0]))
        except ValueError:
            raise BadRequestData(f"q: invalid escape in the string at position "
                                 f"{items[0].start_pos}") from None
        return _checked_text(value, items[0])

    def datetime(self, items: list[Token]) -> DateTimeValue:
        return _date_literal(items[0], False)

    date = datetime

    def time(self, items: list[Token]) -> DateTimeValue:
        return _date_literal(items[0], True)

    def true(self, _: list[Token]) -> bool:
        return True

    def false(self, _: list[Token]) -> bool:
        return False

    def uri(self, items: list[Token]) -> str:
        return _checked_text(str(items[0]), items[0])

    def vlist(self, items: list[Scalar | DateTimeValue]) -> tuple[Scalar | DateTimeValue, ...]:
        return tuple(items)

    def vrange(self, items: list[Scalar | DateTimeValue]) -> Range:
        low, high = items
        if _value_class(low) != _value_class(high):
            raise BadRequestData(f"q: the range {format_value(low)}..{format_value(high)} "
                                 "mixes different kinds of values")
        return Range(low, high)

    def quoted_regex(self, items: list[Token]) -> str:
        # Inside quotes only \" and \\ are escapes, so regex escapes like \d stay readable.
        raw = re.sub(r'\\(["\\])', r"\1", str(items[0])[1:-1])
        return _checked_regex(raw, items[0])

    def bare_regex(self, items: list[Token]) -> str:
        return _checked_regex(str(items[0]), items[0])


class _ListBuilder:
    def __init__(self, and_: type, or_: type) -> None:
        self._and, self._or = and_, or_

    def disj(self, terms: list[Any]) -> Any:
        return self._or(tuple(_flatten(self._or, terms)))

    def conj(self, terms: list[Any]) -> Any:
        return self._and(tuple(_flatten(self._and, terms)))

    def item(self, items: list[Token]) -> str:
        return str(items[0])


def _flatten(kind: type, terms: Iterable[Any]) -> Iterator[Any]:
    for term in terms:
        if isinstance(term, kind):
            yield from term.terms  # type: ignore[attr-defined]
        else:
            yield term


def _checked_text(value: str, token: Token) -> str:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise BadRequestData(f"q: the string at position {token.start_pos} is not valid "
                             "Unicode") from None
    return value


def _checked_regex(pattern: str, token: Token) -> str:
    _checked_text(pattern, token)
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise BadRequestData(f"q: invalid regular expression at position {token.start_pos}: "
                             f"{exc}") from None
    return pattern


def _date_literal(token: Token, want_time: bool) -> DateTimeValue:
    key = datetime_key(str(token).replace(" ", "+"), want_time)
    if key is None:
        raise BadRequestData(f"q: invalid date or time {str(token)!r} at position "
                             f"{token.start_pos}")
    return DateTimeValue(key)


def _value_class(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, DateTimeValue):
        return "time" if is_time(value) else "datetime"
    return "string"


_Q_PARSER: Final = Lark(_Q_GRAMMAR, parser="lalr", lexer="contextual", transformer=_QBuilder())
_TYPE_PARSER: Final = Lark(_LIST_GRAMMAR % r"[^\s,;|()]+", parser="lalr",
                           transformer=_ListBuilder(TypeAnd, TypeOr))
_SCOPE_PARSER: Final = Lark(_LIST_GRAMMAR % r"\/[^\s,;|()]*", parser="lalr",
                            transformer=_ListBuilder(ScopeAnd, ScopeOr))


def _parse(parser: Lark, text: object, what: str) -> Any:
    if not isinstance(text, str):
        raise BadRequestData(f"{what} must be a string")
    if len(text) > MAX_QUERY_LENGTH:
        raise TooComplexQuery(f"{what} is longer than {MAX_QUERY_LENGTH} characters")
    _check_depth(text, what)
    try:
        result = parser.parse(text)
    except UnexpectedInput as exc:
        raise BadRequestData(_syntax_message(text, what, exc)) from None
    except LarkError as exc:  # pragma: no cover - lark internals
        raise BadRequestData(f"{what}: invalid syntax ({exc})") from None
    if _count(result) > MAX_TERMS:
        raise TooComplexQuery(f"{what} has more than {MAX_TERMS} terms")
    return result


def _check_depth(text: str, what: str) -> None:
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise TooComplexQuery(f"{what} nests parentheses deeper than {MAX_DEPTH}")
        elif char == ")":
            depth -= 1


def _count(expr: object) -> int:
    terms = getattr(expr, "terms", None)
    return 1 if terms is None else sum(_count(t) for t in terms)


def _syntax_message(text: str, what: str, exc: UnexpectedInput) -> str:
    pos = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, UnexpectedEOF) or pos is None:
        pos = len(text)
    token = getattr(exc, "token", None)
    if isinstance(token, Token) and token.type == "$END":
        pos = len(text)
    elif isinstance(token, Token) and token.start_pos is not None:
        pos = token.start_pos
    found = repr(text[pos:pos + 20]) if pos < len(text) else "end of text"
    expected: set[str] = set(getattr(exc, "expected", None) or ())
    if isinstance(exc, UnexpectedCharacters):
        expected = set(exc.allowed or ())
    names = sorted({_TERMINAL_NAMES.get(t, t.lower()) for t in expected if t != "$END"})
    if what == "scopeQ":
        names = ["a scope like /A/B" if n == "a name" else n for n in names]
    message = f"{what}: unexpected {found} at position {pos}"
    if names:
        message += " (expected " + ", ".join(names) + ")"
    word = re.match(r"[^\W\d]\w*", text[pos:])
    if "STRING" in expected and word and word[0] not in ("true", "false") and (
            text[word.end() + pos:word.end() + pos + 1] != ":"):
        message += "; strings must be double-quoted"
    return message


# --- public parsing API ---------------------------------------------------------------------


@lru_cache(maxsize=1024)
def parse_q(text: str) -> QExpr:
    """Parse the q-language; BadRequestData on a syntax error, TooComplexQuery when too big."""
    return _parse(_Q_PARSER, text, "q")  # type: ignore[no-any-return]


@lru_cache(maxsize=1024)
def parse_type_expr(text: str) -> TypeExpr:
    """``A``, ``A,B``/``A|B`` (or), ``A;B`` (and), parentheses; names may be compact or IRIs."""
    expr = _parse(_TYPE_PARSER, text, "type")
    for name in _leaves(expr):
        if _TYPE_NAME.fullmatch(name) is None:
            raise BadRequestData(f"type: invalid type name {name!r}")
    return expr  # type: ignore[no-any-return]


@lru_cache(maxsize=1024)
def parse_scope_q(text: str) -> ScopeExpr:
    """scopeQ: ``/A/B`` (exactly), ``/A/+`` (one level), ``/A/#`` (A and below), ``/#``
    (any scope), combined with ``,``/``|`` (or), ``;`` (and) and parentheses."""
    expr = _parse(_SCOPE_PARSER, text, "scopeQ")
    for pattern in _leaves(expr):
        if not is_scope_pattern(pattern):
            raise BadRequestData(f"scopeQ: invalid scope pattern {pattern!r} (expected levels "
                                 "like '/Milano/Municipio1', with '+' for one level or a "
                                 "final '#' for any)")
    return expr  # type: ignore[no-any-return]


def is_scope_pattern(pattern: str) -> bool:
    """A scopeQ pattern: levels, each ``+`` or a name, optionally ending with ``#``."""
    levels = pattern.split("/")
    if levels[0] or len(levels) < 2:
        return False
    return all(level == "+" or (level == "#" and i == len(levels) - 2)
               or _VALID_SCOPE.fullmatch("/" + level) is not None
               for i, level in enumerate(levels[1:]))


def is_valid_scope(s: str) -> bool:
    """A scope an entity may carry: ``/A/B``, non-empty levels, no wildcards."""
    return isinstance(s, str) and _VALID_SCOPE.fullmatch(s) is not None


def _leaves(expr: Any) -> Iterator[str]:
    if isinstance(expr, str):
        yield expr
    else:
        for term in expr.terms:
            yield from _leaves(term)


# --- printing (the inverse of parse_q for unresolved expressions) ---------------------------


def format_value(value: QValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, DateTimeValue):
        return value.iso
    if isinstance(value, Range):
        return f"{format_value(value.low)}..{format_value(value.high)}"
    return ",".join(format_value(v) for v in value)


def format_q(expr: QExpr) -> str:
    """Text that :func:`parse_q` reads back as ``expr``."""
    if isinstance(expr, Comparison):
        path = expr.path
        text = path.attr + "".join("." + s for s in path.subs) + "".join(
            f"[{k}]" for k in path.keys)
        if expr.op is None or expr.value is None:
            return text
        if expr.op in PATTERN_OPS:
            pattern = str(expr.value).replace("\\", "\\\\").replace('"', '\\"')
            return f'{text}{expr.op}"{pattern}"'
        return text + expr.op + format_value(expr.value)
    if isinstance(expr, And):
        return ";".join(f"({format_q(t)})" if isinstance(t, Or | And) else format_q(t)
                        for t in expr.terms)
    return "|".join(f"({format_q(t)})" if isinstance(t, Or) else format_q(t)
                    for t in expr.terms)


# --- @context resolution --------------------------------------------------------------------


def resolve_q(expr: QExpr, expand: Expander, expand_vocab: Expander | None = None) -> QExpr:
    """The same expression with attribute names expanded (reserved members and keys kept).
    With ``expand_vocab`` (the @context's term expansion) each comparison of strings also
    gets its ``vocab_value``."""
    if isinstance(expr, Comparison):
        path = expr.path
        subs = tuple(s if s in RESERVED_MEMBERS else expand(s) for s in path.subs)
        vocab = None
        if expand_vocab is not None and expr.op is not None and expr.op not in PATTERN_OPS:
            vocab = vocab_terms(expr.value, expand_vocab)
        return Comparison(AttrPath(expand(path.attr), subs, path.keys), expr.op, expr.value,
                          vocab)
    terms = tuple(resolve_q(t, expand, expand_vocab) for t in expr.terms)
    return And(terms) if isinstance(expr, And) else Or(terms)


def vocab_terms(value: QValue | None, expand: Expander) -> QValue | None:
    """``value`` with each string expanded by ``expand``; None when it holds no string."""
    if isinstance(value, str):
        return expand(value)
    if isinstance(value, Range) and isinstance(value.low, str) and isinstance(value.high, str):
        return Range(expand(value.low), expand(value.high))
    if isinstance(value, tuple) and any(isinstance(v, str) for v in value):
        return tuple(expand(v) if isinstance(v, str) else v for v in value)
    return None


def q_strings(expr: QExpr) -> Iterator[str]:
    """Every string a comparison (not a pattern) of ``expr`` compares with: what
    ``expand_vocab`` of :func:`resolve_q` is asked to expand."""
    if isinstance(expr, Comparison):
        if expr.op is None or expr.op in PATTERN_OPS:
            return
        value = expr.value
        items = (value.low, value.high) if isinstance(value, Range) else (
            value if isinstance(value, tuple) else (value,))
        yield from (item for item in items if isinstance(item, str))
    else:
        for term in expr.terms:
            yield from q_strings(term)


def resolve_types(expr: TypeExpr, expand: Expander) -> TypeExpr:
    if isinstance(expr, str):
        return expand(expr)
    terms = tuple(resolve_types(t, expand) for t in expr.terms)
    return TypeAnd(terms) if isinstance(expr, TypeAnd) else TypeOr(terms)


def q_attributes(expr: QExpr) -> set[str]:
    """The (top-level) attribute names an expression reads."""
    if isinstance(expr, Comparison):
        return {expr.path.attr}
    return set().union(*(q_attributes(t) for t in expr.terms))


# --- evaluation (the reference semantics) ---------------------------------------------------

_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_MISSING: Final = object()


@lru_cache(maxsize=256)
def compiled_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def evaluate_q(expr: QExpr, entity: dict[str, Any]) -> bool:
    if isinstance(expr, And):
        return all(evaluate_q(t, entity) for t in expr.terms)
    if isinstance(expr, Or):
        return any(evaluate_q(t, entity) for t in expr.terms)
    return any(_instance_matches(expr, inst) for inst in final_instances(entity, expr.path))


def final_instances(entity: dict[str, Any], path: AttrPath) -> list[Any]:
    """The instances a path ends on: the attribute's, or its (nested) sub-attributes'."""
    instances = _instances(entity, path.attr)
    for sub in path.subs:
        if sub in RESERVED_MEMBERS:
            break
        instances = [s for i in instances for s in _instances(i, sub)]
    return instances


def _instances(holder: Any, name: str) -> list[Any]:
    attrs = holder.get("attrs") if isinstance(holder, dict) else None
    found = attrs.get(name) if isinstance(attrs, dict) else None
    return found if isinstance(found, list) else []


def _target(path: AttrPath, instance: Any) -> tuple[Any, bool, bool]:
    """(value the keys lead to or _MISSING, whether it is a whole language map, whether it is
    the vocab of a VocabProperty)."""
    if not isinstance(instance, dict):
        return _MISSING, False, False
    vocab = False
    if path.subs and path.subs[-1] in RESERVED_MEMBERS:
        member, lang = path.subs[-1], False
    else:
        kind = instance.get("type")
        member = VALUE_MEMBER.get(kind, "value") if isinstance(kind, str) else "value"
        lang = kind == LANGUAGE_PROPERTY and not path.keys
        vocab = kind == VOCAB_PROPERTY
    value = instance.get(member, _MISSING)
    for key in path.keys:
        value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
    return value, lang, vocab


def candidates(value: Any, lang: bool) -> Iterator[Any]:
    if lang and isinstance(value, dict):
        for item in value.values():
            if isinstance(item, list):
                yield from map(_unwrap, item)
            else:
                yield _unwrap(item)
    elif isinstance(value, list):
        yield from map(_unwrap, value)
    else:
        yield _unwrap(value)


def _unwrap(value: Any) -> Any:
    return value["@value"] if isinstance(value, dict) and "@value" in value else value


def _instance_matches(cmp: Comparison, instance: Any) -> bool:
    path = cmp.path
    if cmp.op is None:
        if not path.keys and not (path.subs and path.subs[-1] in RESERVED_MEMBERS):
            return True
        return _target(path, instance)[0] is not _MISSING
    value, lang, vocab = _target(path, instance)
    if value is _MISSING:
        return False
    cands = list(candidates(value, lang))
    query = cmp.value
    if vocab and cmp.vocab_value is not None and cmp.op not in PATTERN_OPS:
        query = cmp.vocab_value
    if cmp.op in PATTERN_OPS:
        regex = compiled_regex(str(query))
        texts = [c for c in cands if isinstance(c, str)]
        if cmp.op == "~=":
            return any(regex.search(c) for c in texts)
        return bool(texts) and not any(regex.search(c) for c in texts)
    if cmp.op in ORDER_OPS:
        compare = _ORDER[cmp.op]
        return any(k is not None and compare(k, _ref(query)) for k in
                   (_comparable_key(c, query) for c in cands))
    results = [_equals(c, query) for c in cands]
    if cmp.op == "==":
        return True in results
    return any(r is not None for r in results) and True not in results


def _ref(value: Any) -> Any:
    return value.iso if isinstance(value, DateTimeValue) else value


def _comparable_key(candidate: Any, value: Any) -> Any:
    """``candidate`` as a key comparable with ``value``, or None when of another class."""
    if isinstance(value, bool):
        return candidate if isinstance(candidate, bool) else None
    if isinstance(value, int | float):
        return candidate if isinstance(candidate, int | float) and not isinstance(
            candidate, bool) else None
    if not isinstance(candidate, str):
        return None
    if isinstance(value, DateTimeValue):
        return datetime_key(candidate, is_time(value))
    return candidate


def _equals(candidate: Any, value: Any) -> bool | None:
    """True/False when comparable, None when ``candidate`` is of another class."""
    if isinstance(value, tuple):
        results = [_equals(candidate, v) for v in value]
        return True if True in results else (False if False in results else None)
    if isinstance(value, Range):
        low = _comparable_key(candidate, value.low)
        high = _comparable_key(candidate, value.high)
        if low is None or high is None:
            return None
        return bool(_ref(value.low) <= low and high <= _ref(value.high))
    key = _comparable_key(candidate, value)
    return None if key is None else bool(key == _ref(value))


def match_types(expr: TypeExpr, types: list[str]) -> bool:
    if isinstance(expr, str):
        return expr in types
    if isinstance(expr, TypeAnd):
        return all(match_types(t, types) for t in expr.terms)
    return any(match_types(t, types) for t in expr.terms)


def match_scope(expr: ScopeExpr, scopes: list[str] | str | None) -> bool:
    values = [scopes] if isinstance(scopes, str) else scopes or []
    if isinstance(expr, ScopeAnd):
        return all(match_scope(t, values) for t in expr.terms)
    if isinstance(expr, ScopeOr):
        return any(match_scope(t, values) for t in expr.terms)
    return any(scope_matches(expr, s) for s in values if isinstance(s, str))


def scope_matches(pattern: str, scope: str) -> bool:
    """One scope against one pattern: ``+`` is exactly one level, a final ``#`` any (or no)
    further levels."""
    if not is_scope_pattern(pattern):
        return False
    want, have = pattern.split("/")[1:], scope.split("/")[1:]
    if want and want[-1] == "#":
        want = want[:-1]
        have = have[:len(want)]
    if len(want) != len(have):
        return False
    return scope.startswith("/") and all(
        w == h or (w == "+" and h != "") for w, h in zip(want, have, strict=True))
