"""One-dimensional arrays as statement parameters, built directly in PostgreSQL's binary wire
format.

The write path binds its columns as arrays (``unnest(%b::text[], …)``): one statement per
table whatever the number of rows. psycopg dumps a list element by element in Python, which
for a 1,000-entity batch (some ten arrays of ten thousand elements) cost a quarter of the
write's CPU in the server; here each array is one ``struct`` call or one list comprehension.
Wrap the list in the array's type (``Int8Array(values)``) and bind it with ``%b``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from struct import Struct
from typing import ClassVar

import psycopg
from psycopg.adapt import Buffer, Dumper
from psycopg.pq import Format

_NULL = Struct(">i").pack(-1)
_LENGTH = Struct(">i").pack
_HEADER = Struct(">iiIii").pack  # dimensions, has nulls, element type, length, lower bound
_EMPTY = Struct(">iiI").pack
_INT4 = Struct(">ii").pack   # each element: its length (4), then the value
_INT8 = Struct(">iq").pack
_FLOAT8 = Struct(">id").pack
_TRUE, _FALSE = Struct(">i?").pack(1, True), Struct(">i?").pack(1, False)


class BinaryArray:
    """An array already in binary wire format; subclasses say of which element type. (It
    holds its bytes rather than being bytes: a documents array is megabytes, each copy
    counts.)"""

    __slots__ = ("data",)
    element_oid: ClassVar[int]
    array_oid: ClassVar[int]

    def __init__(self, count: int, has_null: bool, elements: Iterable[bytes]) -> None:
        if not count:
            self.data = _EMPTY(0, 0, self.element_oid)
        else:
            header = _HEADER(1, has_null, self.element_oid, count, 1)
            self.data = b"".join(chain((header,), elements))


class TextArray(BinaryArray):
    __slots__ = ()
    element_oid, array_oid = 25, 1009

    def __init__(self, values: Sequence[str | None]) -> None:
        if None in values:
            encoded = [None if v is None else v.encode() for v in values]
            super().__init__(len(values), True, [
                _NULL if e is None else _LENGTH(len(e)) + e for e in encoded])
            return
        texts = [v.encode() for v in values]  # type: ignore[union-attr]  # no None: checked
        super().__init__(len(values), False, chain.from_iterable(
            zip(map(_LENGTH, map(len, texts)), texts, strict=True)))


class Int4Array(BinaryArray):
    __slots__ = ()
    element_oid, array_oid = 23, 1007

    def __init__(self, values: Sequence[int]) -> None:
        super().__init__(len(values), False, [_INT4(4, v) for v in values])


class Int8Array(BinaryArray):
    __slots__ = ()
    element_oid, array_oid = 20, 1016

    def __init__(self, values: Sequence[int]) -> None:
        super().__init__(len(values), False, [_INT8(8, v) for v in values])


class Float8Array(BinaryArray):
    __slots__ = ()
    element_oid, array_oid = 701, 1022

    def __init__(self, values: Sequence[float | None]) -> None:
        super().__init__(len(values), None in values,
                         [_NULL if v is None else _FLOAT8(8, v) for v in values])


class BoolArray(BinaryArray):
    __slots__ = ()
    element_oid, array_oid = 16, 1000

    def __init__(self, values: Sequence[bool]) -> None:
        super().__init__(len(values), False, [_TRUE if v else _FALSE for v in values])


def _dumper(array: type[BinaryArray]) -> type[Dumper]:
    class ArrayDumper(Dumper):
        format = Format.BINARY
        oid = array.array_oid

        def dump(self, obj: object) -> Buffer:
            assert isinstance(obj, BinaryArray)
            return obj.data

    return ArrayDumper


for _array in (TextArray, Int4Array, Int8Array, Float8Array, BoolArray):
    psycopg.adapters.register_dumper(_array, _dumper(_array))
