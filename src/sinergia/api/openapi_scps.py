"""The UrbanDataset gateway's part of the OpenAPI description: ``/scps/UrbanDatasetGateway/…``,
ENEA's SCPS Communication 2.0 operations (:mod:`sinergia.api.scps`).

Every operation answers HTTP 200 with a two-digit ``code`` in the body, errors included, so each
is described by one 200 response whose examples show a success and the typical errors. The
answer codes are read from :class:`sinergia.api.scps.Code`."""

from __future__ import annotations

from typing import Any, Final

from sinergia.api.http import JSON
from sinergia.api.openapi_builders import TIME, array, body, example, media, operation, ref
from sinergia.api.openapi_builders import response as answer
from sinergia.api.scps import PREFIX, Code

TAG: Final = "UrbanDataset"
SECURITY: Final[list[dict[str, list[str]]]] = [{"scpsBearer": []}]
RESOURCE_ID: Final = "SCP-015146_PELLMilano-1_CounterReading-2.0_20260101000000"
TIMESTAMP: Final = "2026-11-20T01:05:00"
_CODES: Final = sorted(value for name, value in vars(Code).items() if name.isupper())
_NUMBER_OR_TEXT: Final = {"type": ["string", "number"]}


# -- schemas ----------------------------------------------------------------------------------

def _request(properties: dict[str, Any], required: list[str],
             description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties,
            "required": required}


_RESOURCE: Final = {"type": "string", "description": (
    "Which UrbanDataset of which solution: `SCP-<SmartCityId>_<SolutionName>-<n>_"
    "<UrbanDatasetName>-<version>_<yyyyMMddHHmmss>`."), "example": RESOURCE_ID}
_TIMESTAMP: Final = {"type": "string", "description": (
    "The `context.timestamp` of the UrbanDataset, as the document writes it (local time)."),
    "example": TIMESTAMP}
_SEARCH: Final = {
    "resource_id": _RESOURCE,
    "period_start": {"type": "string", "description": (
        "Start of the period (included). Without an offset, in each document's time zone.")},
    "period_end": {"type": "string", "description": "End of the period (included)."},
    "center_latitude": {**_NUMBER_OR_TEXT, "description": "Latitude of the centre "
                        "(WGS84 degrees); with `center_longitude` and `distance`."},
    "center_longitude": {**_NUMBER_OR_TEXT, "description": "Longitude of the centre."},
    "distance": {**_NUMBER_OR_TEXT, "description": "Radius around the centre, in metres."},
}


def _schemas() -> dict[str, Any]:
    code = {"type": "string", "enum": _CODES, "description": (
        "00 successful (test, isAlive, logout), 01 logged in, 02 pushed, 03 found, 08 "
        "deleted; 10 wrong credentials, 11 login disabled (no credentials set), 12 no valid "
        "token, 13 token expired, 20 bad request, 21 invalid UrbanDataset, 22 already exists, "
        "30 not found, 90 internal error.")}
    base = {"code": code, "message": {"type": "string"},
            "detail": {"type": "string", "description": "What went wrong (every error), or "
                                                        "what a push did."}}
    return {
        "ScpsAnswer": {"type": "object", "description": (
            "Every answer of the gateway: HTTP 200, a code and a message."),
            "properties": base, "required": ["code", "message"]},
        "ScpsLoginAnswer": {"type": "object", "properties": {
            **base, "token": {"type": "string", "description": "The bearer token."},
            "expires_at": {**TIME, "description": "When the token stops working."}},
            "required": ["code", "message"]},
        "ScpsAliveAnswer": {"type": "object", "properties": {
            **base, "username": {"type": "string"}, "expires_at": TIME},
            "required": ["code", "message"]},
        "ScpsDatasetsAnswer": {"type": "object", "properties": {
            **base, "dataset": {"oneOf": [array(ref("UrbanDatasetDocument")),
                                          ref("UrbanDatasetDocument")],
                                "description": "The documents (lists), or one document "
                                               "(lastRequest, specificRequest)."}},
            "required": ["code", "message"]},
        "UrbanDatasetDocument": {"type": "object", "description": (
            "An UrbanDataset document as ENEA's schemas 1.0/2.0 define it (specification, "
            "context, values.line)."),
            "properties": {"UrbanDataset": {"type": "object", "properties": {
                "specification": {"type": "object"}, "context": {"type": "object"},
                "values": {"type": "object", "properties": {"line": array(
                    {"type": "object"})}}}, "required": ["specification", "values"]}},
            "required": ["UrbanDataset"]},
        "ScpsLoginRequest": _request({"username": {"type": "string"},
                                      "password": {"type": "string"}},
                                     ["username", "password"], "The gateway's credentials."),
        "ScpsPushRequest": _request({"resource_id": _RESOURCE,
                                     "dataset": ref("UrbanDatasetDocument")},
                                    ["resource_id", "dataset"], "A document to push."),
        "ScpsResourceRequest": _request({"resource_id": _RESOURCE}, ["resource_id"],
                                        "Which resource."),
        "ScpsSpecificRequest": _request({"resource_id": _RESOURCE, "timestamp": _TIMESTAMP},
                                        ["resource_id", "timestamp"],
                                        "Which document of which resource."),
        "ScpsSearchRequest": _request(_SEARCH, ["resource_id"], "Context-level filters."),
        "ScpsDeepSearchRequest": _request({
            **_SEARCH,
            "property_label": {"type": "string", "description": "Name of a line property."},
            "property_value": {"type": "string", "description": "Value of a line property."},
        }, ["resource_id"], "Line-level filters."),
        "ScpsPropertySearchRequest": _request({
            **_SEARCH, "property_name": {"type": "string"},
            "property_value": {"type": "string"}},
            ["resource_id", "property_name", "property_value"],
            "A property value (line level) and context-level filters."),
    }


# -- examples ---------------------------------------------------------------------------------

def _document() -> dict[str, Any]:
    return {"UrbanDataset": {
        "specification": {
            "version": "2.0", "id": {"value": "CounterReading-2.0", "schemeID": "SCPS"},
            "name": "Counter Reading",
            "uri": "https://smartcityplatform.enea.it/specification/semantic/2.0/ontology/"
                   "scps-ontology-2.0.owl#CounterReading"},
        "context": {"producer": {"id": "PELL-Milano-Illuminazione", "schemeID": "SCPS"},
                    "timeZone": "UTC+1", "timestamp": TIMESTAMP,
                    "coordinates": {"format": "WGS84-DD", "latitude": 45.4642,
                                    "longitude": 9.19}},
        "values": {"line": [{
            "id": 1,
            "coordinates": {"format": "WGS84-DD", "latitude": 45.4781, "longitude": 9.2262},
            "period": {"start_ts": "2026-11-20T00:00:00", "end_ts": "2026-11-20T00:15:00"},
            "property": [{"name": "PODID", "val": "IT001E00112233"},
                         {"name": "TotalActiveEnergy", "val": "15820.500"}]}]}}}


def _error(code: str, message: str, detail: str) -> dict[str, Any]:
    return {"code": code, "message": message, "detail": detail}


def _examples() -> dict[str, Any]:
    found = {"code": Code.FOUND, "message": "Request Successful"}
    return {
        "ScpsTest": example("The gateway is up", {"code": Code.SUCCESSFUL,
                                                  "message": "Successful"}),
        "ScpsLogin": example("The gateway's credentials",
                             {"username": "comune-milano", "password": "change-me"}),
        "ScpsLoggedIn": example("Logged in", {
            "code": Code.AUTHENTICATED, "message": "Authentication Successful",
            "token": "Te2H5YU1riG48Am7vJmw4rW6OipRd7hvLDnA-bpdDwo",
            "expires_at": "2026-11-20T02:05:00Z"}),
        "ScpsWrongPassword": example("Wrong credentials", _error(
            Code.AUTHENTICATION_FAILED, "Authentication Failed", "wrong username or password")),
        "ScpsLoginDisabled": example("No credentials are set", _error(
            Code.LOGIN_DISABLED, "Login Disabled", "the gateway has no credentials: set "
            "SINERGIA_SCPS_USERNAME and SINERGIA_SCPS_PASSWORD (or --scps-username/"
            "--scps-password)")),
        "ScpsUnauthorized": example("No valid token", _error(
            Code.UNAUTHORIZED, "Unauthorized", "this operation needs the header "
            "Authorization: Bearer <token>, with the token /login gives")),
        "ScpsTokenExpired": example("The token expired", _error(
            Code.TOKEN_EXPIRED, "Token Expired", "the token has expired: log in again")),
        "ScpsLoggedOut": example("Logged out", {"code": Code.SUCCESSFUL,
                                                "message": "Logout Successful"}),
        "ScpsAlive": example("The token is valid", {
            "code": Code.SUCCESSFUL, "message": "Successful", "username": "comune-milano",
            "expires_at": "2026-11-20T02:05:00Z"}),
        "ScpsPush": example("A counter reading of PELL Milano",
                            {"resource_id": RESOURCE_ID, "dataset": _document()}),
        "ScpsPushed": example("Pushed and imported", {
            "code": Code.PUSHED, "message": "Push Successful",
            "detail": "1 of 1 lines imported into 1 entity (6 new values)"}),
        "ScpsAlreadyExists": example("Pushed before", _error(
            Code.ALREADY_EXISTS, "Push Failed", "UrbanDataset already exists")),
        "ScpsInvalid": example("Not of the resource's UrbanDataset", _error(
            Code.INVALID_URBANDATASET, "Invalid UrbanDataset",
            "the document is a AirMonitoring-2.0 UrbanDataset, but resource_id "
            f"{RESOURCE_ID} is for CounterReading")),
        "ScpsBadRequest": example("A malformed request", _error(
            Code.BAD_REQUEST, "Bad Request", "resource_id is required")),
        "ScpsResource": example("One resource", {"resource_id": RESOURCE_ID}),
        "ScpsDocuments": example("Its documents", {**found, "dataset": [_document()]}),
        "ScpsDocument": example("One document", {**found, "dataset": _document()}),
        "ScpsNotFound": example("No such document", _error(
            Code.NOT_FOUND, "UrbanDataset Not Found",
            f"no UrbanDataset for resource_id {RESOURCE_ID}")),
        "ScpsSpecific": example("One document of a resource",
                                {"resource_id": RESOURCE_ID, "timestamp": TIMESTAMP}),
        "ScpsDeleted": example("Deleted", {"code": Code.DELETED,
                                           "message": "Delete Successful"}),
        "ScpsSearch": example("Produced on 20 November within 2 km of the Duomo", {
            "resource_id": RESOURCE_ID, "period_start": "2026-11-20T00:00:00",
            "period_end": "2026-11-20T23:59:59", "center_latitude": "45.4642",
            "center_longitude": "9.19", "distance": "2000"}),
        "ScpsDeepSearch": example("One meter's lines in the first hour", {
            "resource_id": RESOURCE_ID, "period_start": "2026-11-20T00:00:00",
            "period_end": "2026-11-20T01:00:00", "property_label": "PODID",
            "property_value": "IT001E00112233"}),
        "ScpsPropertySearch": example("One meter's lines", {
            "resource_id": RESOURCE_ID, "property_name": "PODID",
            "property_value": "IT001E00112233"}),
    }


def components() -> dict[str, dict[str, Any]]:
    return {"schemas": _schemas(), "examples": _examples(), "securitySchemes": {
        "scpsBearer": {"type": "http", "scheme": "bearer", "description": (
            "The token `/login` gives, valid `scps_token_ttl` seconds.")}}}


# -- paths ------------------------------------------------------------------------------------

_DENIED: Final = ("ScpsUnauthorized", "ScpsTokenExpired")


def _op(name: str, summary: str, description: str, *, request: str | None,
        request_examples: tuple[str, ...] = (), answer_schema: str = "ScpsAnswer",
        answers: tuple[str, ...], secured: bool = True) -> dict[str, Any]:
    shown = answers + (_DENIED if secured else ())
    op = operation(
        f"scps{name[0].upper()}{name[1:]}", TAG, summary, description,
        body=None if request is None else body({JSON: media(ref(request), *request_examples)},
                                                "The request."),
        responses={"200": answer("Always HTTP 200: the outcome is the code in the body.",
                                 {JSON: media(ref(answer_schema), *shown)})})
    if secured:
        op["security"] = SECURITY
    return op


def paths() -> dict[str, Any]:
    def at(name: str) -> str:
        return f"{PREFIX}/{name}"

    test_description = ("Answers code 00 when the gateway is up; needs no token. A client "
                        "calls it to check it has the right address.")
    return {
        at("test"): {
            "get": _op("testGet", "Is the gateway up", test_description, request=None,
                       answers=("ScpsTest",), secured=False),
            "post": _op("test", "Is the gateway up", test_description, request=None,
                        answers=("ScpsTest",), secured=False)},
        at("login"): {"post": _op(
            "login", "Log in", "Gives a bearer token for the other operations, valid for "
            "`scps_token_ttl` seconds. Refused (code 11) while the gateway has no "
            "credentials set.", request="ScpsLoginRequest", request_examples=("ScpsLogin",),
            answer_schema="ScpsLoginAnswer",
            answers=("ScpsLoggedIn", "ScpsWrongPassword", "ScpsLoginDisabled"),
            secured=False)},
        at("logout"): {"post": _op(
            "logout", "Log out", "Ends the token: it is refused from now on.", request=None,
            answers=("ScpsLoggedOut",))},
        at("isAlive"): {"post": _op(
            "isAlive", "Is the token valid", "Answers code 00 with the user and the expiry "
            "while the token is valid; 12 or 13 when the client must log in again.",
            request=None, answer_schema="ScpsAliveAnswer", answers=("ScpsAlive",))},
        at("push"): {"post": _op(
            "push", "Push an UrbanDataset", "Keeps the document (per resource id and "
            "context.timestamp) and imports its lines into the broker as entities' history "
            "and current state; the detail says what was imported, repaired and skipped. A "
            "document already kept answers code 22.", request="ScpsPushRequest",
            request_examples=("ScpsPush",),
            answers=("ScpsPushed", "ScpsAlreadyExists", "ScpsInvalid", "ScpsBadRequest"))},
        at("basicRequest"): {"post": _op(
            "basicRequest", "Every document of a resource", "Every kept document of the "
            "resource, as pushed, oldest context.timestamp first.",
            request="ScpsResourceRequest", request_examples=("ScpsResource",),
            answer_schema="ScpsDatasetsAnswer", answers=("ScpsDocuments", "ScpsBadRequest"))},
        at("lastRequest"): {"post": _op(
            "lastRequest", "The latest document", "The kept document of the resource with "
            "the latest context.timestamp.", request="ScpsResourceRequest",
            request_examples=("ScpsResource",), answer_schema="ScpsDatasetsAnswer",
            answers=("ScpsDocument", "ScpsNotFound"))},
        at("specificRequest"): {"post": _op(
            "specificRequest", "One document", "The kept document of the resource with this "
            "context.timestamp.", request="ScpsSpecificRequest",
            request_examples=("ScpsSpecific",), answer_schema="ScpsDatasetsAnswer",
            answers=("ScpsDocument", "ScpsNotFound"))},
        at("delete"): {"post": _op(
            "delete", "Delete a document", "Forgets the kept document; the measurements it "
            "brought stay in the entities' history.", request="ScpsSpecificRequest",
            request_examples=("ScpsSpecific",), answers=("ScpsDeleted", "ScpsNotFound"))},
        at("searchingRequest"): {"post": _op(
            "searchingRequest", "Search documents", "The resource's documents produced in "
            "the period and placed within the distance of the centre (context level).",
            request="ScpsSearchRequest", request_examples=("ScpsSearch",),
            answer_schema="ScpsDatasetsAnswer", answers=("ScpsDocuments", "ScpsBadRequest"))},
        at("deepSearchingRequest"): {"post": _op(
            "deepSearchingRequest", "Search lines", "The resource's documents with only "
            "their lines whose period overlaps the period, whose place is within the "
            "distance and which hold the property (line level).",
            request="ScpsDeepSearchRequest", request_examples=("ScpsDeepSearch",),
            answer_schema="ScpsDatasetsAnswer", answers=("ScpsDocuments", "ScpsBadRequest"))},
        at("searchingByPropertyRequest"): {"post": _op(
            "searchingByPropertyRequest", "Search by a property value", "The resource's "
            "documents matching the period and place (context level), with only their lines "
            "holding the property value.", request="ScpsPropertySearchRequest",
            request_examples=("ScpsPropertySearch",), answer_schema="ScpsDatasetsAnswer",
            answers=("ScpsDocuments", "ScpsBadRequest"))},
    }
