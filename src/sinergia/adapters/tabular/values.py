"""Cell parsers: the text (or GeoJSON property value) of one cell → the JSON value of an
attribute. Each parser is built once per column from the mapping, so the per-cell work is a
few string operations; a cell that does not parse raises ``ValueError`` with a message meant
for the person who wrote the spreadsheet."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
import shapely
import shapely.errors

from sinergia.adapters.tabular.mapping import DateSpec, ParserName

Parser = Callable[[Any], Any]

TRUE_WORDS: Final = frozenset({"1", "true", "t", "yes", "y", "si", "sì", "s", "vero", "x"})
FALSE_WORDS: Final = frozenset({"0", "false", "f", "no", "n", "falso"})
_LEADING_ZERO = re.compile(r"[+-]?0\d")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class NumberParser:
    """Numbers written with a given decimal mark and optional thousands separator:
    ``1.234,5`` (Italian), ``1,234.5``, ``1234.5``. A thousands separator is accepted only in
    well-formed groups of three digits, so ``1.5`` is not silently read as 15 in a
    decimal-comma file."""

    def __init__(self, decimal: str = ".", thousands: str | None = None) -> None:
        self.decimal = decimal
        self.thousands = thousands
        self._grouped: re.Pattern[str] | None = None
        if thousands:
            sep, dec = re.escape(thousands), re.escape(decimal)
            self._grouped = re.compile(rf"[+-]?\d{{1,3}}(?:{sep}\d{{3}})+(?:{dec}\d*)?")
        # The common shapes ("12", "-3,75") skip the general path and its exceptions.
        self._simple = re.compile(rf"[+-]?\d+({re.escape(decimal)}\d+)?")

    def normalize(self, text: str) -> str:
        """The number in Python's notation (``1234.5``), or ValueError."""
        text = text.strip()
        if "_" in text:  # Python's int() and float() would accept 1_000
            raise ValueError(f"{_short(text)} is not a number")
        if self.thousands and self.thousands in text:
            if self._grouped is None or self._grouped.fullmatch(text) is None:
                raise ValueError(f"{_short(text)} is not a number (misplaced "
                                 f"{self.thousands!r})")
            text = text.replace(self.thousands, "")
        if self.decimal != ".":
            if "." in text:
                raise ValueError(f"{_short(text)} is not a number (the decimal mark is "
                                 f"{self.decimal!r})")
            text = text.replace(self.decimal, ".")
        return text

    def number(self, value: Any) -> int | float:
        if type(value) is str:
            simple = self._simple.fullmatch(value)
            if simple is not None:
                if simple.group(1) is None:
                    return int(value)
                return float(value.replace(self.decimal, ".") if self.decimal != "."
                             else value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return _finite(value)
        if not isinstance(value, str):
            raise ValueError(f"{_short(value)} is not a number")
        text = self.normalize(value)
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return _finite(float(text))
        except ValueError:
            raise ValueError(f"{_short(value)} is not a number") from None

    def integer(self, value: Any) -> int:
        number = self.number(value)
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError(f"{_short(value)} is not a whole number")
            return int(number)
        return number

    def auto(self, value: Any) -> Any:
        """A number when the cell is one (and has no leading zero, so codes like ``007`` or
        postcodes keep their text); otherwise the trimmed text. Non-text values (GeoJSON)
        pass through."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text and (text[0].isdigit() or text[0] in "+-.,") and not _LEADING_ZERO.match(text):
            try:
                return self.number(text)
            except ValueError:
                pass
        return text


def _finite(number: float) -> float:
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{number!r} is not a finite number")
    return number


def parse_string(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict | list):
        raise ValueError(f"{_short(value)} is not text")
    return str(value)


def parse_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"{_short(value)} is not a yes/no value")


class DateParser:
    """Dates and date-times: ISO 8601 first, then the mapping's strptime formats (Italian
    ``dd/mm/yyyy`` by default). Date-times without an offset are in the mapping's time zone;
    all come out in UTC as ``YYYY-MM-DDTHH:MM:SS.fffZ``, the form NGSI-LD compares."""

    def __init__(self, spec: DateSpec) -> None:
        self.formats = spec.formats
        self.zone = ZoneInfo(spec.timezone)
        # Tables repeat their timestamps (every station of an hourly export shares one), and
        # strptime is the costliest step of a row: remember recent answers.
        self._cached_instant = functools.lru_cache(maxsize=4096)(self._instant)
        self._cached_day = functools.lru_cache(maxsize=4096)(self._day)

    def _parse(self, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError(f"{_short(value)} is not a date")
        text = value.strip()
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
        for fmt in self.formats:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
        raise ValueError(f"{_short(value)} is not a date in any of the formats "
                         f"{', '.join(('ISO 8601', *self.formats))}")

    def instant(self, value: Any) -> str:
        """The cell as a UTC date-time string (for observedAt)."""
        return self._cached_instant(value) if type(value) is str else self._instant(value)

    def _instant(self, value: Any) -> str:
        moment = self._parse(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        try:
            moment = moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError(f"{_short(value)} is out of range") from None
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def datetime_value(self, value: Any) -> dict[str, str]:
        return {"@type": "DateTime", "@value": self.instant(value)}

    def date_value(self, value: Any) -> dict[str, str]:
        day = self._cached_day(value) if type(value) is str else self._day(value)
        return {"@type": "Date", "@value": day}

    def _day(self, value: Any) -> str:
        return self._parse(value).date().isoformat()


def parse_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ValueError(f"{_short(value)} is not JSON") from None


def geometry_from_wkt(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        raise ValueError(f"{_short(value)} is not WKT text")
    try:
        geometry = shapely.from_wkt(value.strip())
    except shapely.errors.GEOSException:
        raise ValueError(f"{_short(value)} is not valid WKT") from None
    if geometry is None or geometry.is_empty:
        raise ValueError(f"{_short(value)} is an empty geometry")
    result: dict[str, Any] = orjson.loads(shapely.to_geojson(geometry))
    return result


def geometry_from_geojson(value: Any) -> dict[str, Any]:
    geometry = parse_json(value)
    if not isinstance(geometry, dict) or "type" not in geometry:
        raise ValueError(f"{_short(value)} is not a GeoJSON geometry")
    if geometry.get("type") == "Feature":  # a whole feature in a cell: take its geometry
        geometry = geometry.get("geometry")
        if not isinstance(geometry, dict):
            raise ValueError("the GeoJSON feature has no geometry")
    return geometry


def build_parser(name: ParserName, numbers: NumberParser, dates: DateParser, *,
                 separator: str = "|") -> Parser:
    """The parser a column declares, configured by the mapping's number and date settings."""
    if name == "list":
        def split(value: Any) -> list[Any]:
            if isinstance(value, list):
                return value
            return [numbers.auto(item) for item in str(value).split(separator)]
        return split
    parsers: dict[str, Parser] = {
        "auto": numbers.auto,
        "string": parse_string,
        "number": numbers.number,
        "integer": numbers.integer,
        "boolean": parse_boolean,
        "datetime": dates.datetime_value,
        "date": dates.date_value,
        "json": parse_json,
        "wkt": geometry_from_wkt,
        "geojson": geometry_from_geojson,
    }
    return parsers[name]
