"""One row → one entity: templates, missing values, per-cell errors (no broker involved)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.adapters.tabular.convert import CellError, RowConverter
from sinergia.adapters.tabular.mapping import MappingError, parse_mapping
from sinergia.adapters.tabular.reader import TableSource
from sinergia.ngsild.entity import is_uri


def csv_source(columns: list[str]) -> TableSource:
    rows: Iterator[tuple[int, Any]] = iter(())
    return TableSource("csv", columns, rows, 0)


def converter(columns: list[str], **mapping: Any) -> RowConverter:
    return RowConverter(parse_mapping({"type": "T", "id": "{code}", **mapping}),
                        csv_source(columns))


@given(st.text(min_size=1).filter(lambda t: t.strip() != ""))
def test_any_cell_makes_a_valid_id_that_decodes_back(code: str) -> None:
    entity = converter(["code"]).convert([code])
    assert is_uri(entity["id"])
    assert unquote(entity["id"].removeprefix("urn:ngsi-ld:T:")) == code.strip()


def test_missing_codes_leave_the_attribute_out() -> None:
    conv = converter(["code", "v", "w"], missing=["", "-999", "n.d."],
                     attributes={"v": {"column": "v", "parser": "number",
                                       "missing": ["ND"]},
                                 "w": {"column": "w"}})
    assert conv.convert(["A", "-999", "n.d."]) == {"id": "urn:ngsi-ld:T:A", "type": "T"}
    assert conv.convert(["A", "ND", " -999 "]) == {"id": "urn:ngsi-ld:T:A", "type": "T"}
    assert conv.convert(["A", "1", "x"])["v"] == {"type": "Property", "value": 1}


def test_cell_errors_name_their_column() -> None:
    conv = converter(["code", "v"], attributes={"v": {"column": "v", "parser": "integer"}})
    with pytest.raises(CellError) as caught:
        conv.convert(["A", "1,5"])
    assert caught.value.column == "v" and "not a number" in caught.value.message
    with pytest.raises(CellError, match="has 1 fields"):
        conv.convert(["A"])


def test_other_kinds_and_a_list() -> None:
    conv = converter(["code", "nome", "tags", "meta"], attributes={
        "name": {"column": "nome", "kind": "LanguageProperty", "language": "it"},
        "tags": {"column": "tags", "kind": "ListProperty", "parser": "list"},
        "meta": {"column": "meta", "kind": "JsonProperty", "parser": "json"},
        "category": {"kind": "VocabProperty", "value": "street"}})
    entity = conv.convert(["A", "Piazza Duomo", "a|2|007", '{"k": 1}'])
    assert entity["name"] == {"type": "LanguageProperty", "languageMap": {"it": "Piazza Duomo"}}
    assert entity["tags"] == {"type": "ListProperty", "valueList": ["a", 2, "007"]}
    assert entity["meta"] == {"type": "JsonProperty", "json": {"k": 1}}
    assert entity["category"] == {"type": "VocabProperty", "vocab": "street"}


def test_one_coordinate_alone_is_an_error_and_unknown_crs_a_mapping_error() -> None:
    conv = converter(["code", "x", "y"], geometry={"lon": "x", "lat": "y"})
    with pytest.raises(CellError, match="only one of the two coordinates"):
        conv.convert(["A", "9.1", ""])
    with pytest.raises(MappingError, match="coordinate reference system"):
        converter(["code", "x", "y"], geometry={"lon": "x", "lat": "y", "crs": "EPSG:999999"})
