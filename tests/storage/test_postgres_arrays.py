"""Arrays built in binary wire format reach PostgreSQL as the same arrays psycopg's own
list dumper sends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinergia.storage.postgres_arrays import (
    BinaryArray,
    BoolArray,
    Float8Array,
    Int4Array,
    Int8Array,
    TextArray,
)

TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))
CASES: list[tuple[type[BinaryArray], str, Any]] = [
    (TextArray, "text[]", st.lists(TEXT)),
    (TextArray, "text[]", st.lists(st.none() | TEXT)),
    (Int4Array, "int4[]", st.lists(st.integers(-2**31, 2**31 - 1))),
    (Int8Array, "int8[]", st.lists(st.integers(-2**63, 2**63 - 1))),
    (Float8Array, "float8[]", st.lists(st.none() | st.floats(allow_nan=False))),
    (BoolArray, "bool[]", st.lists(st.booleans())),
]


@pytest.fixture(scope="module")
def conn(postgres_server: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        yield connection


@pytest.mark.parametrize(("array", "sql_type", "lists"), CASES,
                         ids=[f"{c[0].__name__}-{n}" for n, c in enumerate(CASES)])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_same_array_as_psycopg_sends(conn: psycopg.Connection[Any], array: type[BinaryArray],
                                     sql_type: str, lists: Any, data: st.DataObject) -> None:
    values = data.draw(lists)
    ours, theirs = conn.execute(
        f"SELECT %b::{sql_type}, %b::{sql_type}",
        (array(values), values)).fetchone() or (None, None)
    assert ours == theirs
    assert ours == [float(v) if isinstance(v, int) and array is Float8Array else v
                    for v in values]


def test_an_array_is_usable_as_a_table(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute("SELECT * FROM unnest(%b::int8[], %b::text[]) WITH ORDINALITY",
                        (Int8Array([7, 8]), TextArray(["seven", "eight"]))).fetchall()
    assert rows == [(7, "seven", 1), (8, "eight", 2)]
