"""The OpenAPI 3.1 description of Sinergia's HTTP API, served at ``/openapi.json`` and shown
by the interactive docs at ``/docs``.

The document is assembled from small helpers that point at reusable components (parameters,
responses, headers, schemas, examples), so each operation reads as a short list of what it
takes and what it answers. Shapes and examples live in :mod:`sinergia.api.openapi_schemas`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from sinergia.api.http import GEO_JSON, JSON, JSON_LD, MERGE_PATCH
from sinergia.api.openapi_schemas import (
    LINK_EXAMPLE,
    STREETLIGHT_ID,
    examples,
    problem_example,
    ref,
    schemas,
)

NGSI: Final = "/ngsi-ld/v1"
TAGS: Final[dict[str, str]] = {
    "Entities": "Create, read, change and delete the things of the city: streetlights, "
                "traffic counters, waste bins, sensors.",
    "Attributes": "Change single attributes of an entity without resending the whole of it.",
    "Batch": "Many entities in one request; each succeeds or fails on its own.",
    "Discovery": "What kinds of entities and attributes the platform holds.",
    "Contexts": "JSON-LD @contexts: the vocabularies that give attribute names their meaning.",
    "Service": "Version, this description and the interactive documentation.",
}


# -- small builders ------------------------------------------------------------------------

def _param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _params(names: Iterable[str]) -> list[dict[str, str]]:
    return [_param(n) for n in names]


def _header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _media(schema: dict[str, Any], *example_names: str) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example_names:
        media["examples"] = {n: {"$ref": f"#/components/examples/{n}"} for n in example_names}
    return media


def _array(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


def _response(description: str, content: dict[str, Any] | None = None,
              headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = headers
    if content:
        response["content"] = content
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{_ERRORS[s][0]}"} for s in statuses}


def _body(content: dict[str, Any], description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": content}


def _operation(op_id: str, tag: str, summary: str, description: str, *,
               params: Iterable[str] = (), body: dict[str, Any] | None = None,
               responses: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": op_id, "tags": [tag], "summary": summary,
                                 "description": description, "parameters": _params(params)}
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = responses
    return operation


NO_CONTENT: Final = {"204": {"description": "Done; nothing to return."}}

# -- components: parameters, headers, error responses ---------------------------------------

_CSV: Final = {"type": "array", "items": {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None,
           example: Any = None) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "description": description,
                             "schema": schema or {"type": "string"}}
    if schema is not None and schema.get("type") == "array":
        param.update(style="form", explode=False)
    if example is not None:
        param["example"] = example
    return param


def _path(name: str, description: str, example: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}, "example": example}


def _options(values: list[str], description: str) -> dict[str, Any]:
    return _query("options", description, {"type": "array", "items": {"enum": values}})


def _flag(name: str, description: str) -> dict[str, Any]:
    return _query(name, description, {"type": "boolean", "default": False})


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
        "id": _query("id", "Entity ids, comma separated.", _CSV, [STREETLIGHT_ID]),
        "idPattern": _query("idPattern", "Regular expression the entity id must match.",
                            example="^urn:ngsi-ld:Streetlight:MI-"),
        "type": _query("type", "Entity types: `,` or `|` means either, `;` means both, "
                       "parentheses group.", example="Streetlight,TrafficFlowObserved"),
        "attrs": _query("attrs", "Only these attributes in the answer; a query also keeps "
                        "only entities having at least one of them.", _CSV, ["powerState"]),
        "pick": _query("pick", "Only these members (attributes, or `id`, `type`, `scope`).",
                       _CSV, ["id", "powerState"]),
        "omit": _query("omit", "Leave these members out.", _CSV, ["location"]),
        "q": _query("q", "Filter on attribute values in the NGSI-LD query language, e.g. "
                    "`powerState==\"on\";illuminanceLevel<0.5` (`;` and, `|` or).",
                    example='powerState=="on"'),
        "scopeQ": _query("scopeQ", "Filter on scopes, e.g. `/Milano/#` for every scope "
                         "below /Milano.", example="/Milano/Municipio1"),
        "georel": _query("georel", "Geographic relation: `near;maxDistance==<metres>`, "
                         "`near;minDistance==<metres>`, `within`, `contains`, `intersects`, "
                         "`equals`, `disjoint`, `overlaps`.", example="near;maxDistance==500"),
        "geometry": _query("geometry", "Shape of the reference geometry.", {"enum": [
            "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
            "MultiPolygon"]}, "Point"),
        "coordinates": _query("coordinates", "Coordinates of the reference geometry as JSON "
                              "text, longitude first (WGS84).", example="[9.19,45.46]"),
        "geoproperty": _query("geoproperty", "Which GeoProperty the geo-query tests.",
                              {"type": "string", "default": "location"}),
        "geometryProperty": _query("geometryProperty", "GeoJSON answers: the GeoProperty "
                                   "that becomes the Feature geometry.",
                                   {"type": "string", "default": "location"}),
        "lang": _query("lang", "Preferred language for LanguageProperty values.",
                       example="it"),
        "datasetId": _query("datasetId", "Only the attribute instances with this "
                            "datasetId.", example="urn:ngsi-ld:Dataset:arpa"),
        "options": _options(["sysAttrs", "keyValues", "simplified", "concise", "normalized"],
                            "`sysAttrs` adds createdAt/modifiedAt; `keyValues` (or "
                            "`simplified`) and `concise` choose a shorter representation."),
        "format": _query("format", "Representation; wins over the one chosen in `options`.",
                         {"enum": ["normalized", "concise", "keyValues", "simplified"]}),
        "limit": _query("limit", "Page size. Above the server's maximum the answer is 403 "
                        "TooManyResults; `limit=0` with `count=true` returns only the count.",
                        {"type": "integer", "minimum": 0, "default": 20}),
        "offset": _query("offset", "How many results to skip.",
                         {"type": "integer", "minimum": 0, "default": 0}),
        "count": _flag("count", "Return the total number of matches in the "
                       "`NGSILD-Results-Count` header."),
        "details": _flag("details", "Return full descriptions rather than names only."),
        "kind": _query("kind", "Only contexts of this kind.",
                       {"enum": ["hosted", "cached", "implicitlycreated"]}),
        "reload": _flag("reload", "Fetch a cached @context again instead of deleting it."),
        "deleteAll": _flag("deleteAll", "Delete every instance of the attribute."),
        "deleteDatasetId": _query("datasetId", "Delete only the instance with this "
                                  "datasetId (without: the default instance).",
                                  example="urn:ngsi-ld:Dataset:arpa"),
        "appendOptions": _options(["noOverwrite"], "`noOverwrite` keeps attributes that "
                                  "already exist (and reports them)."),
        "upsertOptions": _options(["replace", "update"], "`replace` (default) replaces "
                                  "existing entities whole; `update` changes only the "
                                  "attributes sent."),
        "updateOptions": _options(["noOverwrite"], "`noOverwrite` only adds attributes the "
                                  "entity does not have yet."),
        "entityId": _path("entityId", "The entity id (a URI). Percent-encode `/`, `#` and "
                          "`?` if the id contains them.", STREETLIGHT_ID),
        "attrId": _path("attrId", "The attribute name, as the @context defines it.",
                        "powerState"),
        "typeName": _path("type", "The entity type name.", "Streetlight"),
        "attrName": _path("attr", "The attribute name.", "powerState"),
        "contextId": _path("contextId", "The local id of a hosted @context, or the URL of a "
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


_ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("BadRequest", "The request is malformed (InvalidRequest) or its data is not valid "
          "(BadRequestData): the detail says what and where."),
    403: ("Forbidden", "The query asks for too much at once (TooManyResults, "
          "TooComplexQuery): use a smaller limit and page with offset."),
    404: ("NotFound", "The entity, attribute or @context does not exist (ResourceNotFound), "
          "or the NGSILD-Tenant does not (NonexistentTenant)."),
    406: ("NotAcceptable", "The Accept header names no format this endpoint produces."),
    409: ("Conflict", "An entity with this id already exists (AlreadyExists)."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts."),
    415: ("UnsupportedMediaType", "The body is not sent as application/json or "
          "application/ld+json."),
    422: ("Unprocessable", "The change is understood but not possible "
          "(OperationNotSupported), e.g. turning a Property into a Relationship."),
    503: ("Unavailable", "A JSON-LD @context could not be fetched in time "
          "(LdContextNotAvailable) or the database is unreachable; try again later."),
}


def _error_responses() -> dict[str, Any]:
    return {name: _response(description, {JSON: {
        "schema": ref("ProblemDetails"), "example": problem_example(status)}})
        for status, (name, description) in _ERRORS.items()}


# -- paths ---------------------------------------------------------------------------------

COMMON: Final = ("Tenant", "Link")
SELECTION: Final = ("id", "idPattern", "type", "attrs", "q", "scopeQ", "georel", "geometry",
                    "coordinates", "geoproperty", "datasetId")
RENDERING: Final = ("pick", "omit", "options", "format", "lang", "geometryProperty")
PAGING: Final = ("limit", "offset", "count")
BODY_ERRORS: Final = (400, 413, 415, 503)


def _entity_body(description: str) -> dict[str, Any]:
    return _body({JSON: _media(ref("EntityInput"), "Streetlight", "StreetlightConcise",
                               "TrafficFlow"),
                  JSON_LD: _media(ref("EntityInput"), "StreetlightLd")}, description)


def _query_results(description: str, *, geojson: bool) -> dict[str, Any]:
    entities = _array(ref("EntityRepresentation"))
    content = {JSON: _media(entities, "Streetlights"),
               JSON_LD: _media(entities, "StreetlightsLd")}
    if geojson:
        content[GEO_JSON] = _media(ref("FeatureCollection"), "StreetlightFeatures")
    return _response(description, content, {"NGSILD-Results-Count": _header_ref("ResultsCount"),
                                             "Link": _header_ref("Link")})


def _entity_paths() -> dict[str, Any]:
    one = f"{NGSI}/entities/{{entityId}}"
    return {
        f"{NGSI}/entities": {
            "get": _operation(
                "queryEntities", "Entities", "Find entities",
                "Lists the entities that match the filters: by id, type, attribute values "
                "(`q`), place (`georel`, `geometry`, `coordinates`) or scope. At least one "
                "filter is needed so that nobody downloads the whole city by mistake. "
                "Results come in pages (`limit`, `offset`); `count=true` adds the total "
                "number in a header. Ask for `application/geo+json` to load the answer "
                "straight into a GIS.",
                params=(*COMMON, "AcceptEntity", *SELECTION, *RENDERING, *PAGING),
                responses={"200": _query_results("The matching entities.", geojson=True),
                           **_errors(400, 403, 404, 406, 503)}),
            "post": _operation(
                "createEntity", "Entities", "Create an entity",
                "Stores a new entity, e.g. a streetlight with its power state and "
                "position. The `id` must be a URI not used yet in this tenant. The answer "
                "gives the new entity's address in the `Location` header.",
                params=COMMON, body=_entity_body("The entity to create."),
                responses={"201": _response("Created.",
                                            headers={"Location": _header_ref("Location")}),
                           **_errors(400, 409, 413, 415, 503)}),
        },
        one: {
            "get": _operation(
                "retrieveEntity", "Entities", "Read one entity",
                "Returns one entity with all its attributes, or only those named in "
                "`attrs`/`pick`. Choose a shorter form with `format=concise` or "
                "`format=keyValues`, or a GeoJSON Feature for maps.",
                params=(*COMMON, "AcceptEntity", "entityId", "attrs", "datasetId", *RENDERING),
                responses={"200": _response("The entity.", {
                    JSON: _media(ref("EntityRepresentation"), "Streetlight",
                                 "StreetlightConcise", "StreetlightKeyValues"),
                    JSON_LD: _media(ref("EntityRepresentation"), "StreetlightLd"),
                    GEO_JSON: _media(ref("Feature"), "StreetlightFeature")},
                    {"Link": _header_ref("Link")}), **_errors(400, 404, 406, 503)}),
            "put": _operation(
                "replaceEntity", "Entities", "Replace an entity",
                "Replaces every attribute of an existing entity with the ones sent; "
                "attributes not sent are removed. Use it when a source system re-sends "
                "the full state of an asset.",
                params=(*COMMON, "entityId"), body=_entity_body("The new content."),
                responses={**NO_CONTENT, **_errors(*BODY_ERRORS, 404)}),
            "patch": _operation(
                "mergeEntity", "Entities", "Merge changes into an entity",
                "Changes only the attributes sent and keeps the others (JSON merge patch). "
                "Set an attribute to `urn:ngsi-ld:null` to delete it.",
                params=(*COMMON, "entityId"),
                body=_body({m: _media(ref("EntityFragment"), "StreetlightMerge")
                            for m in (JSON, JSON_LD, MERGE_PATCH)}, "The attributes to change."),
                responses={**NO_CONTENT, **_errors(*BODY_ERRORS, 404, 422)}),
            "delete": _operation(
                "deleteEntity", "Entities", "Delete an entity",
                "Removes an entity and all its attributes, e.g. a streetlight that was "
                "dismantled. Its history, if kept, stays available.",
                params=("Tenant", "entityId"),
                responses={**NO_CONTENT, **_errors(400, 404)}),
        },
    }


def _attribute_paths() -> dict[str, Any]:
    attrs = f"{NGSI}/entities/{{entityId}}/attrs"
    partial = {"207": _response("Some attributes were not changed; the body says which and "
                                "why.", {JSON: _media(ref("UpdateResult"), "NotUpdated")})}
    attrs_body = _body({JSON: _media(ref("EntityAttributes"), "LightingAttrs"),
                        JSON_LD: _media(ref("EntityAttributes"))}, "Attributes by name.")
    return {
        attrs: {
            "post": _operation(
                "appendAttrs", "Attributes", "Add attributes",
                "Adds attributes to an entity, overwriting those that exist unless "
                "`options=noOverwrite` is given. Handy when a new sensor starts reporting "
                "one more value for an existing asset.",
                params=(*COMMON, "entityId", "appendOptions"), body=attrs_body,
                responses={**NO_CONTENT, **partial, **_errors(*BODY_ERRORS, 404)}),
            "patch": _operation(
                "updateAttrs", "Attributes", "Update existing attributes",
                "Replaces the attributes sent, but only those the entity already has; the "
                "others are listed in a 207 answer. This is how a device usually reports "
                "new readings.",
                params=(*COMMON, "entityId"), body=attrs_body,
                responses={**NO_CONTENT, **partial, **_errors(*BODY_ERRORS, 404)}),
        },
        f"{attrs}/{{attrId}}": {
            "patch": _operation(
                "partialAttrUpdate", "Attributes", "Change part of one attribute",
                "Changes only the members sent of one attribute, e.g. its value and "
                "`observedAt`, keeping its unit and sub-attributes. `datasetId` in the "
                "body picks the instance.",
                params=(*COMMON, "entityId", "attrId"),
                body=_body({JSON: _media(ref("AttributeFragment"), "PowerStateFragment"),
                            JSON_LD: _media(ref("AttributeFragment"))},
                           "The members to change."),
                responses={**NO_CONTENT, **_errors(*BODY_ERRORS, 404, 422)}),
            "put": _operation(
                "replaceAttr", "Attributes", "Replace one attribute",
                "Replaces one attribute whole, with all its metadata and sub-attributes.",
                params=(*COMMON, "entityId", "attrId"),
                body=_body({JSON: _media({"anyOf": [ref("AttributeOrInstances"),
                                                    ref("ConciseAttribute")]},
                                         "PowerStateAttribute"),
                            JSON_LD: _media(ref("AttributeFragment"))},
                           "The new attribute."),
                responses={**NO_CONTENT, **_errors(*BODY_ERRORS, 404, 422)}),
            "delete": _operation(
                "deleteAttr", "Attributes", "Delete one attribute",
                "Removes one attribute from an entity: its default instance, the instance "
                "with `datasetId`, or every instance with `deleteAll=true`.",
                params=(*COMMON, "entityId", "attrId", "deleteDatasetId", "deleteAll"),
                responses={**NO_CONTENT, **_errors(400, 404, 503)}),
        },
    }


def _batch(op: str, summary: str, description: str, *, params: Iterable[str] = (),
           ok: dict[str, Any], body: dict[str, Any] | None = None) -> dict[str, Any]:
    partial = {"207": _response("Some entities failed; the others were applied.", {
        JSON: _media(ref("BatchOperationResult"), "CityBatchPartial")})}
    request = body or _body({JSON: _media(_array(ref("EntityInput")), "CityBatch"),
                             JSON_LD: _media(_array(ref("EntityInput")))},
                            "The entities, each with its id.")
    return {"post": _operation(
        f"batch{op.capitalize()}", "Batch", summary, description
        + " Each entity succeeds or fails on its own; failures are listed in a 207 answer.",
        params=(*COMMON, *params), body=request,
        responses={**ok, **partial, **_errors(*BODY_ERRORS)})}


def _batch_paths() -> dict[str, Any]:
    ops = f"{NGSI}/entityOperations"

    def created(description: str) -> dict[str, Any]:
        return {"201": _response(description,
                                 {JSON: _media(ref("EntityIdList"), "CityBatchIds")})}

    fragments = _body({JSON: _media(_array(ref("EntityFragment")), "CityBatch"),
                       JSON_LD: _media(_array(ref("EntityFragment")))},
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
            params=("updateOptions",), ok=NO_CONTENT, body=fragments),
        f"{ops}/merge": _batch(
            "merge", "Merge changes into many entities",
            "Merges the attributes sent into many existing entities, like PATCH on each.",
            ok=NO_CONTENT, body=fragments),
        f"{ops}/delete": _batch(
            "delete", "Delete many entities", "Deletes the entities whose ids are sent.",
            ok=NO_CONTENT, body=_body({JSON: _media(ref("EntityIdList"), "CityBatchDelete")},
                                      "The ids of the entities to delete.")),
        f"{ops}/query": {"post": _operation(
            "queryEntitiesPost", "Batch", "Find entities (query in the body)",
            "The same search as GET /entities, written as a JSON `Query` document. Use it "
            "when the filters are too long for a URL, e.g. a detailed polygon of a "
            "neighbourhood.",
            params=(*COMMON, "Accept", "options", "format", *PAGING),
            body=_body({JSON: _media(ref("Query"), "QueryBusyRoads"),
                        JSON_LD: _media(ref("Query"))}, "The query."),
            responses={"200": _query_results("The matching entities.", geojson=False),
                       **_errors(400, 403, 404, 406, 413, 415, 503)})},
    }


def _discovery(op_id: str, summary: str, description: str, *, params: Iterable[str],
               content: dict[str, Any]) -> dict[str, Any]:
    return {"get": _operation(
        op_id, "Discovery", summary, description,
        params=(*COMMON, "Accept", *params),
        responses={"200": _response("Found.", content, {"Link": _header_ref("Link")}),
                   **_errors(400, 404, 406, 503)})}


def _discovery_paths() -> dict[str, Any]:
    def both(schema: dict[str, Any], *names: str) -> dict[str, Any]:
        return {JSON: _media(schema, *names), JSON_LD: _media(schema)}

    return {
        f"{NGSI}/types": _discovery(
            "listEntityTypes", "List entity types",
            "Names the kinds of entities stored (Streetlight, TrafficFlowObserved, ...); "
            "with `details=true`, also the attributes each kind uses. A good first call to "
            "see what a tenant contains.", params=("details",),
            content=both({"oneOf": [ref("EntityTypeList"), _array(ref("EntityType"))]},
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
            content=both({"oneOf": [ref("AttributeList"), _array(ref("Attribute"))]},
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
            "post": _operation(
                "addContext", "Contexts", "Host a @context",
                "Stores a JSON-LD @context on the platform so clients can point at it "
                "without any internet access, e.g. the municipality's own vocabulary for "
                "lighting. The `Location` header gives its URL.",
                params=("Tenant",),
                body=_body({m: _media(ref("JsonldContextDocument"), "LightingContext")
                            for m in (JSON, JSON_LD)}, "The @context document."),
                responses={"201": _response("Stored.",
                                            headers={"Location": _header_ref("Location")}),
                           **_errors(*BODY_ERRORS)}),
            "get": _operation(
                "listContexts", "Contexts", "List @contexts",
                "Lists the @contexts the platform hosts and those it has cached; "
                "`details=true` adds when each was stored and where it came from.",
                params=("Tenant", "details", "kind"),
                responses={"200": _response("The contexts.", {JSON: _media(
                    {"oneOf": [_array({"type": "string", "format": "uri"}),
                               _array(ref("JsonldContextInfo"))]},
                    "ContextUrls", "ContextDetails")}), **_errors(400)}),
        },
        f"{base}/{{contextId}}": {
            "get": _operation(
                "getContext", "Contexts", "Serve a @context",
                "Returns a hosted @context document, or with `details=true` the facts "
                "about it.", params=("Tenant", "contextId", "details"),
                responses={"200": _response("The document, or its details.", {
                    JSON_LD: _media(ref("JsonldContextDocument"), "LightingContext"),
                    JSON: _media(ref("JsonldContextInfo"), "ContextInfo")}),
                    **_errors(400, 404)}),
            "delete": _operation(
                "deleteContext", "Contexts", "Delete or reload a @context",
                "Deletes a hosted @context, or with `reload=true` fetches a cached one "
                "again, e.g. after its publisher changed it.",
                params=("Tenant", "contextId", "reload"),
                responses={**NO_CONTENT, **_errors(400, 404, 503)}),
        },
    }


def _service_paths() -> dict[str, Any]:
    def get(op_id: str, summary: str, description: str,
            responses: dict[str, Any]) -> dict[str, Any]:
        return {"get": _operation(op_id, "Service", summary, description, responses=responses)}

    return {
        "/": get("home", "Home page", "Sends the browser to the interactive documentation.",
                 {"307": _response("Redirect to /docs.", headers={"Location": {
                     "schema": {"type": "string"}, "example": "/docs"}})}),
        "/version": get("getVersion", "Server version",
                        "Which Sinergia release answers and which NGSI-LD version it "
                        "implements; useful to check that a server is up.",
                        {"200": _response("The version.",
                                          {JSON: _media(ref("ServiceVersion"), "Version")})}),
        "/openapi.json": get(
            "getOpenApi", "This API description",
            "This document, for code generators and API tools.",
            {"200": _response("The OpenAPI document.", {JSON: {
                "schema": {"type": "object"},
                "example": {"openapi": "3.1.0", "info": {"title": "Sinergia"}}}})}),
        "/docs": get("getDocs", "Interactive documentation",
                     "A page where each call can be read about and tried from the browser; "
                     "it works offline.",
                     {"200": _response("The page.", {"text/html": {
                         "schema": {"type": "string"},
                         "example": "<!doctype html><title>Sinergia API</title>"}})}),
    }


def build_spec(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for a server of this ``version``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sinergia", "version": version,
            "summary": "Smart City Platform: an ETSI NGSI-LD context broker.",
            "description": (
                "Sinergia keeps the current state of the city's things (streetlights, "
                "traffic counters, bins, sensors, ...) as NGSI-LD entities, so every "
                "service can read what the others know.\n\n"
                "Names of types and attributes are interpreted with a JSON-LD @context: "
                "send it in the `Link` header (JSON) or in the body (`application/ld+json`). "
                "Errors are always `application/json` ProblemDetails."),
            "license": {"name": "EUPL-1.2", "identifier": "EUPL-1.2"},
        },
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": {**_entity_paths(), **_attribute_paths(), **_batch_paths(),
                  **_discovery_paths(), **_context_paths(), **_service_paths()},
        "components": {
            "schemas": schemas(), "examples": examples(), "parameters": _parameters(),
            "headers": _headers(), "responses": _error_responses(),
        },
    }
