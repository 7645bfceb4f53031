"""The demo city's real geography: Comune di Milano open data as NGSI-LD entities.

The package ships ``data/milano/milano.json``, derived from the Comune di Milano open-data
portal (CC-BY 4.0, downloaded 2020) by ``scripts/build_milano_data.py``: WGS84 coordinates,
simplified shapes, and the municipio / neighbourhood of every feature already computed against
the shipped polygons (so the relationships below agree with geo-queries on the broker).
``city_entities()`` turns it into entities in normalized form, with short attribute names and
no ``@context`` member, as a client POSTs them with a Link header naming ``MILANO_CONTEXT``.

Mapping (Smart Data Models types and attributes wherever one fits; ``*`` = not defined by
Smart Data Models, so it expands with the NGSI-LD default vocabulary). Ids are
``urn:ngsi-ld:<Type>:MI-<source id>``:

===============================  ==========================  ===================================
Source (dataset, features)       Type (id suffix)            Attributes
===============================  ==========================  ===================================
Municipi (ds379, 9)              CityDistrict* (MI-<n>)      name, surfaceArea* (m², MTK)
NIL neighbourhoods (ds964, 88)   Neighbourhood* (MI-<id>)    name, refMunicipio* → CityDistrict,
                                                             surfaceArea*
BikeMi stations (ds65, 280)      BikeHireDockingStation      name, stationCode, address,
                                                             totalSlotNumber, status
Public car parks (ds342, 53)     OffStreetParking            name, address, totalSpotNumber,
                                                             allowedVehicleType, description
ARPA stations (ds699, 32 sensor  Device (MI-ARPA-<id>)       name, description, deviceCategory,
rows → 9 stations)                                           controlledProperty, dateFirstUsed,
                                                             deviceState, dateLastValueReported,
                                                             elevation* (MTR), sensors*
Area C gates (ds82, 42)          Device (MI-AreaC-<id>)      name, description, deviceCategory,
                                                             controlledProperty = [trafficFlow],
                                                             refRestrictedTrafficArea → Area C
Metro stops (ds535, 110)         PublicTransportStop         name, stopCode, lines* (["M1"]),
                                                             transportationType ([1] = subway)
Bike lanes (ds60, 2,334)         BikeLane                    name, address, description,
                                                             laneLength (MTR)
Pedestrian areas, ZTL, reserved  RestrictedTrafficArea       name, areaType*, category,
lanes, Area B, Area C (ds51,                                 notAllowedVehicleType, description,
180)                                                         regulation, validityStartDate,
                                                             validityEndDate
===============================  ==========================  ===================================

Every entity has ``location`` (GeoProperty), ``dataProvider`` (``DATA_PROVIDER``) and
``source`` (the dataset's page on dati.comune.milano.it). Point and line features inside the
Comune carry ``refNeighbourhood*`` → Neighbourhood, and ``address.district`` ("Municipio 3")
where they have an address. ``scope`` is ``/Milano/Municipio<n>`` for whatever
lies in a municipio (restricted areas spanning several get one scope per municipio they
substantially cover). What lies outside the Comune has no scope and no refNeighbourhood: 20
metro stops (Sesto, Assago, the M2 branches…) and 3 bike lanes running on into the next town;
one more lane sits in a sub-metre gap between the simplified NIL and municipio outlines, so it
has a scope but no refNeighbourhood.

``MILANO_CONTEXT`` maps the short names to the Smart Data Models IRIs (checked against the
domains' context.jsonld files). Some names have different IRIs in different SDM domains and one
flat context must choose: ``category``, ``totalSlotNumber`` and ``regulation`` follow
Transportation (only RestrictedTrafficArea and BikeHireDockingStation use them here),
``allowedVehicleType`` follows Parking and ``dateFirstUsed`` follows Device. Car parks
therefore carry their kind in ``description`` rather than a Parking ``category``. Names the
core context defines (``location``, ``status``, ``description``, ``scope``) are left to it.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson

DATA_PROVIDER = "Comune di Milano \N{EN DASH} Open Data (CC-BY 4.0)"
CITY_SCOPE = "/Milano"
URN_PREFIX = "urn:ngsi-ld:"

_SDM = "https://smartdatamodels.org/"
_TRANSPORTATION = _SDM + "dataModel.Transportation/"
_PARKING = _SDM + "dataModel.Parking/"
_URBAN_MOBILITY = _SDM + "dataModel.UrbanMobility/"
_DEVICE = _SDM + "dataModel.Device/"

# Copied from the Smart Data Models context.jsonld files of each domain (Transportation,
# Parking, UrbanMobility, Device and the common terms they all share).
MILANO_CONTEXT: dict[str, Any] = {
    # entity types
    "BikeHireDockingStation": _TRANSPORTATION + "BikeHireDockingStation",
    "BikeLane": _TRANSPORTATION + "BikeLane",
    "RestrictedTrafficArea": _TRANSPORTATION + "RestrictedTrafficArea",
    "OffStreetParking": _PARKING + "OffStreetParking",
    "PublicTransportStop": _URBAN_MOBILITY + "PublicTransportStop",
    "Device": _DEVICE + "Device",
    # common (GSMA / Location commons)
    "name": _SDM + "name",
    "address": _SDM + "address",
    "streetAddress": _SDM + "streetAddress",
    "addressLocality": _SDM + "addressLocality",
    "addressCountry": _SDM + "addressCountry",
    "district": _SDM + "district",
    "dataProvider": _SDM + "dataProvider",
    "source": _SDM + "source",
    # Transportation
    "stationCode": _TRANSPORTATION + "stationCode",
    "totalSlotNumber": _TRANSPORTATION + "totalSlotNumber",
    "laneLength": _TRANSPORTATION + "laneLength",
    "category": _TRANSPORTATION + "category",
    "notAllowedVehicleType": _TRANSPORTATION + "notAllowedVehicleType",
    "regulation": _TRANSPORTATION + "regulation",
    "validityStartDate": _TRANSPORTATION + "validityStartDate",
    "validityEndDate": _TRANSPORTATION + "validityEndDate",
    "refRestrictedTrafficArea": _TRANSPORTATION + "refRestrictedTrafficArea",
    # Parking
    "totalSpotNumber": _PARKING + "totalSpotNumber",
    "allowedVehicleType": _PARKING + "allowedVehicleType",
    # UrbanMobility
    "stopCode": _URBAN_MOBILITY + "stopCode",
    "transportationType": _URBAN_MOBILITY + "transportationType",
    # Device
    "deviceCategory": _DEVICE + "deviceCategory",
    "controlledProperty": _DEVICE + "controlledProperty",
    "dateFirstUsed": _DEVICE + "dateFirstUsed",
    "dateLastValueReported": _DEVICE + "dateLastValueReported",
    "deviceState": _DEVICE + "deviceState",
}

# The document to host (e.g. POST /jsonldContexts) so a Link header can name MILANO_CONTEXT.
MILANO_CONTEXT_DOCUMENT: dict[str, Any] = {"@context": MILANO_CONTEXT}

SUBWAY = 1  # GTFS route_type, as PublicTransportStop.transportationType wants

_PARKING_KINDS = {
    "PUBBLICI": "Public car park",
    "PUBBLICI/RESIDENTI": "Car park for the public and for residents",
    "RESIDENTI/PUBBLICI": "Car park for residents and for the public",
    "AUTORIMESSA CONVENZIONATA": "Private garage under agreement with the Comune",
}

# ds51 "tipo" → (areaType, SDM category, notAllowedVehicleType, Italian label). Area B and
# Area C are not closed to traffic (a low-emission zone and a congestion charge), so they get
# no closure category rather than a wrong one.
_AREA_KINDS: dict[str, tuple[str, list[str] | None, list[str] | None, str]] = {
    "AP": ("pedestrianArea", ["onlyPedestrian"], ["anyVehicle"], "Area pedonale"),
    "ZTL": ("limitedTrafficZone", ["onlyWithPermit"], ["anyVehicle"],
            "Zona a traffico limitato"),
    "CR": ("reservedLane", ["onlyWithPermit"], ["anyVehicle"], "Corsia riservata"),
    "AREA_C": ("congestionCharge", None, None, "Area C (congestion charge)"),
    "AREA_B": ("lowEmissionZone", None, None, "Area B (low emission zone)"),
}


def load_data() -> dict[str, Any]:
    """The packaged compact data, parsed afresh (callers may change what they get)."""
    raw = files("sinergia").joinpath("data/milano/milano.json").read_bytes()
    data: dict[str, Any] = orjson.loads(raw)
    return data


def entity_id(entity_type: str, source_id: object) -> str:
    return f"{URN_PREFIX}{entity_type}:MI-{source_id}"


def municipio_scope(municipio: int) -> str:
    return f"{CITY_SCOPE}/Municipio{municipio}"


def city_entities() -> list[dict[str, Any]]:
    """Milan's geography as NGSI-LD entities (normalized, short names, no @context), areas
    first so relationship targets precede their sources. Deterministic: same list every call."""
    data = load_data()
    sources = {key: meta["url"] for key, meta in data["about"]["datasets"].items()}
    builder = _Builder(sources)
    area_c = next((a["id"] for a in data["restricted_areas"] if a["kind"] == "AREA_C"), None)
    lane_classes: list[dict[str, Any]] = data["bike_lane_classes"]
    entities: list[dict[str, Any]] = []
    entities += [builder.municipio(r) for r in data["municipi"]]
    entities += [builder.neighbourhood(r) for r in data["neighbourhoods"]]
    entities += [builder.restricted_area(r) for r in data["restricted_areas"]]
    entities += [builder.bike_station(r) for r in data["bike_stations"]]
    entities += [builder.car_park(r) for r in data["car_parks"]]
    entities += [builder.metro_stop(r) for r in data["metro_stops"]]
    entities += [builder.weather_station(r) for r in data["weather_stations"]]
    entities += [builder.gate(r, area_c) for r in data["areac_gates"]]
    entities += [builder.bike_lane(r, lane_classes[r["class"]]) for r in data["bike_lanes"]]
    return entities


# --- attribute helpers -----------------------------------------------------------------------

def prop(value: Any, *, unit_code: str | None = None) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Property", "value": value}
    if unit_code is not None:
        attribute["unitCode"] = unit_code
    return attribute


def rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def geo(geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": geometry}


def date_time(instant: str) -> dict[str, Any]:
    """A DateTime-typed Property value, as the Smart Data Models normalized examples write it."""
    return prop({"@type": "DateTime", "@value": instant})


class _Builder:
    def __init__(self, sources: dict[str, str]) -> None:
        self._sources = sources

    def _entity(self, entity_type: str, source_id: object, dataset: str,
                record: dict[str, Any], **attrs: dict[str, Any] | None) -> dict[str, Any]:
        """Common members in a fixed order; attributes given as None are left out."""
        entity: dict[str, Any] = {"id": entity_id(entity_type, source_id), "type": entity_type}
        scope = self._scope(record)
        if scope is not None:
            entity["scope"] = scope
        entity.update({name: value for name, value in attrs.items() if value is not None})
        nil = record.get("nil")
        if nil is not None:
            entity["refNeighbourhood"] = rel(entity_id("Neighbourhood", nil))
        entity["location"] = geo(record["geometry"])
        entity["dataProvider"] = prop(DATA_PROVIDER)
        entity["source"] = prop(self._sources[dataset])
        return entity

    @staticmethod
    def _scope(record: dict[str, Any]) -> str | list[str] | None:
        if "municipi" in record:
            scopes = [municipio_scope(m) for m in record["municipi"]]
            if not scopes:
                return None
            return scopes[0] if len(scopes) == 1 else scopes
        municipio = record.get("municipio")
        return municipio_scope(municipio) if municipio is not None else None

    @staticmethod
    def _address(street: str | None, record: dict[str, Any],
                 locality: str | None = None) -> dict[str, Any] | None:
        if not street:
            return None
        address: dict[str, Any] = {
            "type": "PostalAddress",
            "streetAddress": street,
            "addressLocality": locality or "Milano",
            "addressCountry": "IT",
        }
        if record.get("municipio") is not None:
            address["district"] = f"Municipio {record['municipio']}"
        return prop(address)

    # --- one method per source ---------------------------------------------------------------

    def municipio(self, r: dict[str, Any]) -> dict[str, Any]:
        record = {**r, "municipio": r["id"]}
        return self._entity(
            "CityDistrict", r["id"], "municipi", record,
            name=prop(f"Municipio {r['id']}"),
            surfaceArea=prop(r["area"], unit_code="MTK"),
        )

    def neighbourhood(self, r: dict[str, Any]) -> dict[str, Any]:
        return self._entity(
            "Neighbourhood", r["id"], "neighbourhoods", r,
            name=prop(r["name"]),
            refMunicipio=rel(entity_id("CityDistrict", r["municipio"])),
            surfaceArea=prop(r["area"], unit_code="MTK"),
        )

    def bike_station(self, r: dict[str, Any]) -> dict[str, Any]:
        return self._entity(
            "BikeHireDockingStation", r["id"], "bike_stations", r,
            name=prop(r["name"]),
            stationCode=prop(r["code"]),
            address=self._address(r["address"], r),
            totalSlotNumber=prop(r["slots"]),
            status=prop("working"),
        )

    def car_park(self, r: dict[str, Any]) -> dict[str, Any]:
        kind = r["kind"]
        description = f"{_PARKING_KINDS.get(kind, 'Car park')} ({kind})" if kind else None
        return self._entity(
            "OffStreetParking", r["id"], "car_parks", r,
            name=prop(r["name"]),
            address=self._address(r["address"], r, r["locality"]),
            totalSpotNumber=prop(r["spots"]),
            allowedVehicleType=prop(["car"]),
            description=prop(description) if description else None,
        )

    def metro_stop(self, r: dict[str, Any]) -> dict[str, Any]:
        return self._entity(
            "PublicTransportStop", r["id"], "metro_stops", r,
            name=prop(r["name"]),
            stopCode=prop(str(r["id"])),
            transportationType=prop([SUBWAY]),
            lines=prop(r["lines"]),
        )

    def weather_station(self, r: dict[str, Any]) -> dict[str, Any]:
        quantities: list[str] = []
        for sensor in r["sensors"]:
            if sensor["quantity"] not in quantities:
                quantities.append(sensor["quantity"])
        sensors = [
            {key: value for key, value in (
                ("sensorId", s["id"]), ("controlledProperty", s["quantity"]),
                ("unit", s["unit"]), ("since", s["since"]), ("until", s["until"]),
            ) if value is not None}
            for s in r["sensors"]
        ]
        retired = r["last_value"] is not None
        return self._entity(
            "Device", f"ARPA-{r['id']}", "weather_stations", r,
            name=prop(r["name"]),
            description=prop(f"ARPA Lombardia monitoring station {r['id']}"),
            deviceCategory=prop(["sensor"]),
            controlledProperty=prop(quantities),
            dateFirstUsed=date_time(r["first_used"]),
            deviceState=prop("decommissioned" if retired else "ok"),
            dateLastValueReported=date_time(r["last_value"]) if retired else None,
            elevation=prop(r["elevation"], unit_code="MTR"),
            sensors=prop(sensors),
        )

    def gate(self, r: dict[str, Any], area_c: int | None) -> dict[str, Any]:
        return self._entity(
            "Device", f"AreaC-{r['id']}", "areac_gates", r,
            name=prop(r["name"]),
            description=prop("Area C electronic entry gate (varco): a number-plate camera"),
            deviceCategory=prop(["sensor"]),
            controlledProperty=prop(["trafficFlow"]),
            refRestrictedTrafficArea=(
                rel(entity_id("RestrictedTrafficArea", area_c)) if area_c is not None else None
            ),
        )

    def bike_lane(self, r: dict[str, Any], lane_class: dict[str, Any]) -> dict[str, Any]:
        parts = [lane_class[k] for k in ("kind", "seat", "direction") if lane_class.get(k)]
        return self._entity(
            "BikeLane", r["id"], "bike_lanes", r,
            name=prop(r["street"]) if r["street"] else None,
            address=self._address(r["street"], r),
            description=prop("; ".join(parts)) if parts else None,
            laneLength=prop(r["length"], unit_code="MTR") if r["length"] else None,
        )

    def restricted_area(self, r: dict[str, Any]) -> dict[str, Any]:
        area_type, category, not_allowed, label = _AREA_KINDS.get(
            r["kind"], ("restrictedArea", None, None, r["kind"])
        )
        details = [label]
        for title, key in (("Tratto", "stretch"), ("Deroghe", "exemptions"), ("Note", "notes")):
            if r.get(key):
                details.append(f"{title}: {r[key]}")
        regulation = "; ".join(
            f"{title} {r[key]}"
            for title, key in (("Ordinanza", "order"), ("Delibera", "deliberation"))
            if r.get(key)
        )
        return self._entity(
            "RestrictedTrafficArea", r["id"], "restricted_areas", r,
            name=prop(r["name"] or r["stretch"] or f"{label} {r['id']}"),
            areaType=prop(area_type),
            category=prop(category) if category else None,
            notAllowedVehicleType=prop(not_allowed) if not_allowed else None,
            description=prop(". ".join(details)),
            regulation=prop(regulation) if regulation else None,
            validityStartDate=date_time(r["valid_from"]) if r["valid_from"] else None,
            validityEndDate=date_time(r["valid_to"]) if r["valid_to"] else None,
        )
