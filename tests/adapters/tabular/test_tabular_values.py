"""Cell parsers: Italian numbers and dates, booleans, geometries; property-based where the
input space is large."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.adapters.tabular.mapping import DateSpec
from sinergia.adapters.tabular.values import (
    DateParser,
    NumberParser,
    geometry_from_geojson,
    geometry_from_wkt,
    parse_boolean,
    parse_json,
    parse_string,
)

ITALIAN = NumberParser(",", ".")
PLAIN = NumberParser(".")


def italian(value: Decimal) -> str:
    """How an Italian spreadsheet writes a number: 1.234.567,89."""
    text = f"{abs(value):,f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return ("-" if value < 0 else "") + text


@given(st.decimals(min_value=-10**12, max_value=10**12, places=3, allow_nan=False))
def test_italian_numbers_read_back_exactly(value: Decimal) -> None:
    assert ITALIAN.number(italian(value)) == pytest.approx(float(value), abs=1e-9)


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_integers_stay_integers(value: int) -> None:
    parsed = ITALIAN.number(f"{value:,}".replace(",", "."))
    assert parsed == value and isinstance(parsed, int)
    assert PLAIN.integer(str(value)) == value


@given(st.text(max_size=12))
def test_numbers_never_fail_otherwise_than_with_value_error(text: str) -> None:
    for parser in (ITALIAN, PLAIN):
        try:
            result = parser.number(text)
        except ValueError:
            continue
        assert isinstance(result, int | float)


@pytest.mark.parametrize(("text", "expected"), [
    ("12,5", 12.5), ("1.234,5", 1234.5), ("-0,75", -0.75), ("1.000.000", 1_000_000),
    (" 42 ", 42), ("1,5e3", 1500.0),
])
def test_decimal_comma_numbers(text: str, expected: float) -> None:
    assert ITALIAN.number(text) == expected


@pytest.mark.parametrize("text", ["1.5", "12.34,5", "3,4,5", "1_000", "nan", "inf", "", "abc",
                                  "1.2345"])
def test_ambiguous_or_broken_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="number"):
        ITALIAN.number(text)


def test_plain_numbers_refuse_decimal_commas() -> None:
    assert PLAIN.number("12.5") == 12.5
    with pytest.raises(ValueError):
        PLAIN.number("12,5")
    with pytest.raises(ValueError, match="whole number"):
        PLAIN.integer("12.5")


def test_auto_reads_numbers_but_keeps_codes_as_text() -> None:
    assert ITALIAN.auto("12,5") == 12.5
    assert ITALIAN.auto("0,5") == 0.5
    assert ITALIAN.auto("007") == "007"       # a code, not seven
    assert ITALIAN.auto("20121") == 20121
    assert ITALIAN.auto(" Via Senato ") == "Via Senato"
    assert ITALIAN.auto(3) == 3               # GeoJSON values pass through


ROME = DateParser(DateSpec(timezone="Europe/Rome"))


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)))
def test_italian_date_times_are_local_time_turned_into_utc(moment: datetime) -> None:
    moment = moment.replace(second=0, microsecond=0)
    text = moment.strftime("%d/%m/%Y %H:%M")
    # fold=0: an ambiguous autumn hour is read as the first (summer-time) one, as zoneinfo does
    expected = moment.replace(tzinfo=ZoneInfo("Europe/Rome")).astimezone(UTC)
    assert ROME.instant(text) == expected.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@given(st.dates(min_value=date(1000, 1, 1)))
def test_italian_dates(day: date) -> None:
    assert ROME.date_value(day.strftime("%d/%m/%Y")) == {"@type": "Date",
                                                         "@value": day.isoformat()}


def test_iso_and_offset_date_times() -> None:
    assert ROME.instant("2024-03-01T10:00:00+01:00") == "2024-03-01T09:00:00.000Z"
    assert ROME.instant("2024-07-01 10:00") == "2024-07-01T08:00:00.000Z"  # summer: UTC+2
    assert ROME.datetime_value("01/03/2024 10:00") == {
        "@type": "DateTime", "@value": "2024-03-01T09:00:00.000Z"}
    utc = DateParser(DateSpec())
    assert utc.instant("01/03/2024") == "2024-03-01T00:00:00.000Z"
    assert utc.instant("01-03-2024 23:59:59") == "2024-03-01T23:59:59.000Z"


@pytest.mark.parametrize("text", ["31/02/2024", "2024/03/01", "ieri", ""])
def test_impossible_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a date"):
        ROME.instant(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("sì", True), ("SI", True), ("x", True), ("vero", True), ("1", True),
    ("no", False), ("Falso", False), ("0", False),
])
def test_italian_and_english_booleans(text: str, expected: bool) -> None:
    assert parse_boolean(text) is expected


def test_other_values() -> None:
    with pytest.raises(ValueError, match="yes/no"):
        parse_boolean("forse")
    assert parse_string("  Piazza Duomo ") == "Piazza Duomo"
    assert parse_string(12) == "12"
    assert parse_json('{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(ValueError, match="not JSON"):
        parse_json("{a")


def test_geometries_from_wkt_and_geojson() -> None:
    assert geometry_from_wkt("POINT (9.19 45.46)") == {"type": "Point",
                                                       "coordinates": [9.19, 45.46]}
    line = geometry_from_wkt("LINESTRING (9.1 45.4, 9.2 45.5)")
    assert line["type"] == "LineString" and line["coordinates"][1] == [9.2, 45.5]
    with pytest.raises(ValueError, match="WKT"):
        geometry_from_wkt("POINT (9.19")
    feature = '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [9, 45]}}'
    assert geometry_from_geojson(feature) == {"type": "Point", "coordinates": [9, 45]}
    with pytest.raises(ValueError, match="GeoJSON"):
        geometry_from_geojson("[1, 2]")
