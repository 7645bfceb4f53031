"""What the gateway reads from its callers, property-tested: resource ids, timestamps and the
search filters either parse to what was meant or are refused with a clear error — never
anything else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.adapters.urbandataset.gateway import BadGatewayRequest, parse_resource_id
from sinergia.adapters.urbandataset.search import (
    Circle,
    Filters,
    Period,
    PropertyMatch,
    matching_lines,
    parse_filters,
    timestamp_key,
)

NAME = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1, max_size=12)
STAMP = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1))


@given(city=NAME, solution=NAME, n=st.integers(0, 999), dataset=NAME,
       version=st.sampled_from(["1.0", "2.0", "2"]), started=STAMP)
def test_a_well_formed_resource_id_reads_back_its_parts(city: str, solution: str, n: int,
                                                        dataset: str, version: str,
                                                        started: datetime) -> None:
    stamp = started.strftime("%Y%m%d%H%M%S")
    text = f"SCP-{city}_{solution}-{n}_{dataset}-{version}_{stamp}"
    parsed = parse_resource_id(text)
    assert (parsed.text, parsed.smart_city, parsed.solution, parsed.dataset, parsed.version,
            parsed.started) == (text, city, f"{solution}-{n}", dataset, version, stamp)


@given(st.one_of(st.text(max_size=80), st.integers(), st.none(), st.lists(st.text())))
def test_any_resource_id_parses_or_is_refused(value: Any) -> None:
    try:
        parsed = parse_resource_id(value)
    except BadGatewayRequest as exc:
        assert str(exc)
    else:
        assert parsed.text.startswith("SCP-")


def test_resource_ids_of_the_specification() -> None:
    parsed = parse_resource_id("SCP-1_SmartBuildingCasaccia-3_SmartBuildingAnomalies-1.0_"
                               "20180125120000")
    assert (parsed.solution, parsed.dataset, parsed.version) == (
        "SmartBuildingCasaccia-3", "SmartBuildingAnomalies", "1.0")
    for bad in ("SCP-1_Solution_CounterReading-2.0_20260101000000",  # no instance number
                "SCP-1_Solution-1_CounterReading_20260101000000",  # no version
                "SCP-1_Solution-1_CounterReading-2.0_2026",  # short start
                "CounterReading-2.0"):
        with pytest.raises(BadGatewayRequest):
            parse_resource_id(bad)


@given(STAMP, st.sampled_from(["T", " "]))
def test_a_timestamp_has_one_canonical_spelling(moment: datetime, separator: str) -> None:
    moment = moment.replace(microsecond=0)
    written = moment.isoformat(sep=separator)
    key = timestamp_key(written)
    assert key == moment.isoformat(timespec="seconds")
    assert timestamp_key(key) == key


def test_24_00_is_the_next_midnight() -> None:
    assert timestamp_key("2026-11-20T24:00:00") == "2026-11-21T00:00:00"


FILTER_VALUE = st.one_of(st.none(), st.text(max_size=25), st.integers(-500, 500),
                         st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                         st.lists(st.integers(), max_size=2))


@given(st.fixed_dictionaries({}, optional={
    key: FILTER_VALUE for key in ("period_start", "period_end", "center_latitude",
                                  "center_longitude", "distance", "property_label",
                                  "property_value")}))
def test_any_filter_body_parses_or_is_refused(body: dict[str, Any]) -> None:
    try:
        filters = parse_filters(body, property_keys=("property_label", "property_value"))
    except ValueError as exc:
        assert str(exc)
        return
    if filters.circle is not None:
        assert -90 <= filters.circle.latitude <= 90 and filters.circle.radius >= 0
    assert matching_lines({"values": {"line": []}}, filters) == []


def test_filters_read_strings_and_numbers_alike() -> None:
    assert parse_filters({"center_latitude": "45.46", "center_longitude": 9.19,
                          "distance": "500", "period_start": "2026-11-20T00:00:00",
                          "property_label": "PODID"},
                         property_keys=("property_label", "property_value")) == Filters(
        Period(datetime(2026, 11, 20), None), Circle(45.46, 9.19, 500.0),
        PropertyMatch("PODID", None))
    assert parse_filters({"resource_id": "x", "period_start": ""}) == Filters()
