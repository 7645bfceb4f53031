"""Typed reading and writing of UrbanDataset values.

Every UrbanDataset value travels as a string; the property definition's ``dataType`` says how to
read it. ``reader_for`` builds, once per property and document, a function from the text to the
NGSI-LD value; the per-line path is then one call. The fast path is Python's own conversion; only
when it fails does the slow path try the repairs real producers need (a decimal comma,
``1.0`` for an integer, ``si``/``no`` for a boolean), returning a ``Repaired`` wrapper so the
caller can report it. Values that cannot be read raise ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, time
from typing import Any, Final, NamedTuple

from sinergia.adapters.urbandataset.timezone import LocalTimes, parse_utc, to_local_text

__all__ = [
    "DATA_TYPES",
    "Reader",
    "Repaired",
    "format_value",
    "normalize_data_type",
    "reader_for",
]

# The dataTypes UrbanDataset definitions use.
DATA_TYPES: Final = ("string", "double", "integer", "boolean", "dateTime", "Time", "date",
                     "enumeration")

_DATA_TYPE_ALIASES: Final[dict[str, str]] = {
    "string": "string", "text": "string", "str": "string", "char": "string",
    "double": "double", "float": "double", "decimal": "double", "number": "double",
    "real": "double", "numeric": "double",
    "integer": "integer", "int": "integer", "long": "integer", "short": "integer",
    "boolean": "boolean", "bool": "boolean",
    "datetime": "dateTime", "date-time": "dateTime", "timestamp": "dateTime",
    "time": "Time",
    "date": "date",
    "enumeration": "enumeration", "enum": "enumeration",
}


def normalize_data_type(name: str) -> str | None:
    """A dataType as written → one of DATA_TYPES, or None when unknown."""
    return _DATA_TYPE_ALIASES.get(name.strip().lower())


class Repaired(NamedTuple):
    """A value read only after a repair; ``note`` says which."""

    value: Any
    note: str


Reader = Callable[[str], Any]  # text → value | Repaired; raises ValueError

_TRUE: Final = frozenset({"true"})
_FALSE: Final = frozenset({"false"})
_LENIENT_TRUE: Final = frozenset({"1", "yes", "y", "si", "sì", "vero", "t", "on"})
_LENIENT_FALSE: Final = frozenset({"0", "no", "n", "falso", "f", "off"})


def _double_slow(text: str) -> Any:
    stripped = text.strip()
    # A single decimal comma ("158,92") is the Italian way to write 158.92; with a dot too,
    # the comma might be a thousands separator, so that stays an error.
    if stripped.count(",") == 1 and "." not in stripped:
        value = float(stripped.replace(",", "."))
        if math.isfinite(value):
            return Repaired(value, f"decimal comma in {text!r} read as a point")
    raise ValueError(f"{text!r} is not a number")


def read_double(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return _double_slow(text)
    if not math.isfinite(value):  # float() accepts "nan"/"inf", which JSON cannot carry
        raise ValueError(f"{text!r} is not a finite number")
    return value


def read_integer(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    number = read_double(text)
    value = number.value if isinstance(number, Repaired) else number
    if value != int(value):
        raise ValueError(f"{text!r} is not a whole number")
    return Repaired(int(value), f"integer written as {text.strip()!r}")


def read_boolean(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    if lowered in _LENIENT_TRUE:
        return Repaired(True, f"boolean written as {text.strip()!r}")
    if lowered in _LENIENT_FALSE:
        return Repaired(False, f"boolean written as {text.strip()!r}")
    raise ValueError(f"{text!r} is not a boolean")


def read_time(text: str) -> Any:
    stripped = text.strip()
    moment = time.fromisoformat(stripped)  # raises ValueError
    if moment.tzinfo is not None:
        raise ValueError(f"{text!r}: a Time value carries no offset")
    return {"@type": "Time", "@value": moment.isoformat()}


def read_date(text: str) -> Any:
    return {"@type": "Date", "@value": date.fromisoformat(text.strip()).isoformat()}


def read_string(text: str) -> Any:
    return text


def _datetime_reader(times: LocalTimes) -> Reader:
    def read_datetime(text: str) -> Any:
        utc, note = times.to_utc(text)
        value = {"@type": "DateTime", "@value": utc}
        return Repaired(value, note) if note else value

    return read_datetime


_READERS: Final[dict[str, Reader]] = {
    "double": read_double,
    "integer": read_integer,
    "boolean": read_boolean,
    "Time": read_time,
    "date": read_date,
    "string": read_string,
    "enumeration": read_string,
}


def reader_for(data_type: str, times: LocalTimes) -> Reader:
    """The reader for a normalized dataType (see ``normalize_data_type``)."""
    if data_type == "dateTime":
        return _datetime_reader(times)
    return _READERS.get(data_type, read_string)


def format_value(value: Any, data_type: str, zone: Any) -> str:
    """An NGSI-LD value → UrbanDataset text for ``data_type``, the inverse of the readers.
    Raises ValueError (or TypeError) when the value does not fit the type."""
    if isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    if data_type == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number")
        return repr(float(value))  # shortest text that reads back to the same float
    if data_type == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"{value!r} is not a whole number")
        return str(int(value))
    if data_type == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not a boolean")
        return "true" if value else "false"
    if data_type == "dateTime":
        return to_local_text(parse_utc(str(value)), zone)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise ValueError(f"a structured value cannot be written as {data_type}")
    if isinstance(value, float):
        return repr(value)
    return str(value)
