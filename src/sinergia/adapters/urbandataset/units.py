"""UrbanDataset units of measure ↔ UN/CEFACT common codes (the NGSI-LD ``unitCode``).

UrbanDataset names units in camel case after the OM ontology (``kilowattHour``,
``metrePerSecond-Time``); real producers also write Italian names (``adimensionale``,
``chilowattora``), symbols (``kWh``, ``°C``) and spelling variants (``Meter``/``Metre``).
``resolve_unit`` maps any of them to the canonical UrbanDataset name; ``unit_code`` gives its
UN/CEFACT Recommendation 20 code.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DIMENSIONLESS", "property_unit_code", "resolve_unit", "unit_code", "unit_for_code"]

DIMENSIONLESS: Final = "dimensionless"

# Canonical UrbanDataset unit name → UN/CEFACT Rec. 20 common code (None: no code applies —
# dimensionless values carry no unitCode, and a currency is not a unit of measure).
_CODES: Final[dict[str, str | None]] = {
    DIMENSIONLESS: None,
    "percent": "P1",
    "euro": None,
    # energy and power
    "watt": "WTT",
    "kilowatt": "KWT",
    "megawatt": "MAW",
    "wattHour": "WHR",
    "kilowattHour": "KWH",
    "megawattHour": "MWH",
    "voltampere": "D46",
    "kilovoltampere": "KVA",
    "voltamperereactive": "D44",
    "kilovoltamperereactive": "KVR",
    "kilovoltamperereactivePerHour": "K3",  # UD's name for kvar·h
    "kilovoltampereHour": "C79",
    "volt": "VLT",
    "kilovolt": "KVT",
    "ampere": "AMP",
    "milliampere": "4K",
    "hertz": "HTZ",
    "joule": "JOU",
    "megajoule": "3B",
    # climate and environment
    "degreeCelsius": "CEL",
    "kelvin": "KEL",
    "degree": "DD",
    "lux": "LUX",
    "wattPerSquareMetre": "D54",
    "hectopascal": "A97",
    "pascal": "PAL",
    "millibar": "MBR",
    "millimetre": "MMT",
    "centimetre": "CMT",
    "metre": "MTR",
    "kilometre": "KMT",
    "metrePerSecond-Time": "MTS",
    "kilometrePerHour": "KMH",
    "microgramPerCubicMeter": "GQ",
    "milligramPerCubicMetre": "GP",
    "partsPerMillion": "59",
    "partsPerBillion": "61",
    "becquerelPerCubicMetre": "A19",
    "decibel": "2N",
    # quantities and flows
    "squareMetre": "MTK",
    "cubicMetre": "MTQ",
    "litre": "LTR",
    "cubicMetrePerSecond-Time": "MQS",
    "cubicMetrePerHour": "MQH",
    "litrePerSecond": "G51",
    "kilogram": "KGM",
    "tonne": "TNE",
    "second-Time": "SEC",
    "minute-Time": "MIN",
    "hour": "HUR",
    "day": "DAY",
}

# Other spellings seen from producers → canonical name. Keys are compared after _key().
_ALIASES: Final[dict[str, str]] = {
    # dimensionless
    "adimensionale": DIMENSIONLESS,
    "adimensional": DIMENSIONLESS,
    "none": DIMENSIONLESS,
    "nessuna": DIMENSIONLESS,
    "unitless": DIMENSIONLESS,
    "1": DIMENSIONLESS,
    "%": "percent",
    "percentuale": "percent",
    "percentage": "percent",
    "eur": "euro",
    "€": "euro",
    # energy and power
    "w": "watt",
    "kw": "kilowatt",
    "chilowatt": "kilowatt",
    "mw": "megawatt",
    "wh": "wattHour",
    "kwh": "kilowattHour",
    "chilowattora": "kilowattHour",
    "kilowattora": "kilowattHour",
    "mwh": "megawattHour",
    "va": "voltampere",
    "kva": "kilovoltampere",
    "var": "voltamperereactive",
    "kvar": "kilovoltamperereactive",
    "kvarh": "kilovoltamperereactivePerHour",
    "kilovoltamperereactivehour": "kilovoltamperereactivePerHour",
    "v": "volt",
    "kv": "kilovolt",
    "a": "ampere",
    "ma": "milliampere",
    "hz": "hertz",
    # climate and environment
    "°c": "degreeCelsius",
    "celsius": "degreeCelsius",
    "gradicelsius": "degreeCelsius",
    "gradocelsius": "degreeCelsius",
    "gradi": "degree",
    "°": "degree",
    "k": "kelvin",
    "lx": "lux",
    "w/m2": "wattPerSquareMetre",
    "w/m²": "wattPerSquareMetre",
    "wattpersquaremeter": "wattPerSquareMetre",
    "wattalmetroquadro": "wattPerSquareMetre",
    "hpa": "hectopascal",
    "ettopascal": "hectopascal",
    "pa": "pascal",
    "mbar": "millibar",
    "mm": "millimetre",
    "millimetri": "millimetre",
    "millimeter": "millimetre",
    "cm": "centimetre",
    "m": "metre",
    "metri": "metre",
    "meter": "metre",
    "km": "kilometre",
    "m/s": "metrePerSecond-Time",
    "metrepersecond": "metrePerSecond-Time",
    "meterpersecond": "metrePerSecond-Time",
    "metrialsecondo": "metrePerSecond-Time",
    "km/h": "kilometrePerHour",
    "µg/m3": "microgramPerCubicMeter",
    "ug/m3": "microgramPerCubicMeter",
    "µg/m³": "microgramPerCubicMeter",
    "microgrampercubicmetre": "microgramPerCubicMeter",
    "microgrammipermetrocubo": "microgramPerCubicMeter",
    "microgrammialmetrocubo": "microgramPerCubicMeter",
    "mg/m3": "milligramPerCubicMetre",
    "ppm": "partsPerMillion",
    "partipermilione": "partsPerMillion",
    "ppb": "partsPerBillion",
    "partipermiliardo": "partsPerBillion",
    "bq/m3": "becquerelPerCubicMetre",
    "db": "decibel",
    # quantities and flows
    "m2": "squareMetre",
    "m²": "squareMetre",
    "metriquadri": "squareMetre",
    "squaremeter": "squareMetre",
    "m3": "cubicMetre",
    "m³": "cubicMetre",
    "metricubi": "cubicMetre",
    "cubicmeter": "cubicMetre",
    "l": "litre",
    "litri": "litre",
    "liter": "litre",
    "m3/s": "cubicMetrePerSecond-Time",
    "m3/h": "cubicMetrePerHour",
    "l/s": "litrePerSecond",
    "kg": "kilogram",
    "t": "tonne",
    "s": "second-Time",
    "second": "second-Time",
    "secondi": "second-Time",
    "min": "minute-Time",
    "minute": "minute-Time",
    "minuti": "minute-Time",
    "h": "hour",
    "ore": "hour",
    "giorni": "day",
}

_SEPARATORS: Final = re.compile(r"[\s_\-.]+")


def _key(name: str) -> str:
    return _SEPARATORS.sub("", name.strip().lower())


# Every canonical name and alias, by its comparison key. Built once at import.
_BY_KEY: Final[dict[str, str]] = {
    **{_key(alias): canonical for alias, canonical in _ALIASES.items()},
    **{_key(canonical): canonical for canonical in _CODES},
}
_BY_CODE: Final[dict[str, str]] = {
    code: name for name, code in reversed(list(_CODES.items())) if code is not None
}


def resolve_unit(name: str | None) -> str | None:
    """Any spelling of a unit → the canonical UrbanDataset name, or None when unknown.
    An absent or empty unit is ``dimensionless``."""
    if name is None or not name.strip():
        return DIMENSIONLESS
    if name in _CODES:
        return name
    return _BY_KEY.get(_key(name))


def unit_code(canonical: str | None) -> str | None:
    """Canonical UrbanDataset unit name → UN/CEFACT code (None for dimensionless/unknown)."""
    return _CODES.get(canonical) if canonical is not None else None


def unit_for_code(code: str) -> str | None:
    """UN/CEFACT code → canonical UrbanDataset unit name, when we know one."""
    return _BY_CODE.get(code)


def property_unit_code(name: str, canonical: str | None) -> str | None:
    """The unitCode for a property: its unit's code, except that ENEA declares percentages
    ``dimensionless`` (``…Percentage``, and ``RelativeHumidity``, "espressa in percentuale")
    while their values are in percent."""
    if canonical == DIMENSIONLESS and (name.endswith("Percentage") or name == "RelativeHumidity"):
        return "P1"
    return unit_code(canonical)
