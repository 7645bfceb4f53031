"""GBFS documents (2.x and 3.0) → BikeHireDockingStation entities (FIWARE Smart Data Models).

Pure functions over already-fetched JSON; fetching lives in :mod:`.source`, timing in
:mod:`.poller`. What differs between the versions is absorbed here:

===========================  ============================  ==================================
                             GBFS 2.x                      GBFS 3.0
===========================  ============================  ==================================
discovery feeds              ``data.<language>.feeds``     ``data.feeds``
``last_updated``             POSIX seconds                 RFC 3339 date-time
station ``name``             a string                      localized ``[{text, language}]``
bikes available              ``num_bikes_available``       ``num_vehicles_available``
===========================  ============================  ==================================

Mapping (Smart Data Models BikeHireDockingStation; ``*`` = not in the model, default vocab):

* ``name`` ← name, ``stationCode`` ← short_name (else station_id), ``location`` ← lon/lat,
  ``address`` ← address, post_code, city; ``totalSlotNumber`` ← capacity;
  ``dataProvider`` ← system_information operator/name; ``source`` ← the feed's URL;
* ``availableBikeNumber`` ← bikes (vehicles) available, with ``byVehicleType*`` (type id →
  count) when the feed gives vehicle_types_available; ``freeSlotNumber`` ←
  num_docks_available; ``outOfServiceSlotNumber`` ← num_docks_disabled; ``status`` ←
  is_installed / is_renting / is_returning and the counts (see :func:`station_status`).
  All of these carry ``observedAt`` = the station's ``last_reported``, so every change is an
  instant of the entity's history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

ENTITY_TYPE: Final = "BikeHireDockingStation"
_SDM: Final = "https://smartdatamodels.org/"
_TRANSPORTATION: Final = _SDM + "dataModel.Transportation/"

# The terms these entities use, with their Smart Data Models IRIs (Transportation domain and
# the common GSMA/Location terms), inline so that no @context has to be fetched. ``status``
# and ``location`` are the NGSI-LD core terms, as in the model's own context.
GBFS_CONTEXT: Final[dict[str, str]] = {
    ENTITY_TYPE: _TRANSPORTATION + ENTITY_TYPE,
    "availableBikeNumber": _TRANSPORTATION + "availableBikeNumber",
    "freeSlotNumber": _TRANSPORTATION + "freeSlotNumber",
    "outOfServiceSlotNumber": _TRANSPORTATION + "outOfServiceSlotNumber",
    "totalSlotNumber": _TRANSPORTATION + "totalSlotNumber",
    "stationCode": _TRANSPORTATION + "stationCode",
    "name": _SDM + "name",
    "address": _SDM + "address",
    "streetAddress": _SDM + "streetAddress",
    "postalCode": _SDM + "postalCode",
    "addressLocality": _SDM + "addressLocality",
    "dataProvider": _SDM + "dataProvider",
    "source": _SDM + "source",
}

# The value of ``status`` for a station that left the feed, and the sub-property saying so.
REMOVED_STATUS: Final = "outOfService"
REMOVED_REASON: Final = "removedFromFeed"


class GbfsError(ValueError):
    """A feed is missing, unreachable or not GBFS."""


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """One fetched GBFS file with its header."""

    name: str
    data: dict[str, Any]
    last_updated: str       # UTC, NGSI-LD form
    ttl: int
    version: str | None


def ngsi_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any, where: str) -> str:
    """A GBFS timestamp — POSIX seconds (2.x) or RFC 3339 (3.0) — as an NGSI-LD UTC time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return ngsi_time(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError):
            raise GbfsError(f"{where}: {value!r} is not a valid timestamp") from None
    if isinstance(value, str):
        try:
            return ngsi_time(datetime.fromisoformat(value))
        except ValueError:
            raise GbfsError(f"{where}: {value!r} is not an RFC 3339 date-time") from None
    raise GbfsError(f"{where}: missing or invalid timestamp {value!r}")


def read_document(name: str, document: Any) -> FeedDocument:
    """Check a GBFS file's header (``last_updated``, ``ttl``, ``data``)."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise GbfsError(f"{name}: not a GBFS document (no 'data' object)")
    ttl = document.get("ttl", 0)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
        raise GbfsError(f"{name}: 'ttl' must be a non-negative integer, not {ttl!r}")
    version = document.get("version")
    return FeedDocument(name, document["data"], parse_time(document.get("last_updated"), name),
                        ttl, str(version) if version is not None else None)


def discovery_feeds(doc: FeedDocument, language: str | None = None) -> dict[str, str]:
    """Feed name → URL from ``gbfs.json``: 3.0 lists ``data.feeds``; 2.x lists them per
    language (``data.en.feeds``), of which ``language`` is chosen, else English, else the
    first."""
    data = doc.data
    if isinstance(data.get("feeds"), list):
        feeds = data["feeds"]
    else:
        languages = [k for k, v in data.items() if isinstance(v, dict) and "feeds" in v]
        if not languages:
            raise GbfsError("gbfs.json lists no feeds")
        chosen = next((lang for lang in (language, "en") if lang in languages), languages[0])
        feeds = data[chosen]["feeds"]
    result: dict[str, str] = {}
    for feed in feeds if isinstance(feeds, list) else []:
        if isinstance(feed, dict) and isinstance(feed.get("name"), str) \
                and isinstance(feed.get("url"), str):
            result[feed["name"]] = feed["url"]
    return result


def localized(value: Any, language: str | None) -> str | None:
    """A GBFS text: a plain string (2.x) or localized strings ``[{text, language}]`` (3.0),
    in ``language`` when present, else the first."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [v for v in value if isinstance(v, dict) and isinstance(v.get("text"), str)]
        for item in texts:
            if language and item.get("language") == language:
                return str(item["text"])
        return str(texts[0]["text"]) if texts else None
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def _prop(value: Any, observed_at: str | None = None) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": "Property", "value": value}
    if observed_at is not None:
        prop["observedAt"] = observed_at
    return prop


@dataclass(frozen=True, slots=True)
class SystemInfo:
    system_id: str
    provider: str | None = None


def system_info(doc: FeedDocument | None, fallback_id: str, language: str | None
                ) -> SystemInfo:
    if doc is None:
        return SystemInfo(fallback_id)
    data = doc.data
    system_id = data.get("system_id") if isinstance(data.get("system_id"), str) else None
    provider = localized(data.get("operator"), language) or localized(data.get("name"),
                                                                      language)
    return SystemInfo(system_id or fallback_id, provider)


def station_id_of(station: Mapping[str, Any]) -> str | None:
    raw = station.get("station_id")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return raw if isinstance(raw, str) and raw else None


def entity_id(prefix: str, station_id: str) -> str:
    return prefix + quote(station_id, safe="-._~:@!$&*+,;=")


def information_attributes(station: Mapping[str, Any], *, language: str | None,
                           provider: str | None, source: str | None) -> dict[str, Any]:
    """The static attributes of one station_information entry."""
    attrs: dict[str, Any] = {}
    name = localized(station.get("name"), language)
    if name:
        attrs["name"] = _prop(name)
    code = localized(station.get("short_name"), language) or station_id_of(station)
    if code:
        attrs["stationCode"] = _prop(code)
    lat, lon = station.get("lat"), station.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float) \
            and not isinstance(lat, bool) and not isinstance(lon, bool):
        attrs["location"] = {"type": "GeoProperty",
                             "value": {"type": "Point", "coordinates": [lon, lat]}}
    address = {key: text for key, text in (
        ("streetAddress", localized(station.get("address"), language)),
        ("postalCode", localized(station.get("post_code"), language)),
        ("addressLocality", localized(station.get("city"), language))) if text}
    if address:
        attrs["address"] = _prop(address)
    capacity = _count(station.get("capacity"))
    if capacity is not None:
        attrs["totalSlotNumber"] = _prop(capacity)
    if provider:
        attrs["dataProvider"] = _prop(provider)
    if source:
        attrs["source"] = _prop(source)
    return attrs


def station_status(status: Mapping[str, Any], bikes: int | None, docks: int | None) -> str:
    """The Smart Data Models status of a station: ``outOfService`` when not installed or
    neither renting nor returning; ``withIncidence`` when only one of the two works; then
    ``empty`` (no bikes), ``full`` (no free docks) or ``working``."""
    installed = status.get("is_installed", True) is not False
    renting = status.get("is_renting", True) is not False
    returning = status.get("is_returning", True) is not False
    if not installed or (not renting and not returning):
        return "outOfService"
    if not renting or not returning:
        return "withIncidence"
    if bikes == 0:
        return "empty"
    if docks == 0:
        return "full"
    return "working"


def _vehicle_counts(status: Mapping[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in status.get("vehicle_types_available") or []:
        if isinstance(item, dict) and isinstance(item.get("vehicle_type_id"), str):
            count = _count(item.get("count"))
            if count is not None:
                counts[item["vehicle_type_id"]] = count
    return counts


def status_attributes(status: Mapping[str, Any], fallback_time: str) -> dict[str, Any]:
    """The live attributes of one station_status entry, observed at its ``last_reported``."""
    reported = status.get("last_reported")
    when = parse_time(reported, "last_reported") if reported is not None else fallback_time
    by_type = _vehicle_counts(status)
    bikes = _count(status.get("num_vehicles_available"))
    if bikes is None:
        bikes = _count(status.get("num_bikes_available"))
    if bikes is None and by_type:
        bikes = sum(by_type.values())
    docks = _count(status.get("num_docks_available"))
    attrs: dict[str, Any] = {}
    if bikes is not None:
        attrs["availableBikeNumber"] = _prop(bikes, when)
        if by_type:
            attrs["availableBikeNumber"]["byVehicleType"] = _prop(by_type)
    if docks is not None:
        attrs["freeSlotNumber"] = _prop(docks, when)
    disabled = _count(status.get("num_docks_disabled"))
    if disabled is not None:
        attrs["outOfServiceSlotNumber"] = _prop(disabled, when)
    attrs["status"] = _prop(station_status(status, bikes, docks), when)
    return attrs


def removed_attributes(when: str) -> dict[str, Any]:
    """What marks a station that left the feed: ``status`` outOfService with a ``reason``
    sub-property. The entity and its history stay; a station that comes back gets its status
    (without the reason) again."""
    status = _prop(REMOVED_STATUS, when)
    status["reason"] = _prop(REMOVED_REASON)
    return {"status": status}


def stations_of(doc: FeedDocument) -> dict[str, Mapping[str, Any]]:
    """The ``data.stations`` of station_information / station_status, by station id
    (entries without an id are skipped)."""
    stations = doc.data.get("stations")
    if not isinstance(stations, list):
        raise GbfsError(f"{doc.name}: no 'data.stations' array")
    result: dict[str, Mapping[str, Any]] = {}
    for station in stations:
        if isinstance(station, dict):
            sid = station_id_of(station)
            if sid is not None:
                result[sid] = station
    return result


def make_entity(entity_id_: str, *parts: Mapping[str, Any]) -> dict[str, Any]:
    entity: dict[str, Any] = {"id": entity_id_, "type": ENTITY_TYPE}
    for part in parts:
        entity.update(part)
    return entity


def station_entities(information: FeedDocument, status: FeedDocument | None, *,
                     id_prefix: str, language: str | None = None,
                     provider: str | None = None, source: str | None = None
                     ) -> list[dict[str, Any]]:
    """Every station of a snapshot as one full entity (information plus live status)."""
    statuses = stations_of(status) if status is not None else {}
    fallback = status.last_updated if status is not None else information.last_updated
    return [
        make_entity(entity_id(id_prefix, sid),
                    information_attributes(station, language=language, provider=provider,
                                           source=source),
                    status_attributes(statuses[sid], fallback) if sid in statuses else {})
        for sid, station in stations_of(information).items()
    ]


def station_ids(docs: Iterable[FeedDocument]) -> set[str]:
    ids: set[str] = set()
    for doc in docs:
        ids.update(stations_of(doc))
    return ids
