"""The nesting limit of request bodies is computed on the JSON text (api.http); it must agree
with the depth of the parsed value, whatever brackets, quotes and escapes the strings hold."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from sinergia.api.http import _nests_deeper_than

# Strings made of the characters that could fool a scan of the text.
tricky = st.text(alphabet='[]{}"\\\tax\u00e8', max_size=6)
json_values = st.recursive(
    st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | tricky,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
    max_leaves=30)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@given(json_values, st.integers(min_value=0, max_value=8))
def test_text_depth_agrees_with_the_parsed_value(value: Any, limit: int) -> None:
    assert _nests_deeper_than(orjson.dumps(value), limit) == (depth(value) > limit)


def test_a_long_chain_is_measured_to_the_limit() -> None:
    chain = b"[" * 101 + b'"]]"' + b"]" * 101
    assert _nests_deeper_than(chain, 101) is False
    assert _nests_deeper_than(chain, 100) is True


def test_escapes_do_not_hide_the_end_of_a_string() -> None:
    # '\t' then '"' closing the string: a naive cut keeps '\' and reads '\"' as an escape.
    assert _nests_deeper_than(b'[{"id": "urn:tab\\there", "k": [1]}]', 2) is True
    assert _nests_deeper_than(b'[{"id": "urn:tab\\there", "k": [1]}]', 3) is False
    assert _nests_deeper_than(b'["\\\\", "\\"[", [[]]]', 2) is True
    assert _nests_deeper_than(b'["\\\\", "\\"[", [[]]]', 3) is False
