"""Typed reading of UrbanDataset string values, their repairs, and writing them back."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.adapters.urbandataset.timezone import LocalTimes, parse_time_zone
from sinergia.adapters.urbandataset.values import (
    Repaired,
    format_value,
    normalize_data_type,
    reader_for,
)

ROME_WINTER = parse_time_zone("UTC+1")
TIMES = LocalTimes(ROME_WINTER)


def read(data_type: str, text: str) -> object:
    return reader_for(data_type, TIMES)(text)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_doubles_round_trip_exactly(number: float) -> None:
    text = format_value(number, "double", ROME_WINTER)
    assert read("double", text) == number


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_integers_round_trip(number: int) -> None:
    assert read("integer", format_value(number, "integer", ROME_WINTER)) == number


@given(st.booleans())
def test_booleans_round_trip(flag: bool) -> None:
    assert read("boolean", format_value(flag, "boolean", ROME_WINTER)) is flag


@given(st.times().map(lambda moment: moment.replace(tzinfo=None)))
def test_times_round_trip(moment: time) -> None:
    value = read("Time", moment.isoformat())
    assert value == {"@type": "Time", "@value": moment.isoformat()}
    assert format_value(value, "Time", ROME_WINTER) == moment.isoformat()


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 1, 1))
       .map(lambda moment: moment.replace(microsecond=0)))
def test_datetimes_round_trip_through_utc(moment: datetime) -> None:
    text = moment.isoformat()
    value = read("dateTime", text)
    assert isinstance(value, dict) and value["@type"] == "DateTime"
    assert value["@value"].endswith("Z")
    assert format_value(value, "dateTime", ROME_WINTER) == text


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=99))
def test_a_decimal_comma_is_repaired(whole: int, cents: int) -> None:
    value = read("double", f"{whole},{cents:02d}")
    assert isinstance(value, Repaired)
    assert value.value == float(f"{whole}.{cents:02d}")
    assert "decimal comma" in value.note


@given(st.text())
def test_the_double_reader_never_returns_non_finite_numbers(text: str) -> None:
    try:
        value = read("double", text)
    except ValueError:
        return
    number = value.value if isinstance(value, Repaired) else value
    assert isinstance(number, float) and math.isfinite(number)


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "n/a", "1.234,5", "", "12 kW"])
def test_unreadable_doubles_are_errors(text: str) -> None:
    with pytest.raises(ValueError):
        read("double", text)


def test_an_integer_written_as_a_whole_double_is_repaired() -> None:
    assert read("integer", "12.0") == Repaired(12, "integer written as '12.0'")
    with pytest.raises(ValueError, match="whole number"):
        read("integer", "12.5")


@pytest.mark.parametrize(("text", "flag"), [("si", True), ("SI", True), ("1", True),
                                            ("no", False), ("0", False), ("falso", False)])
def test_informal_booleans_are_repaired(text: str, flag: bool) -> None:
    value = read("boolean", text)
    assert isinstance(value, Repaired) and value.value is flag


def test_canonical_booleans_need_no_repair() -> None:
    assert read("boolean", "true") is True
    assert read("boolean", " FALSE ") is False
    with pytest.raises(ValueError):
        read("boolean", "maybe")


def test_strings_and_enumerations_are_kept_as_written() -> None:
    assert read("string", "IT001E00112233") == "IT001E00112233"
    assert read("enumeration", "Push") == "Push"


@pytest.mark.parametrize(("written", "normal"), [
    ("double", "double"), ("Double", "double"), ("float", "double"), ("int", "integer"),
    ("DateTime", "dateTime"), ("dateTime", "dateTime"), ("Time", "Time"), ("time", "Time"),
    ("bool", "boolean"), ("enumeration", "enumeration"), ("String", "string"),
])
def test_data_type_spellings(written: str, normal: str) -> None:
    assert normalize_data_type(written) == normal


def test_unknown_data_type() -> None:
    assert normalize_data_type("polygon") is None


def test_format_value_refuses_values_of_another_type() -> None:
    with pytest.raises(ValueError):
        format_value("abc", "double", UTC)
    with pytest.raises(ValueError):
        format_value(True, "integer", UTC)
    with pytest.raises(ValueError):
        format_value({"L1": 1.0}, "string", UTC)
