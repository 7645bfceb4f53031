"""UrbanDataset time: ``context.timeZone`` and the offset-less local timestamps it governs.

UrbanDataset timestamps are written without an offset (``2026-11-20T00:15:00``); the whole
document's offset is ``context.timeZone``. Producers write it as ``UTC+1``, ``UTC+5:30``, ``UTC``,
``+01:00`` and, now and then, an IANA name (``Europe/Rome``). We read all of these and always
write ``UTC±h[:mm]``. Timestamps become UTC in the NGSI-LD form the broker stores
(milliseconds, ``Z``), so strings compare in time order.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Final

__all__ = [
    "LocalTimes",
    "format_time_zone",
    "parse_local_datetime",
    "parse_time_zone",
    "parse_utc",
    "to_local_text",
    "utc_text",
]

# "UTC+1", "UTC +01:00", "GMT-3", "+05:30", "+0530", "UTC", "Z". Compiled once, used once per
# document (never per line).
_OFFSET: Final = re.compile(
    r"^(?P<prefix>UTC|GMT|Z)?\s*(?:(?P<sign>[+-])\s*(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?)?$",
    re.IGNORECASE,
)
_IANA: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$")
_MAX_OFFSET: Final = timedelta(hours=18)  # ISO 8601 / RFC 9557 limit; real zones stay within ±14h


def parse_time_zone(text: str) -> tzinfo:
    """``context.timeZone`` → a tzinfo: a fixed offset, or a ZoneInfo for an IANA name.

    Raises ValueError for anything else (an empty string, an offset beyond ±18 h, a name the
    local time-zone database does not know)."""
    cleaned = text.strip().replace("\u2212", "-")  # a typographic minus sign is still a minus
    match = _OFFSET.match(cleaned)
    if match and (match["prefix"] or match["sign"]):
        if not match["sign"]:
            return UTC
        hours, minutes = int(match["hours"]), int(match["minutes"] or 0)
        if minutes >= 60:
            raise ValueError(f"time zone {text!r}: minutes must be below 60")
        offset = timedelta(hours=hours, minutes=minutes)
        if offset > _MAX_OFFSET:
            raise ValueError(f"time zone {text!r}: offset beyond ±18 hours")
        if offset == timedelta(0):
            return UTC
        return timezone(-offset if match["sign"] == "-" else offset)
    if _IANA.match(cleaned):
        try:
            return zoneinfo.ZoneInfo(cleaned)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(f"time zone {text!r} is neither UTC±h[:mm], ±hh:mm nor a known zone name")


def _fixed_offset(zone: tzinfo | timedelta) -> timedelta:
    if isinstance(zone, timedelta):
        return zone
    offset = zone.utcoffset(None)
    if offset is None:
        raise ValueError(
            f"time zone {zone} has no fixed offset; an UrbanDataset needs one (e.g. UTC+1)"
        )
    return offset


def format_time_zone(zone: tzinfo | timedelta) -> str:
    """A fixed offset → ``UTC+1``, ``UTC+5:30``, ``UTC-3``, ``UTC+0``."""
    offset = _fixed_offset(zone)
    sign = "-" if offset < timedelta(0) else "+"
    minutes_total = abs(int(offset.total_seconds())) // 60
    hours, minutes = divmod(minutes_total, 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def utc_text(moment: datetime) -> str:
    """An aware datetime → NGSI-LD UTC text with milliseconds (``2026-11-20T00:15:00.000Z``)."""
    # isoformat, unlike strftime, zero-pads years before 1000 on every platform
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_utc(text: str) -> datetime:
    """NGSI-LD time text (any ISO 8601 with offset or ``Z``) → aware UTC datetime."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(UTC)


def parse_local_datetime(text: str) -> tuple[datetime, bool]:
    """An UrbanDataset timestamp → (datetime, rolled_over).

    Accepts ISO 8601 as Python reads it (``T`` or space, fractions, ``Z``/offsets, date only)
    plus ``24:00:00`` as the end of a day, which ISO 8601 allows and producers write;
    ``rolled_over`` says that happened. Raises ValueError."""
    stripped = text.strip()
    try:
        return datetime.fromisoformat(stripped), False
    except ValueError:
        day, separator, clock = stripped.partition("T")
        if not separator:
            day, separator, clock = stripped.partition(" ")
        if separator and clock.startswith("24:00") and clock[5:].strip(":0.") in ("", "Z"):
            midnight = datetime.combine(date.fromisoformat(day), datetime.min.time())
            return midnight + timedelta(days=1), True
        raise


def to_local_text(moment: datetime, zone: tzinfo) -> str:
    """An aware datetime → UrbanDataset local text (``2026-11-20T01:15:00``) in ``zone``;
    fractions of a second are kept only when present."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    if local.microsecond:
        return local.isoformat(timespec="microseconds").rstrip("0")
    return local.isoformat(timespec="seconds")


class LocalTimes:
    """Converts one document's local timestamps to UTC text, remembering each distinct string:
    in real documents thousands of lines share a handful of period bounds, so the parsing runs
    once per distinct value rather than once per line."""

    __slots__ = ("_memo", "zone")

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        # text → (UTC text, note) where note is None or says what was repaired
        self._memo: dict[str, tuple[str, str | None]] = {}

    def to_utc(self, text: str) -> tuple[str, str | None]:
        """Local timestamp text → (UTC NGSI-LD text, repair note or None). Raises ValueError."""
        cached = self._memo.get(text)
        if cached is not None:
            return cached
        moment, rolled_over = parse_local_datetime(text)
        note = None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        else:
            note = f"timestamp {text!r} carries its own UTC offset, used instead of the timeZone"
        if rolled_over:
            note = f"timestamp {text!r} read as 00:00 of the next day"
        result = (utc_text(moment), note)
        if len(self._memo) < 100_000:  # bound memory on documents with unique timestamps
            self._memo[text] = result
        return result
