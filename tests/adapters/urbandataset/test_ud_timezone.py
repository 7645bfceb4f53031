"""context.timeZone and local timestamps: every form producers write, and exact round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinergia.adapters.urbandataset.timezone import (
    LocalTimes,
    format_time_zone,
    parse_local_datetime,
    parse_time_zone,
    parse_utc,
    to_local_text,
    utc_text,
)


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("UTC+1", timedelta(hours=1)),
        ("UTC+2", timedelta(hours=2)),
        ("UTC+5:30", timedelta(hours=5, minutes=30)),
        ("UTC+05:30", timedelta(hours=5, minutes=30)),
        ("UTC-3", timedelta(hours=-3)),
        ("UTC", timedelta(0)),
        ("utc+1", timedelta(hours=1)),
        ("UTC +01:00", timedelta(hours=1)),
        ("GMT+1", timedelta(hours=1)),
        ("+01:00", timedelta(hours=1)),
        ("+0100", timedelta(hours=1)),
        ("-09:30", timedelta(hours=-9, minutes=-30)),
        ("Z", timedelta(0)),
        ("UTC\u22123", timedelta(hours=-3)),  # a typographic minus
    ],
)
def test_fixed_offsets_in_every_written_form(text: str, offset: timedelta) -> None:
    assert parse_time_zone(text).utcoffset(None) == offset


def test_iana_names_follow_daylight_saving() -> None:
    rome = parse_time_zone("Europe/Rome")
    assert isinstance(rome, ZoneInfo)
    times = LocalTimes(rome)
    assert times.to_utc("2026-07-01T12:00:00")[0] == "2026-07-01T10:00:00.000Z"
    assert times.to_utc("2026-01-15T12:00:00")[0] == "2026-01-15T11:00:00.000Z"


@pytest.mark.parametrize("text", ["", "UTC+25", "UTC+1:75", "Mars/Olympus", "1", "UTC+1+2"])
def test_unreadable_time_zones_are_errors(text: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_time_zone(text)


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (timedelta(hours=1), "UTC+1"),
        (timedelta(hours=5, minutes=30), "UTC+5:30"),
        (timedelta(hours=-3), "UTC-3"),
        (timedelta(hours=-9, minutes=-30), "UTC-9:30"),
        (timedelta(0), "UTC+0"),
    ],
)
def test_written_as_utc_plus_hours(offset: timedelta, text: str) -> None:
    assert format_time_zone(timezone(offset)) == text


def test_a_zone_without_fixed_offset_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="fixed offset"):
        format_time_zone(ZoneInfo("Europe/Rome"))


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


@given(offsets)
def test_offsets_round_trip_through_text(offset: timedelta) -> None:
    assert parse_time_zone(format_time_zone(offset)).utcoffset(None) == offset


@given(offsets)
def test_offsets_round_trip_through_iso_form(offset: timedelta) -> None:
    sign = "-" if offset < timedelta(0) else "+"
    hours, minutes = divmod(abs(int(offset.total_seconds())) // 60, 60)
    assert parse_time_zone(f"{sign}{hours:02d}:{minutes:02d}").utcoffset(None) == offset


local_moments = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2199, 12, 30))


@given(local_moments.map(lambda moment: moment.replace(microsecond=0)), offsets)
def test_local_text_to_utc_and_back_is_exact(moment: datetime, offset: timedelta) -> None:
    zone = timezone(offset)
    text = moment.isoformat(timespec="seconds")
    utc, note = LocalTimes(zone).to_utc(text)
    assert note is None
    assert utc.endswith(".000Z")
    assert parse_utc(utc) == moment.replace(tzinfo=zone)
    assert to_local_text(parse_utc(utc), zone) == text


@given(local_moments, offsets)
def test_utc_text_has_millisecond_precision_and_orders_like_time(
    moment: datetime, offset: timedelta
) -> None:
    aware = moment.replace(tzinfo=timezone(offset))
    text = utc_text(aware)
    assert len(text) == len("2026-11-20T00:15:00.000Z")
    later = utc_text(aware + timedelta(milliseconds=1))
    assert later > text


def test_utc_plus_five_thirty() -> None:
    times = LocalTimes(parse_time_zone("UTC+5:30"))
    assert times.to_utc("2026-11-20T03:00:00") == ("2026-11-19T21:30:00.000Z", None)


def test_end_of_day_as_24_00_is_next_midnight() -> None:
    moment, rolled = parse_local_datetime("2026-12-31T24:00:00")
    assert (moment, rolled) == (datetime(2027, 1, 1), True)
    utc, note = LocalTimes(parse_time_zone("UTC+1")).to_utc("2026-12-31T24:00:00")
    assert utc == "2026-12-31T23:00:00.000Z"
    assert note is not None and "next day" in note


def test_explicit_offset_wins_and_is_noted() -> None:
    utc, note = LocalTimes(parse_time_zone("UTC+1")).to_utc("2026-11-20T10:00:00Z")
    assert utc == "2026-11-20T10:00:00.000Z"
    assert note is not None and "own UTC offset" in note


@pytest.mark.parametrize("text", ["2026-13-01T00:00:00", "yesterday", "2026-11-20T25:00:00"])
def test_unreadable_timestamps_are_errors(text: str) -> None:
    with pytest.raises(ValueError):
        LocalTimes(UTC).to_utc(text)


def test_fractions_of_a_second_survive_local_text() -> None:
    moment = datetime(2026, 11, 20, 10, 0, 0, 500_000, tzinfo=UTC)
    assert to_local_text(moment, parse_time_zone("UTC+1")) == "2026-11-20T11:00:00.5"
