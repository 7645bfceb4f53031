"""The OpenAPI 3.1 description of Sinergia's HTTP API, served at ``/openapi.json`` and shown
by the interactive docs at ``/docs``.

The document is assembled with the helpers of :mod:`sinergia.api.openapi_builders`, which point
at reusable components (parameters, responses, headers, schemas, examples), so each operation
reads as a short list of what it takes and what it answers. This module describes the entity,
attribute, batch, discovery, context and service endpoints (their shapes and examples are in
:mod:`sinergia.api.openapi_schemas`); subscriptions and the temporal API are described in
:mod:`sinergia.api.openapi_subscriptions` and :mod:`sinergia.api.openapi_temporal`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from sinergia.api import (
    openapi_dashboard,
    openapi_devices,
    openapi_scps,
    openapi_subscriptions,
    openapi_temporal,
)
from sinergia.api.http import GEO_JSON, JSON, JSON_LD, MERGE_PATCH
from sinergia.api.openapi_builders import (
    BODY_ERRORS,
    COMMON,
    ERRORS,
    NGSI,
    NO_CONTENT,
    PAGING,
    STRINGS,
    array,
    body,
    errors,
    flag,
    header_ref,
    media,
    operation,
    options,
    path,
    query,
    ref,
    response,
)
from sinergia.api.openapi_schemas import (
    LINK_EXAMPLE,
    STREETLIGHT_ID,
    examples,
    problem_example,
    schemas,
)

TAGS: Final[dict[str, str]] = {
    "Entities": "Create, read, change and delete the things of the city: streetlights, "
                "traffic counters, waste bins, sensors.",
    "Attributes": "Change single attributes of an entity without resending the whole of it.",
    "Batch": "Many entities in one request; each succeeds or fails on its own.",
    "Discovery": "What kinds of entities and attributes the platform holds.",
    "Contexts": "JSON-LD @contexts: the vocabularies that give attribute names their meaning.",
    "Subscriptions": "Be told when something changes: the broker notifies an HTTP or MQTT "
                     "endpoint, e.g. maintenance when a lamp goes dark.",
    "Temporal": "The history of entities: what was measured when, as series or as "
                "hourly/daily aggregates, and corrections to it.",
    "Service": "Version, this description and the interactive documentation.",
    "UrbanDataset": "ENEA's SCPS UrbanDatasetGateway: city solutions push UrbanDataset "
                    "documents and request them back; errors are codes in the body.",
    "Devices": "Devices that publish measurements over MQTT: how each is read, and what "
               "the ingester has done.",
    "Dashboard": "The dashboard's pages (HTML) and its live event stream.",
}
# The API families described in modules of their own (each gives paths() and components()).
AREAS: Final = (openapi_subscriptions, openapi_temporal, openapi_scps, openapi_devices,
                 openapi_dashboard)


# -- components: parameters, headers, error responses ---------------------------------------

def _parameters() -> dict[str, Any]:
    accept = ("Wanted response format. `application/json` (default) puts the @context in a "
              "`Link` header; `application/ld+json` puts it in the body")
    return {
        "Tenant": {"name": "NGSILD-Tenant", "in": "header", "description": (
            "Which tenant (e.g. one municipality of a territory) the request is about; 1-64 "
            "letters, digits, `_` or `-`. Without it, the default tenant. A tenant is "
            "created by its first write; reading one that does not exist gives 404."),
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_\\-]{1,64}$"},
            "example": "milano"},
        "Link": {"name": "Link", "in": "header", "description": (
            "The JSON-LD @context that gives meaning to the attribute and type names, as "
            "`<url>; rel=\"http://www.w3.org/ns/json-ld#context\"; "
            "type=\"application/ld+json\"`. Without it, the NGSI-LD core context. Not "
            "allowed together with a body sent as `application/ld+json`."),
            "schema": {"type": "string"}, "example": LINK_EXAMPLE},
        "AcceptEntity": {"name": "Accept", "in": "header", "description": (
            accept + "; `application/geo+json` answers GeoJSON. Anything else gives 406."),
            "schema": {"enum": [JSON, JSON_LD, GEO_JSON], "default": JSON}},
        "Accept": {"name": "Accept", "in": "header", "description": accept + ".",
                   "schema": {"enum": [JSON, JSON_LD], "default": JSON}},
        "id": query("id", "Entity ids, comma separated.", STRINGS, [STREETLIGHT_ID]),
        "idPattern": query("idPattern", "Regular expression the entity id must match.",
                           example="^urn:ngsi-ld:Streetlight:MI-"),
        "type": query("type", "Entity types: `,` or `|` means either, `;` means both, "
                      "parentheses group.", example="Streetlight,TrafficFlowObserved"),
        "attrs": query("attrs", "Only these attributes in the answer; a query also keeps "
                       "only entities having at least one of them.", STRINGS, ["powerState"]),
        "pick": query("pick", "Only these members (attributes, or `id`, `type`, `scope`).",
                      STRINGS, ["id", "powerState"]),
        "omit": query("omit", "Leave these members out.", STRINGS, ["location"]),
        "q": query("q", "Filter on attribute values in the NGSI-LD query language, e.g. "
                   "`powerState==\"on\";illuminanceLevel<0.5` (`;` and, `|` or).",
                   example='powerState=="on"'),
        "scopeQ": query("scopeQ", "Filter on scopes, e.g. `/Milano/#` for every scope "
                        "below /Milano.", example="/Milano/Municipio1"),
        "georel": query("georel", "Geographic relation: `near;maxDistance==<metres>`, "
                        "`near;minDistance==<metres>`, `within`, `contains`, `intersects`, "
                        "`equals`, `disjoint`, `overlaps`.", example="near;maxDistance==500"),
        "geometry": query("geometry", "Shape of the reference geometry.", {"enum": [
            "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
            "MultiPolygon"]}, "Point"),
        "coordinates": query("coordinates", "Coordinates of the reference geometry as JSON "
                             "text, longitude first (WGS84).", example="[9.19,45.46]"),
        "geoproperty": query("geoproperty", "Which GeoProperty the geo-query tests.",
                             {"type": "string", "default": "location"}),
        "geometryProperty": query("geometryProperty", "GeoJSON answers: the GeoProperty "
                                  "that becomes the Feature geometry.",
                                  {"type": "string", "default": "location"}),
        "lang": query("lang", "Preferred language for LanguageProperty values.",
                      example="it"),
        "datasetId": query("datasetId", "Only the attribute instances with this "
                           "datasetId.", example="urn:ngsi-ld:Dataset:arpa"),
        "options": options(["sysAttrs", "keyValues", "simplified", "concise", "normalized"],
                           "`sysAttrs` adds createdAt/modifiedAt; `keyValues` (or "
                           "`simplified`) and `concise` choose a shorter representation."),
        "format": query("format", "Representation; wins over the one chosen in `options`.",
                        {"enum": ["normalized", "concise", "keyValues", "simplified"]}),
        "limit": query("limit", "Page size. Above the server's maximum the answer is 403 "
                       "TooManyResults; `limit=0` with `count=true` returns only the count.",
                       {"type": "integer", "minimum": 0, "default": 20}),
        "offset": query("offset", "How many results to skip.",
                        {"type": "integer", "minimum": 0, "default": 0}),
        "count": flag("count", "Return the total number of matches in the "
                      "`NGSILD-Results-Count` header."),
        "details": flag("details", "Return full descriptions rather than names only."),
        "kind": query("kind", "Only contexts of this kind.",
                      {"enum": ["hosted", "cached", "implicitlycreated"]}),
        "reload": flag("reload", "Fetch a cached @context again instead of deleting it."),
        "deleteAll": flag("deleteAll", "Delete every instance of the attribute."),
        "deleteDatasetId": query("datasetId", "Delete only the instance with this "
                                 "datasetId (without: the default instance).",
                                 example="urn:ngsi-ld:Dataset:arpa"),
        "appendOptions": options(["noOverwrite"], "`noOverwrite` keeps attributes that "
                                 "already exist (and reports them)."),
        "upsertOptions": options(["replace", "update"], "`replace` (default) replaces "
                                 "existing entities whole; `update` changes only the "
                                 "attributes sent."),
        "updateOptions": options(["noOverwrite"], "`noOverwrite` only adds attributes the "
                                 "entity does not have yet."),
        "entityId": path("entityId", "The entity id (a URI). Percent-encode `/`, `#` and "
                         "`?` if the id contains them.", STREETLIGHT_ID),
        "attrId": path("attrId", "The attribute name, as the @context defines it.",
                       "powerState"),
        "typeName": path("type", "The entity type name.", "Streetlight"),
        "attrName": path("attr", "The attribute name.", "powerState"),
        "contextId": path("contextId", "The local id of a hosted @context, or the URL of a "
                          "cached one.", "5b1d3c6e-2f0a-4a8b-9c7d-1e2f3a4b5c6d"),
    }


def _headers() -> dict[str, Any]:
    return {
        "ResultsCount": {"description": "Total number of matches (with `count=true`).",
                         "schema": {"type": "integer", "minimum": 0}, "example": 13420},
        "Link": {"description": "The JSON-LD @context of a JSON answer, and the `next`/`prev` "
                 "pages of a query (`<url>; rel=\"next\"`).", "schema": {"type": "string"},
                 "example": LINK_EXAMPLE},
        "Location": {"description": "Where the new resource can be read.",
                     "schema": {"type": "string"},
                     "example": f"{NGSI}/entities/{STREETLIGHT_ID}"},
    }


def _error_responses() -> dict[str, Any]:
    return {name: response(description, {JSON: {
        "schema": ref("ProblemDetails"), "example": problem_example(status)}})
        for status, (name, description) in ERRORS.items()}


# -- paths ---------------------------------------------------------------------------------

SELECTION: Final = ("id", "idPattern", "type", "attrs", "q", "scopeQ", "georel", "geometry",
                    "coordinates", "geoproperty", "datasetId")
RENDERING: Final = ("pick", "omit", "options", "format", "lang", "geometryProperty")


def _entity_body(description: str, *json_examples: str) -> dict[str, Any]:
    return body({JSON: media(ref("EntityInput"), *json_examples),
                 JSON_LD: media(ref("EntityInput"), "StreetlightLd")}, description)


def _query_results(description: str, *, geojson: bool) -> dict[str, Any]:
    entities = array(ref("EntityRepresentation"))
    content = {JSON: media(entities, "Streetlights"),
               JSON_LD: media(entities, "StreetlightsLd")}
    if geojson:
        content[GEO_JSON] = media(ref("FeatureCollection"), "StreetlightFeatures")
    return response(description, content, {"NGSILD-Results-Count": header_ref("ResultsCount"),
                                           "Link": header_ref("Link")})


def _entity_paths() -> dict[str, Any]:
    one = f"{NGSI}/entities/{{entityId}}"
    return {
        f"{NGSI}/entities": {
            "get": operation(
                "queryEntities", "Entities", "Find entities",
                "Lists the entities that match the filters: by id, type, attribute values "
                "(`q`), place (`georel`, `geometry`, `coordinates`) or scope. At least one "
                "filter is needed so that nobody downloads the whole city by mistake. "
                "Results come in pages (`limit`, `offset`); `count=true` adds the total "
                "number in a header. Ask for `application/geo+json` to load the answer "
                "straight into a GIS.",
                params=(*COMMON, "AcceptEntity", *SELECTION, *RENDERING, *PAGING),
                responses={"200": _query_results("The matching entities.", geojson=True),
                           **errors(400, 403, 404, 406, 503)}),
            "post": operation(
                "createEntity", "Entities", "Create an entity",
                "Stores a new entity, e.g. a streetlight with its power state and "
                "position. The `id` must be a URI not used yet in this tenant. The answer "
                "gives the new entity's address in the `Location` header.",
                params=COMMON, body=_entity_body("The entity to create.", "Streetlight",
                                                 "StreetlightConcise", "TrafficFlow"),
                responses={"201": response("Created.",
                                           headers={"Location": header_ref("Location")}),
                           **errors(400, 409, 413, 415, 503)}),
        },
        one: {
            "get": operation(
                "retrieveEntity", "Entities", "Read one entity",
                "Returns one entity with all its attributes, or only those named in "
                "`attrs`/`pick`. Choose a shorter form with `format=concise` or "
                "`format=keyValues`, or a GeoJSON Feature for maps.",
                params=(*COMMON, "AcceptEntity", "entityId", "attrs", "datasetId", *RENDERING),
                responses={"200": response("The entity.", {
                    JSON: media(ref("EntityRepresentation"), "Streetlight",
                                "StreetlightConcise", "StreetlightKeyValues"),
                    JSON_LD: media(ref("EntityRepresentation"), "StreetlightLd"),
                    GEO_JSON: media(ref("Feature"), "StreetlightFeature")},
                    {"Link": header_ref("Link")}), **errors(400, 404, 406, 503)}),
            "put": operation(
                "replaceEntity", "Entities", "Replace an entity",
                "Replaces every attribute of an existing entity with the ones sent; "
                "attributes not sent are removed. Use it when a source system re-sends "
                "the full state of an asset.",
                params=(*COMMON, "entityId"),
                body=_entity_body("The new content (its id, if given, is the one in the URL).",
                                  "Streetlight", "StreetlightConcise"),
                responses={**NO_CONTENT, **errors(*BODY_ERRORS, 404)}),
            "patch": operation(
                "mergeEntity", "Entities", "Merge changes into an entity",
                "Changes only the attributes sent and keeps the others (JSON merge patch). "
                "Set an attribute to `urn:ngsi-ld:null` to delete it.",
                params=(*COMMON, "entityId"),
                body=body({JSON: media(ref("EntityFragment"), "StreetlightMerge"),
                           MERGE_PATCH: media(ref("EntityFragment"), "StreetlightMerge"),
                           JSON_LD: media(ref("EntityFragment"))},
                          "The attributes to change."),
                responses={**NO_CONTENT, **errors(*BODY_ERRORS, 404)}),
            "delete": operation(
                "deleteEntity", "Entities", "Delete an entity",
                "Removes an entity and all its attributes, e.g. a streetlight that was "
                "dismantled. Its history, if kept, stays available.",
                params=("Tenant", "entityId"),
                responses={**NO_CONTENT, **errors(400, 404)}),
        },
    }


def _attribute_paths() -> dict[str, Any]:
    attrs = f"{NGSI}/entities/{{entityId}}/attrs"
    partial = {"207": response("Some attributes were not changed; the body says which and "
                               "why.", {JSON: media(ref("UpdateResult"), "NotUpdated")})}
    attrs_body = body({JSON: media(ref("EntityAttributes"), "LightingAttrs"),
                       JSON_LD: media(ref("EntityAttributes"))}, "Attributes by name.")
    return {
        attrs: {
            "post": operation(
                "appendAttrs", "Attributes", "Add attributes",
                "Adds attributes to an entity, overwriting those that exist unless "
                "`options=noOverwrite` is given. Handy when a new sensor starts reporting "
                "one more value for an existing asset.",
                params=(*COMMON, "entityId", "appendOptions"), body=attrs_body,
                responses={**NO_CONTENT, **partial, **errors(*BODY_ERRORS, 404)}),
            "patch": operation(
                "updateAttrs", "Attributes", "Update existing attributes",
                "Replaces the attributes sent, but only those the entity already has; the "
                "others are listed in a 207 answer. This is how a device usually reports "
                "new readings.",
                params=(*COMMON, "entityId"), body=attrs_body,
                responses={**NO_CONTENT, **partial, **errors(*BODY_ERRORS, 404)}),
        },
        f"{attrs}/{{attrId}}": {
            "patch": operation(
                "partialAttrUpdate", "Attributes", "Change part of one attribute",
                "Changes only the members sent of one attribute, e.g. its value and "
                "`observedAt`, keeping its unit and sub-attributes. `datasetId` in the "
                "body picks the instance.",
                params=(*COMMON, "entityId", "attrId"),
                body=body({JSON: media(ref("AttributeFragment"), "PowerStateFragment"),
                           JSON_LD: media(ref("AttributeFragment"))},
                          "The members to change."),
                responses={**NO_CONTENT, **errors(*BODY_ERRORS, 404)}),
            "put": operation(
                "replaceAttr", "Attributes", "Replace one attribute",
                "Replaces one attribute whole, with all its metadata and sub-attributes.",
                params=(*COMMON, "entityId", "attrId"),
                body=body({JSON: media({"anyOf": [ref("AttributeOrInstances"),
                                                  ref("ConciseAttribute")]},
                                       "PowerStateAttribute"),
                           JSON_LD: media(ref("AttributeFragment"))},
                          "The new attribute."),
                responses={**NO_CONTENT, **errors(*BODY_ERRORS, 404)}),
            "delete": operation(
                "deleteAttr", "Attributes", "Delete one attribute",
                "Removes one attribute from an entity: its default instance, the instance "
                "with `datasetId`, or every instance with `deleteAll=true`.",
                params=(*COMMON, "entityId", "attrId", "deleteDatasetId", "deleteAll"),
                responses={**NO_CONTENT, **errors(400, 404, 503)}),
        },
    }


def _batch(op: str, summary: str, description: str, *, params: Iterable[str] = (),
           ok: dict[str, Any], request: dict[str, Any] | None = None) -> dict[str, Any]:
    partial = {"207": response("Some entities failed; the others were applied.", {
        JSON: media(ref("BatchOperationResult"), "CityBatchPartial")})}
    request = request or body({JSON: media(array(ref("EntityInput")), "CityBatch"),
                               JSON_LD: media(array(ref("EntityInput")))},
                              "The entities, each with its id.")
    return {"post": operation(
        f"batch{op.capitalize()}", "Batch", summary, description
        + " Each entity succeeds or fails on its own; failures are listed in a 207 answer.",
        params=(*COMMON, *params), body=request,
        responses={**ok, **partial, **errors(*BODY_ERRORS)})}


def _batch_paths() -> dict[str, Any]:
    ops = f"{NGSI}/entityOperations"

    def created(description: str) -> dict[str, Any]:
        return {"201": response(description,
                                {JSON: media(ref("EntityIdList"), "CityBatchIds")})}

    fragments = body({JSON: media(array(ref("EntityFragment")), "CityBatch"),
                      JSON_LD: media(array(ref("EntityFragment")))},
                     "The entities, each with its id and the attributes to change.")
    return {
        f"{ops}/create": _batch(
            "create", "Create many entities",
            "Creates many entities in one request, e.g. the initial load of every "
            "streetlight of a district.", ok=created("All created; their ids.")),
        f"{ops}/upsert": _batch(
            "upsert", "Create or replace many entities",
            "Creates the entities that do not exist and replaces (or, with "
            "`options=update`, updates) those that do. The usual way to synchronise a "
            "vertical system into the platform.", params=("upsertOptions",),
            ok={**created("All applied; the ids of the entities that were new."),
                **NO_CONTENT}),
        f"{ops}/update": _batch(
            "update", "Update many entities",
            "Adds or overwrites attributes of many existing entities.",
            params=("updateOptions",), ok=NO_CONTENT, request=fragments),
        f"{ops}/merge": _batch(
            "merge", "Merge changes into many entities",
            "Merges the attributes sent into many existing entities, like PATCH on each.",
            ok=NO_CONTENT, request=fragments),
        f"{ops}/delete": _batch(
            "delete", "Delete many entities", "Deletes the entities whose ids are sent.",
            ok=NO_CONTENT, request=body({JSON: media(ref("EntityIdList"), "CityBatchDelete")},
                                        "The ids of the entities to delete.")),
        f"{ops}/query": {"post": operation(
            "queryEntitiesPost", "Batch", "Find entities (query in the body)",
            "The same search as GET /entities, written as a JSON `Query` document. Use it "
            "when the filters are too long for a URL, e.g. a detailed polygon of a "
            "neighbourhood.",
            params=(*COMMON, "Accept", "options", "format", *PAGING),
            body=body({JSON: media(ref("Query"), "QueryBusyRoads"),
                       JSON_LD: media(ref("Query"))}, "The query."),
            responses={"200": _query_results("The matching entities.", geojson=False),
                       **errors(400, 403, 404, 406, 413, 415, 503)})},
    }


def _discovery(op_id: str, summary: str, description: str, *, params: Iterable[str],
               content: dict[str, Any]) -> dict[str, Any]:
    return {"get": operation(
        op_id, "Discovery", summary, description,
        params=(*COMMON, "Accept", *params),
        responses={"200": response("Found.", content, {"Link": header_ref("Link")}),
                   **errors(400, 404, 406, 503)})}


def _discovery_paths() -> dict[str, Any]:
    def both(schema: dict[str, Any], *names: str) -> dict[str, Any]:
        return {JSON: media(schema, *names), JSON_LD: media(schema)}

    return {
        f"{NGSI}/types": _discovery(
            "listEntityTypes", "List entity types",
            "Names the kinds of entities stored (Streetlight, TrafficFlowObserved, ...); "
            "with `details=true`, also the attributes each kind uses. A good first call to "
            "see what a tenant contains.", params=("details",),
            content=both({"oneOf": [ref("EntityTypeList"), array(ref("EntityType"))]},
                         "TypeList", "TypeDetails")),
        f"{NGSI}/types/{{type}}": _discovery(
            "getEntityType", "Describe an entity type",
            "How many entities of a type there are and which attributes they have, with "
            "their kinds.", params=("typeName",),
            content=both(ref("EntityTypeInfo"), "TypeInfo")),
        f"{NGSI}/attributes": _discovery(
            "listAttributes", "List attributes",
            "Names every attribute in use; with `details=true`, also the entity types "
            "that use each one.", params=("details",),
            content=both({"oneOf": [ref("AttributeList"), array(ref("Attribute"))]},
                         "AttributeList", "AttributeDetails")),
        f"{NGSI}/attributes/{{attr}}": _discovery(
            "getAttribute", "Describe an attribute",
            "How many entities carry an attribute, of which kinds and types.",
            params=("attrName",), content=both(ref("Attribute"), "AttributeInfo")),
    }


def _context_paths() -> dict[str, Any]:
    base = f"{NGSI}/jsonldContexts"
    return {
        base: {
            "post": operation(
                "addContext", "Contexts", "Host a @context",
                "Stores a JSON-LD @context on the platform so clients can point at it "
                "without any internet access, e.g. the municipality's own vocabulary for "
                "lighting. The `Location` header gives its URL.",
                params=("Tenant",),
                body=body({m: media(ref("JsonldContextDocument"), "LightingContext")
                           for m in (JSON, JSON_LD)}, "The @context document."),
                responses={"201": response("Stored.",
                                           headers={"Location": header_ref("Location")}),
                           **errors(*BODY_ERRORS)}),
            "get": operation(
                "listContexts", "Contexts", "List @contexts",
                "Lists the @contexts the platform hosts and those it has cached; "
                "`details=true` adds when each was stored and where it came from.",
                params=("Tenant", "details", "kind"),
                responses={"200": response("The contexts.", {JSON: media(
                    {"oneOf": [array({"type": "string", "format": "uri"}),
                               array(ref("JsonldContextInfo"))]},
                    "ContextUrls", "ContextDetails")}), **errors(400)}),
        },
        f"{base}/{{contextId}}": {
            "get": operation(
                "getContext", "Contexts", "Serve a @context",
                "Returns a hosted @context document, or with `details=true` the facts "
                "about it.", params=("Tenant", "contextId", "details"),
                responses={"200": response("The document, or its details.", {
                    JSON_LD: media(ref("JsonldContextDocument"), "LightingContext"),
                    JSON: media(ref("JsonldContextInfo"), "ContextInfo")}),
                    **errors(400, 404)}),
            "delete": operation(
                "deleteContext", "Contexts", "Delete or reload a @context",
                "Deletes a hosted @context, or with `reload=true` fetches a cached one "
                "again, e.g. after its publisher changed it.",
                params=("Tenant", "contextId", "reload"),
                responses={**NO_CONTENT, **errors(400, 404, 503)}),
        },
    }


def _service_paths() -> dict[str, Any]:
    def get(op_id: str, summary: str, description: str,
            responses: dict[str, Any]) -> dict[str, Any]:
        return {"get": operation(op_id, "Service", summary, description, responses=responses)}

    return {
        "/": get("home", "Home page", "Sends the browser to the interactive documentation.",
                 {"307": response("Redirect to /docs.", headers={"Location": {
                     "schema": {"type": "string"}, "example": "/docs"}})}),
        "/version": get("getVersion", "Server version",
                        "Which Sinergia release answers and which NGSI-LD version it "
                        "implements; useful to check that a server is up.",
                        {"200": response("The version.",
                                         {JSON: media(ref("ServiceVersion"), "Version")})}),
        "/openapi.json": get(
            "getOpenApi", "This API description",
            "This document, for code generators and API tools.",
            {"200": response("The OpenAPI document.", {JSON: {
                "schema": {"type": "object"},
                "example": {"openapi": "3.1.0", "info": {"title": "Sinergia"}}}})}),
        "/docs": get("getDocs", "Interactive documentation",
                     "A page where each call can be read about and tried from the browser; "
                     "it works offline.",
                     {"200": response("The page.", {"text/html": {
                         "schema": {"type": "string"},
                         "example": "<!doctype html><title>Sinergia API</title>"}})}),
    }


def _components() -> dict[str, dict[str, Any]]:
    components = {"schemas": schemas(), "examples": examples(), "parameters": _parameters(),
                  "headers": _headers(), "responses": _error_responses()}
    for area in AREAS:
        for kind, items in area.components().items():
            clash = components.setdefault(kind, {}).keys() & items.keys()
            if clash:  # a silent overwrite would change another family's description
                raise ValueError(f"{area.__name__} redefines components.{kind}: {clash}")
            components[kind].update(items)
    return components


def _paths() -> dict[str, Any]:
    paths = {**_entity_paths(), **_attribute_paths(), **_batch_paths(),
             **_discovery_paths(), **_context_paths()}
    for area in AREAS:
        for path_, item in area.paths().items():
            clash = paths.get(path_, {}).keys() & item.keys()
            if clash:
                raise ValueError(f"{area.__name__} redefines {clash} of {path_}")
            paths[path_] = {**paths.get(path_, {}), **item}
    return {**paths, **_service_paths()}


def build_spec(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for a server of this ``version``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sinergia", "version": version,
            "summary": "Smart City Platform: an ETSI NGSI-LD context broker.",
            "description": (
                "Sinergia keeps the current state of the city's things (streetlights, "
                "traffic counters, bins, sensors, ...) as NGSI-LD entities, and their "
                "history, so every service can read what the others know and be told when "
                "it changes.\n\n"
                "Names of types and attributes are interpreted with a JSON-LD @context: "
                "send it in the `Link` header (JSON) or in the body (`application/ld+json`). "
                "Errors are always `application/json` ProblemDetails."),
            "license": {"name": "EUPL-1.2", "identifier": "EUPL-1.2"},
        },
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": _paths(),
        "components": _components(),
    }
