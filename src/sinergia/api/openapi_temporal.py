"""The temporal part of the OpenAPI description: ``/ngsi-ld/v1/temporal/...`` (query and
write the history of entities), its parameters (time relation, lastN, representation,
aggregation), the temporal representations (normalized, concise, temporalValues,
aggregatedValues) and the ``206 Partial Content`` paging of long histories.

Enumerations are read from :mod:`sinergia.ngsild.temporal` and
:mod:`sinergia.ngsild.aggregation`, which implement them."""

from __future__ import annotations

from typing import Any, Final

from sinergia.api.http import JSON, JSON_LD
from sinergia.api.openapi_builders import (
    BODY_ERRORS,
    COMMON,
    NGSI,
    NO_CONTENT,
    PAGING,
    TIME,
    URI,
    array,
    body,
    errors,
    example,
    header_ref,
    media,
    operation,
    options,
    path,
    query,
    ref,
    response,
)
from sinergia.api.openapi_schemas import ATTRIBUTE_KINDS, TRAFFIC_ID, entity_members
from sinergia.ngsild.aggregation import AGGR_METHODS
from sinergia.ngsild.model import CORE_CONTEXT_URL, NULL_URI
from sinergia.ngsild.temporal import (
    TEMPORAL_FORMATS,
    TEMPORAL_VALUES_MEMBER,
    TIME_PROPERTIES,
    TIMERELS,
)

TAG: Final = "Temporal"
BASE: Final = f"{NGSI}/temporal/entities"
INSTANCE_ID: Final = "urn:ngsi-ld:Instance:01a2083c-b9e2-72ce-8e63-700cf903bfdf"

TIME_FILTER: Final = ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN")
REPRESENTATION: Final = ("temporalOptions", "temporalFormat", "aggrMethods",
                         "aggrPeriodDuration", "lang")


# -- parameters and headers ----------------------------------------------------------------

def _parameters() -> dict[str, Any]:
    return {
        "timerel": query("timerel", "Time relation, on half-open intervals: `before` "
                         "(t < timeAt), `after` (t >= timeAt), `between` (timeAt <= t < "
                         "endTimeAt). Needs `timeAt`.", {"enum": list(TIMERELS)}, "between"),
        "timeAt": query("timeAt", "ISO 8601 date-time the relation refers to (UTC unless "
                        "it says otherwise).", {**TIME}, "2026-11-21T06:00:00Z"),
        "endTimeAt": query("endTimeAt", "End of a `between` interval (excluded); later "
                           "than `timeAt`, and only with `between`.", {**TIME},
                           "2026-11-21T10:00:00Z"),
        "timeproperty": query("timeproperty", "Which time of an instance the relation "
                              "tests and temporalValues show: `observedAt` (falling back to "
                              "the time the broker recorded it), `createdAt`, `modifiedAt` "
                              "or `deletedAt`.",
                              {"enum": list(TIME_PROPERTIES), "default": "observedAt"}),
        "lastN": query("lastN", "Only the last N instances of each attribute (in the time "
                       "interval, if one is given); more than the broker returns at once "
                       "come in pages, newest first.", {"type": "integer", "minimum": 1}, 24),
        "temporalOptions": options(["sysAttrs", *TEMPORAL_FORMATS], (
            "`sysAttrs` adds createdAt/modifiedAt; `concise`, `temporalValues` or "
            "`aggregatedValues` choose the representation (one at most).")),
        "temporalFormat": query("format", "Representation; wins over the one named in "
                                "`options`. `aggregatedValues` needs `aggrMethods`.",
                                {"enum": list(TEMPORAL_FORMATS), "default": "normalized"}),
        "aggrMethods": query("aggrMethods", "With `format=aggregatedValues`: the functions "
                             "computed per period. `sum`, `avg`, `min`, `max`, `stddev` "
                             "(sample) and `sumsq` use numeric values only; `totalCount` "
                             "and `distinctCount` count all.",
                             {"type": "array", "items": {"enum": list(AGGR_METHODS)}},
                             ["avg", "max"]),
        "aggrPeriodDuration": query(
            "aggrPeriodDuration", "With `format=aggregatedValues`: the length of each period "
            "as an ISO 8601 duration (`PT1H`, `P1D`, `P1M`, `P1W`). Periods start at "
            "`timeAt` (or the first value); `PT0S` is one period over the whole interval; "
            "empty periods are left out.", {"type": "string", "default": "PT0S"}, "PT2H"),
        "temporalEntityId": path("entityId", "The entity id (a URI).", TRAFFIC_ID),
        "temporalAttrId": path("attrId", "The attribute name, as the @context defines it.",
                               "intensity"),
        "instanceId": path("instanceId", "One instance of the attribute's history, as the "
                           "normalized representation names it.", INSTANCE_ID),
    }


def _headers() -> dict[str, Any]:
    return {
        "ContentRange": {
            "description": "The time range a partial answer (206) covers: `date-time "
                           "<start>-<end>/<lastN or *>`. `<end>` is where the next page "
                           "starts; with `lastN` the pages run backwards from the newest, "
                           "so `<start>` is the later time.",
            "schema": {"type": "string",
                       "pattern": "^date-time \\S+-\\S+/(\\*|[0-9]+)$"},
            "example": "date-time 2026-11-21T06:00:00.000Z-2026-11-21T08:00:00.000Z/*"},
        "TemporalLocation": {
            "description": "Where the new entity's history can be read.",
            "schema": {"type": "string"}, "example": f"{BASE}/{TRAFFIC_ID}"},
    }


# -- schemas -------------------------------------------------------------------------------

def _entity(attribute: dict[str, Any], description: str) -> dict[str, Any]:
    """An entity whose every attribute has the ``attribute`` shape."""
    return {"type": "object", "required": ["id", "type"], "properties": entity_members(),
            "description": description, "additionalProperties": attribute}


def _one_or_many(schema: dict[str, Any]) -> dict[str, Any]:
    """An attribute with instances of one datasetId (and kind) is an object; several make an
    array of such objects."""
    return {"oneOf": [schema, {"type": "array", "minItems": 1, "items": schema}]}


def _schemas() -> dict[str, Any]:
    kinds = list(ATTRIBUTE_KINDS)
    pair = {"type": "array", "prefixItems": [{"description": "The value."}, TIME],
            "minItems": 2, "maxItems": 2}
    bucket = {"type": "array", "minItems": 3, "maxItems": 3,
              "prefixItems": [{"description": "The result."},
                              {**TIME, "description": "Start of the period."},
                              {**TIME, "description": "End of the period (excluded)."}]}
    input_instances = _one_or_many(ref("TemporalInstanceInput"))
    return {
        "TemporalInstance": {
            "description": "One instance of an attribute's history: the attribute as it was, "
                           "with its `instanceId`, or a deletion marker.",
            "anyOf": [ref("EntityAttribute"), ref("DeletionMarker")]},
        "DeletionMarker": {
            "type": "object", "required": ["deletedAt"], "additionalProperties": False,
            "description": "Records that an attribute instance was deleted: its kind, the "
                           "NGSI-LD Null as value and `deletedAt`.",
            "properties": {
                "type": {"enum": kinds}, "deletedAt": TIME, "instanceId": URI,
                "datasetId": URI, "createdAt": TIME, "modifiedAt": TIME,
                **{member: {"description": f"`{NULL_URI}` (in the shape of the kind)."}
                   for member, _, _ in ATTRIBUTE_KINDS.values()}}},
        "TemporalEntity": _entity(
            {"type": "array", "minItems": 1, "items": ref("TemporalInstance")},
            "Normalized temporal representation: each attribute is an array of its "
            "instances, oldest first."),
        "TemporalEntityConcise": _entity(
            {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "Concise temporal representation (`format=concise`): the same instances with "
            "`type` left out where it can be inferred."),
        "TemporalValuesAttribute": {
            "type": "object", "required": ["type"], "additionalProperties": False,
            "description": "`format=temporalValues`: the kind and `[value, time]` pairs, "
                           "in the member that fits the kind (`values` for Properties and "
                           "GeoProperties, `objects` for Relationships, ...).",
            "properties": {"type": {"enum": kinds}, "datasetId": URI,
                           **{member: array(pair)
                              for member in dict.fromkeys(TEMPORAL_VALUES_MEMBER.values())}}},
        "TemporalEntityTemporalValues": _entity(
            _one_or_many(ref("TemporalValuesAttribute")),
            "Simplified temporal representation (`format=temporalValues`)."),
        "AggregatedAttribute": {
            "type": "object", "required": ["type"], "additionalProperties": False,
            "description": "`format=aggregatedValues`: for each method asked, "
                           "`[result, start, end]` per period that has values.",
            "properties": {"type": {"enum": kinds}, "datasetId": URI,
                           **{method: array(bucket) for method in AGGR_METHODS}}},
        "TemporalEntityAggregated": _entity(
            _one_or_many(ref("AggregatedAttribute")),
            "Aggregated temporal representation (`format=aggregatedValues`)."),
        "TemporalEntityRepresentation": {
            "description": "The history of an entity in the representation asked with "
                           "`format`/`options`.",
            "anyOf": [ref("TemporalEntity"), ref("TemporalEntityConcise"),
                      ref("TemporalEntityTemporalValues"), ref("TemporalEntityAggregated")]},
        "TemporalInstanceInput": {
            "type": "object", "required": ["observedAt"],
            "description": "One instance to record: an attribute (normalized, or concise "
                           "without `type`) with its `observedAt`. The NGSI-LD Null is "
                           "refused: deletions are recorded by the broker.",
            "anyOf": [ref("EntityAttribute"), {"not": {"required": ["type"]}}]},
        "TemporalEntityInput": _entity(
            input_instances, "An entity with the history of its attributes: each "
            "attribute one instance or an array of instances, in any order."),
        "TemporalAttributesInput": {
            "type": "object", "properties": {"@context": ref("LdContext")},
            "description": "Attribute instances to add, keyed by attribute name.",
            "additionalProperties": input_instances},
        "TemporalInstanceFragment": {
            "type": "object",
            "description": "The new content of one instance: `{\"<attribute>\": {...}}` or "
                           "the instance itself. `observedAt` may be left out (kept).",
            "additionalProperties": True},
        "TemporalQ": {
            "type": "object",
            "description": "The time part of a temporal query, as the URL parameters of the "
                           "same names.",
            "properties": {"timerel": {"enum": list(TIMERELS)}, "timeAt": TIME,
                           "endTimeAt": TIME,
                           "timeproperty": {"enum": list(TIME_PROPERTIES)},
                           "lastN": {"oneOf": [{"type": "integer", "minimum": 1},
                                               {"type": "string", "pattern": "^[0-9]+$"}]}}},
        "TemporalQuery": {
            "description": "A `Query` with the time part in `temporalQ`.",
            "allOf": [ref("Query"), {"properties": {"temporalQ": ref("TemporalQ")}}]},
    }


# -- examples ------------------------------------------------------------------------------

_HOURS: Final = ((6, 620), (7, 1180), (8, 1240), (9, 910))
_IDS: Final = tuple(f"urn:ngsi-ld:Instance:01a2083c-b9e2-72ce-8e63-700cf903bf{n:02x}"
                    for n in range(0xdf, 0xdf + 6))


def _at(hour: int, millis: bool = True) -> str:
    return f"2026-11-21T{hour:02d}:00:00{'.000' if millis else ''}Z"


def _history() -> dict[str, Any]:
    """What a traffic counter on Viale Monza recorded one morning (vehicles per hour)."""
    return {
        "id": TRAFFIC_ID, "type": "TrafficFlowObserved",
        "intensity": [{"type": "Property", "value": count, "unitCode": "E50",
                       "observedAt": _at(hour, millis=False)} for hour, count in _HOURS],
        "averageVehicleSpeed": {"type": "Property", "value": 31.5, "unitCode": "KMH",
                                "observedAt": _at(8, millis=False)},
    }


def _normalized(concise: bool = False, hours: int = 4) -> dict[str, Any]:
    head = {} if concise else {"type": "Property"}
    return {
        "id": TRAFFIC_ID, "type": "TrafficFlowObserved",
        "intensity": [{**head, "value": count, "unitCode": "E50", "observedAt": _at(hour),
                       "instanceId": _IDS[n]} for n, (hour, count) in enumerate(_HOURS[:hours])],
        "averageVehicleSpeed": [{**head, "value": 31.5, "unitCode": "KMH",
                                 "observedAt": _at(8), "instanceId": _IDS[4]}],
    }


def _examples() -> dict[str, Any]:
    first_page = _normalized(hours=2)
    del first_page["averageVehicleSpeed"]  # observed at 08:00, the start of the next page
    return {
        "TrafficHistory": example("A morning of a traffic counter on Viale Monza", _history()),
        "TrafficHistoryLd": example("The same as JSON-LD, @context in the body",
                                    {**_history(), "@context": [CORE_CONTEXT_URL]}),
        "EveningCounts": example("Two more hourly counts", {"intensity": [
            {"type": "Property", "value": 1320, "unitCode": "E50",
             "observedAt": "2026-11-21T17:00:00Z"},
            {"type": "Property", "value": 1410, "unitCode": "E50",
             "observedAt": "2026-11-21T18:00:00Z"}]}),
        "IntensityCorrection": example("Correct a count the sensor got wrong", {
            "intensity": {"type": "Property", "value": 640, "unitCode": "E50"}}),
        "TrafficHistoryNormalized": example("The history (normalized)", _normalized()),
        "TrafficHistoryConcise": example("The history in concise form", _normalized(True)),
        "TrafficHistoryTemporalValues": example("format=temporalValues", {
            "id": TRAFFIC_ID, "type": "TrafficFlowObserved",
            "intensity": {"type": "Property",
                          "values": [[count, _at(hour)] for hour, count in _HOURS]},
            "averageVehicleSpeed": {"type": "Property", "values": [[31.5, _at(8)]]}}),
        "TrafficHistoryAggregated": example(
            "format=aggregatedValues&aggrMethods=avg,max&aggrPeriodDuration=PT2H&"
            "timerel=between&timeAt=2026-11-21T06:00:00Z&endTimeAt=2026-11-21T10:00:00Z", {
                "id": TRAFFIC_ID, "type": "TrafficFlowObserved",
                "intensity": {"type": "Property",
                              "avg": [[900.0, _at(6), _at(8)], [1075.0, _at(8), _at(10)]],
                              "max": [[1180.0, _at(6), _at(8)], [1240.0, _at(8), _at(10)]]},
                "averageVehicleSpeed": {"type": "Property", "avg": [[31.5, _at(8), _at(10)]],
                                        "max": [[31.5, _at(8), _at(10)]]}}),
        "CounterRemoved": example(
            "After the intensity attribute was deleted: a deletion marker closes its "
            "history", {
                "id": TRAFFIC_ID, "type": "TrafficFlowObserved",
                "intensity": [
                    {"type": "Property", "value": 910, "unitCode": "E50",
                     "observedAt": _at(9), "instanceId": _IDS[3]},
                    {"type": "Property", "value": NULL_URI, "instanceId": _IDS[5],
                     "deletedAt": "2026-11-21T12:00:00.000Z"}]}),
        "TrafficHistories": example("Histories of the matching counters", [_normalized()]),
        "TrafficHistoriesLd": example("The same as JSON-LD",
                                      [{**_normalized(), "@context": CORE_CONTEXT_URL}]),
        "TrafficHistoriesFirstPage": example(
            "First page of a long history (Content-Range: date-time "
            "2026-11-21T06:00:00.000Z-2026-11-21T08:00:00.000Z/*)", [first_page]),
        "MorningRushQuery": example("Traffic counters' intensity during the morning rush", {
            "type": "Query", "entities": [{"type": "TrafficFlowObserved"}],
            "attrs": ["intensity"],
            "temporalQ": {"timerel": "between", "timeAt": "2026-11-21T06:00:00Z",
                          "endTimeAt": "2026-11-21T10:00:00Z"}}),
    }


def components() -> dict[str, dict[str, Any]]:
    return {"schemas": _schemas(), "examples": _examples(), "parameters": _parameters(),
            "headers": _headers()}


# -- paths ---------------------------------------------------------------------------------

def _histories(description: str, *, many: bool) -> dict[str, Any]:
    """The 200 (whole) and 206 (one page) answers of a temporal read."""
    schema = ref("TemporalEntityRepresentation")
    if many:
        whole = {JSON: media(array(schema), "TrafficHistories"),
                 JSON_LD: media(array(schema), "TrafficHistoriesLd")}
        page = {JSON: media(array(schema), "TrafficHistoriesFirstPage")}
        counted = {"NGSILD-Results-Count": header_ref("ResultsCount")}
    else:
        whole = {JSON: media(schema, "TrafficHistoryNormalized", "TrafficHistoryConcise",
                             "TrafficHistoryTemporalValues", "TrafficHistoryAggregated",
                             "CounterRemoved"),
                 JSON_LD: media(schema)}
        page = {JSON: media(schema), JSON_LD: media(schema)}
        counted = {}
    link = {"Link": header_ref("Link")}
    return {
        "200": response(description, whole, {**counted, **link}),
        "206": response(
            "One page of a history longer than the broker returns at once: every attribute "
            "is cut at the same instant, given by `Content-Range`; the `Link` header's "
            "`rel=\"next\"` URL asks for the next page. Pages neither lose nor repeat an "
            "instance. (Aggregated values are never paged.)", page,
            {**counted, "Content-Range": header_ref("ContentRange"), **link}),
    }


def _read_paths() -> dict[str, Any]:
    selection = ("id", "idPattern", "type", "attrs", "q", "scopeQ", "georel", "geometry",
                 "coordinates", "geoproperty")
    return {
        BASE: {"get": operation(
            "queryTemporalEntities", TAG, "Find histories",
            "The history of every entity that matches: how traffic, air quality or energy "
            "use changed over a day, a week, a year. Entities are chosen by id, id "
            "pattern and type among those with history, and by `q`, `scopeQ` and geo-query "
            "on their current state; at least one of these is required, and so is the time "
            "part (`timerel` with `timeAt`, or `lastN`). Choose `format=temporalValues` for "
            "compact series or `aggregatedValues` for hourly/daily averages, sums, counts.",
            params=(*COMMON, "Accept", *selection, *TIME_FILTER, *REPRESENTATION, *PAGING),
            responses={**_histories("The histories.", many=True),
                       **errors(400, 403, 404, 406, 503)})},
        f"{BASE}/{{entityId}}": {"get": operation(
            "retrieveTemporalEntity", TAG, "Read the history of an entity",
            "The history of one entity, every attribute or those in `attrs`, in the time "
            "interval asked (all of it without `timerel`). Deleted attributes show a "
            "deletion marker.",
            params=(*COMMON, "Accept", "temporalEntityId", "attrs", *TIME_FILTER,
                    *REPRESENTATION),
            responses={**_histories("The history.", many=False),
                       **errors(400, 404, 406, 503)})},
        f"{NGSI}/temporal/entityOperations/query": {"post": operation(
            "queryTemporalEntitiesPost", TAG, "Find histories (query in the body)",
            "The same search as GET /temporal/entities, written as a JSON `Query` document "
            "with the time part in `temporalQ`; for filters too long for a URL. `lastN` may "
            "also be given in the URL.",
            params=(*COMMON, "Accept", "lastN", *REPRESENTATION, *PAGING),
            body=body({JSON: media(ref("TemporalQuery"), "MorningRushQuery"),
                       JSON_LD: media(ref("TemporalQuery"))}, "The query."),
            responses={**_histories("The histories.", many=True),
                       **errors(*BODY_ERRORS, 403, 404, 406)})},
    }


def _write_paths() -> dict[str, Any]:
    one = f"{BASE}/{{entityId}}"
    instances = ref("TemporalAttributesInput")
    return {
        BASE: {"post": operation(
            "createTemporalEntity", TAG, "Record a history",
            "Records attribute instances with their `observedAt`, e.g. counts a traffic "
            "sensor kept while it was offline, or data migrated from an old system. Creates "
            "the entity when it does not exist; either way its current state takes the "
            "latest of the instances sent for each attribute.",
            params=COMMON,
            body=body({JSON: media(ref("TemporalEntityInput"), "TrafficHistory"),
                       JSON_LD: media(ref("TemporalEntityInput"), "TrafficHistoryLd")},
                      "The entity with the history of its attributes."),
            responses={
                "201": response("The entity was new; it is created.",
                                headers={"Location": header_ref("TemporalLocation")}),
                "204": response("The entity existed; the instances were added."),
                **errors(*BODY_ERRORS)})},
        one: {"delete": operation(
            "deleteTemporalEntity", TAG, "Delete a history",
            "Deletes the whole history of an entity (its current state, if any, stays).",
            params=("Tenant", "temporalEntityId"),
            responses={**NO_CONTENT, **errors(400, 404)})},
        f"{one}/attrs": {"post": operation(
            "addTemporalAttrs", TAG, "Add to the history of attributes",
            "Adds instances to the history of an existing entity, e.g. a batch of counts "
            "uploaded late.",
            params=(*COMMON, "temporalEntityId"),
            body=body({JSON: media(instances, "EveningCounts"), JSON_LD: media(instances)},
                      "Instances keyed by attribute name."),
            responses={**NO_CONTENT, **errors(*BODY_ERRORS, 404)})},
        f"{one}/attrs/{{attrId}}": {"delete": operation(
            "deleteTemporalAttr", TAG, "Delete the history of an attribute",
            "Deletes every recorded instance of one attribute of an entity.",
            params=(*COMMON, "temporalEntityId", "temporalAttrId"),
            responses={**NO_CONTENT, **errors(400, 404, 503)})},
        f"{one}/attrs/{{attrId}}/{{instanceId}}": {
            "patch": operation(
                "modifyTemporalInstance", TAG, "Correct one instance",
                "Replaces one recorded instance, e.g. a count the sensor got wrong; its "
                "`observedAt` is kept unless a new one is sent. A recorded deletion cannot "
                "be changed.",
                params=(*COMMON, "temporalEntityId", "temporalAttrId", "instanceId"),
                body=body({JSON: media(ref("TemporalInstanceFragment"),
                                       "IntensityCorrection"),
                           JSON_LD: media(ref("TemporalInstanceFragment"))},
                          "The new instance."),
                responses={**NO_CONTENT, **errors(*BODY_ERRORS, 404)}),
            "delete": operation(
                "deleteTemporalInstance", TAG, "Delete one instance",
                "Deletes one recorded instance, e.g. a reading known to be wrong.",
                params=(*COMMON, "temporalEntityId", "temporalAttrId", "instanceId"),
                responses={**NO_CONTENT, **errors(400, 404, 503)}),
        },
    }


def paths() -> dict[str, Any]:
    read, write = _read_paths(), _write_paths()
    # The resource paths in URL order, then the query operation.
    order = sorted({**read, **write}, key=lambda p: ("/entityOperations/" in p, p))
    return {p: {**read.get(p, {}), **write.get(p, {})} for p in order}
