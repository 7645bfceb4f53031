"""The shape of a q expression: the expression with each number and string value replaced by a
numbered *slot*, so that the SQL compiled for one expression serves every expression that
differs from it only in those values (``illuminanceLevel>0.31`` and ``…>0.77`` share one).

A compiler that only ever puts values into bound parameters, and decides everything else on
their class (number or string) alone, compiles a shape exactly as it would the expression,
with slots where the values go; :class:`Bound` then puts each request's values in their place.
A slot is an ``int``, ``float`` or ``str`` (so type tests see the class of value it stands
for), equal only to the slot of the same class and number. Booleans and date-times stay as they
are: what SQL their tests make depends on more than their class.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sinergia.ngsild.qlang import And, Comparison, DateTimeValue, Or, QExpr, Range


class _Slot:
    number: int

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.number == self.number

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.number))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.number}>"


class _IntSlot(_Slot, int):
    def __new__(cls, number: int) -> _IntSlot:
        slot = int.__new__(cls, 0)
        slot.number = number
        return slot


class _FloatSlot(_Slot, float):
    def __new__(cls, number: int) -> _FloatSlot:
        slot = float.__new__(cls, 0.0)
        slot.number = number
        return slot


class _StrSlot(_Slot, str):
    def __new__(cls, number: int) -> _StrSlot:
        slot = str.__new__(cls, "")
        slot.number = number
        return slot


def shape_of(expr: QExpr) -> tuple[QExpr, list[object]]:
    """(the shape of ``expr``, the values its slots stand for, in slot order)."""
    values: list[object] = []
    return _shape(expr, values), values


def _shape(expr: QExpr, values: list[object]) -> QExpr:
    if isinstance(expr, Comparison):
        if expr.op is None:
            return expr
        return replace(expr, value=_slotted(expr.value, values),
                       vocab_value=_slotted(expr.vocab_value, values))
    terms = tuple(_shape(term, values) for term in expr.terms)
    return And(terms) if isinstance(expr, And) else Or(terms)


def _slotted(value: Any, values: list[object]) -> Any:
    if isinstance(value, tuple):
        return tuple(_slotted(item, values) for item in value)
    if isinstance(value, Range):
        return Range(_slotted(value.low, values), _slotted(value.high, values))
    kind = type(value)
    slot: _Slot
    if kind is int:
        slot = _IntSlot(len(values))
    elif kind is float:
        slot = _FloatSlot(len(values))
    elif kind is str:
        slot = _StrSlot(len(values))
    else:  # None, a boolean, a date-time
        assert value is None or isinstance(value, bool | DateTimeValue)
        return value
    values.append(value)
    return slot


@dataclass(frozen=True, slots=True)
class Bound:
    """The parameters of SQL compiled from a shape: fixed ones, and where each value goes."""

    fixed: tuple[object, ...]
    places: tuple[tuple[int, int], ...]   # (parameter position, slot number)

    @classmethod
    def of(cls, params: tuple[object, ...]) -> Bound:
        """The parameters of SQL compiled from a shape (slots among them)."""
        places = tuple((i, p.number) for i, p in enumerate(params) if isinstance(p, _Slot))
        fixed = tuple(None if isinstance(p, _Slot) else p for p in params)
        return cls(fixed, places)

    def params(self, values: list[object]) -> list[object]:
        params = list(self.fixed)
        for position, index in self.places:
            params[position] = values[index]
        return params
