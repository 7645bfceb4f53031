"""The subscription part of the OpenAPI description: ``/ngsi-ld/v1/subscriptions`` (create,
list, read, change, delete), the Subscription and Notification shapes, and the notification
the broker POSTs to a subscriber, described as an OpenAPI callback.

The enumerations (triggers, formats, endpoint schemes, MQTT options) are read from
:mod:`sinergia.ngsild.subscription`, which validates subscriptions, so the description and
the broker cannot disagree about them."""

from __future__ import annotations

from typing import Any, Final

from sinergia.api.http import JSON, JSON_LD, MERGE_PATCH
from sinergia.api.openapi_builders import (
    BODY_ERRORS,
    COMMON,
    NGSI,
    NO_CONTENT,
    PAGING,
    STRINGS,
    TIME,
    URI,
    array,
    body,
    errors,
    example,
    header_ref,
    media,
    operation,
    path,
    ref,
    response,
)
from sinergia.api.openapi_schemas import LINK_EXAMPLE, STREETLIGHT_ID, TRAFFIC_ID
from sinergia.ngsild.model import CORE_CONTEXT_URL, NULL_URI
from sinergia.ngsild.subscription import (
    ACCEPTS,
    DEFAULT_TRIGGERS,
    ENDPOINT_SCHEMES,
    FORMATS,
    MAX_TEXT,
    MQTT_VERSIONS,
    TRIGGERS,
)

TAG: Final = "Subscriptions"
BASE: Final = f"{NGSI}/subscriptions"
SUBSCRIPTION_ID: Final = "urn:ngsi-ld:Subscription:lights-off-M1"
TRAFFIC_SUBSCRIPTION_ID: Final = "urn:ngsi-ld:Subscription:congestion-duomo"
_TEXT: Final = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
_READ_ONLY: Final = "Kept by the broker: shown by GET, ignored when sent."


# -- schemas -------------------------------------------------------------------------------

def _deletable(schema: dict[str, Any]) -> dict[str, Any]:
    """In a PATCH, ``null`` or ``urn:ngsi-ld:null`` deletes an optional member."""
    return {"anyOf": [schema, {"type": "null"}, {"const": NULL_URI}]}


def _endpoint(fragment: bool) -> dict[str, Any]:
    optional: dict[str, Any] = {
        "accept": {"enum": list(ACCEPTS), "default": JSON, "description": (
            "`application/json` sends the @context in a `Link` header, "
            "`application/ld+json` as `@context` in the body.")},
        "receiverInfo": {**array(ref("KeyValuePair")), "description": (
            "HTTP headers (MQTT metadata) added to every notification, e.g. an API key the "
            "receiver expects. The broker's own headers (Content-Type, Link, ...) cannot be "
            "set.")},
        "notifierInfo": {**array(ref("NotifierInfo")), "description": (
            "Options of the delivery itself; for MQTT endpoints `MQTT-QoS` (`0`, `1` "
            "default, `2`) and `MQTT-Version`.")},
    }
    uri = {**URI, "pattern": "^(" + "|".join(ENDPOINT_SCHEMES) + ")://", "description": (
        "Where notifications go: an http(s) URL, or `mqtt(s)://[user:password@]host[:port]/"
        "topic` (no wildcards in the topic).")}
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "properties": {"uri": uri, **({k: _deletable(v) for k, v in optional.items()}
                                      if fragment else optional)}}
    if not fragment:
        schema["required"] = ["uri"]
    return schema


def _notification_params(fragment: bool) -> dict[str, Any]:
    optional: dict[str, Any] = {
        "attributes": {**STRINGS, "description": "Only these attributes in each notified "
                       "entity; absent or `[]`: all of them."},
        "format": {"enum": list(FORMATS), "default": "normalized",
                   "description": "Representation of the notified entities."},
        "showChanges": {"type": "boolean", "default": False, "description": (
            "Add the value before the change to each changed attribute "
            "(`previousValue`, `previousObject`, ...); not in keyValues.")},
        "sysAttrs": {"type": "boolean", "default": False,
                     "description": "Add createdAt/modifiedAt to the notified entities."},
    }
    status: dict[str, Any] = {
        "status": {"enum": ["ok", "failed"], "description": (
            "How the last delivery went; absent until the first one. " + _READ_ONLY)},
        "timesSent": {"type": "integer", "minimum": 0,
                      "description": "Deliveries attempted. " + _READ_ONLY},
        "timesFailed": {"type": "integer", "minimum": 0,
                        "description": "Deliveries that failed. " + _READ_ONLY},
        "lastNotification": {**TIME, "description": "Last delivery attempt. " + _READ_ONLY},
        "lastSuccess": {**TIME, "description": "Last delivery that worked. " + _READ_ONLY},
        "lastFailure": {**TIME, "description": "Last delivery that failed. " + _READ_ONLY},
        "lastErrorReason": {"type": "string", "description": (
            "Accepted and ignored when sent; this broker does not report it.")},
    }
    status = {name: {**schema, "readOnly": True} for name, schema in status.items()}
    endpoint = ref("EndpointFragment" if fragment else "Endpoint")
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "properties": {**({k: _deletable(v) for k, v in optional.items()}
                          if fragment else optional), "endpoint": endpoint, **status}}
    if not fragment:
        schema["required"] = ["endpoint"]
    return schema


def _subscription(fragment: bool) -> dict[str, Any]:
    optional: dict[str, Any] = {
        "subscriptionName": {**_TEXT, "description": "A name for people."},
        "description": {**_TEXT, "description": "What the subscription is for."},
        "entities": {"type": "array", "minItems": 1, "items": ref("SubscriptionEntities"),
                     "description": "Which entities: any one selector matching is enough."},
        "watchedAttributes": {**STRINGS, "minItems": 1, "description": (
            "Notify only on changes of these attributes; absent: any attribute.")},
        "notificationTrigger": {
            "type": "array", "minItems": 1, "items": {"enum": list(TRIGGERS)},
            "default": list(DEFAULT_TRIGGERS),
            "description": "Which kinds of change notify."},
        "q": {**_TEXT, "description": "Filter on attribute values (NGSI-LD query language), "
              "tested on the entity after the change."},
        "geoQ": {**ref("GeoQuery"), "description": "Filter on place."},
        "scopeQ": {**_TEXT, "description": "Filter on scopes, e.g. `/Milano/#`."},
        "lang": {**_TEXT, "description": "Language(s) for LanguageProperty values in "
                 "notifications, e.g. `it`, `it,en` or `*`."},
        "datasetId": {"oneOf": [URI, {"const": "@none"},
                                {"type": "array", "minItems": 1,
                                 "items": {"anyOf": [URI, {"const": "@none"}]}}],
                      "description": "Only these attribute instances (`@none`: the default "
                                     "instance)."},
        "throttling": {"type": "number", "minimum": 0, "description": (
            "At least this many seconds between two notifications.")},
        "timeInterval": {"type": "number", "exclusiveMinimum": 0, "description": (
            "Periodic subscription: every this many seconds, one notification with every "
            "selected entity, changed or not.")},
        "expiresAt": {**TIME, "description": "After this instant nothing is notified "
                      "(`status` becomes `expired`); must be in the future."},
        "isActive": {"type": "boolean", "default": True,
                     "description": "`false` pauses the subscription."},
        "jsonldContext": {**URI, "description": "The @context notifications are compacted "
                          "with; absent: the one the subscription was sent with."},
    }
    read_only = {"readOnly": True, "description": _READ_ONLY}
    properties: dict[str, Any] = {
        "id": {**URI, "description": "Generated (`urn:ngsi-ld:Subscription:<uuid>`) when "
               "not given; cannot be changed."},
        "type": {"const": "Subscription"},
        **({k: _deletable(v) for k, v in optional.items()} if fragment else optional),
        "notification": ref("NotificationParamsFragment" if fragment else "NotificationParams"),
        "status": {"enum": ["active", "paused", "expired"], **read_only, "description": (
            "`expired` after expiresAt, else `paused` when isActive is false, else "
            "`active`. " + _READ_ONLY)},
        "createdAt": {**TIME, **read_only}, "modifiedAt": {**TIME, **read_only},
        "@context": ref("LdContext"),
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    if fragment:
        schema["description"] = (
            "The members to change. `notification` and its `endpoint` are merged member by "
            "member; other members are replaced; `null` or `urn:ngsi-ld:null` deletes an "
            "optional member.")
        return schema
    about_changes = ("watchedAttributes", "throttling", "notificationTrigger")
    return {**schema, "required": ["notification"], "description": (
        "Tells the broker to notify an endpoint when entities change (or, with "
        "`timeInterval`, periodically). Unknown members are refused, so a misspelt one never "
        "silently subscribes to everything. Members the broker keeps (`status`, `timesSent`, "
        "...) are ignored when sent, so a subscription read with GET can be sent back."),
        "anyOf": [{"required": ["entities"]}, {"required": ["watchedAttributes"]}],
        "dependentSchemas": {"timeInterval": {
            "not": {"anyOf": [{"required": [name]} for name in about_changes]}}}}


def _schemas() -> dict[str, Any]:
    header_token = "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$"
    return {
        "Subscription": _subscription(fragment=False),
        "SubscriptionFragment": _subscription(fragment=True),
        "SubscriptionEntities": {
            "type": "object", "required": ["type"], "additionalProperties": False,
            "description": "A type (or type expression) and optionally an id or an id "
                           "pattern, not both.",
            "properties": {"type": {"type": "string", "examples": ["Streetlight"]},
                           "id": URI,
                           "idPattern": {"type": "string", "format": "regex"}},
            "not": {"required": ["id", "idPattern"]}},
        "NotificationParams": _notification_params(fragment=False),
        "NotificationParamsFragment": _notification_params(fragment=True),
        "Endpoint": _endpoint(fragment=False),
        "EndpointFragment": _endpoint(fragment=True),
        "KeyValuePair": {
            "type": "object", "required": ["key", "value"], "additionalProperties": False,
            "properties": {"key": {"type": "string", "pattern": header_token},
                           "value": {"type": "string", "maxLength": MAX_TEXT}}},
        "NotifierInfo": {
            "type": "object", "required": ["key", "value"], "additionalProperties": False,
            "oneOf": [
                {"properties": {"key": {"const": "MQTT-QoS"},
                                "value": {"enum": ["0", "1", "2"]}}},
                {"properties": {"key": {"const": "MQTT-Version"},
                                "value": {"enum": list(MQTT_VERSIONS)}}}],
            "properties": {"key": {"type": "string"}, "value": {"type": "string"}}},
        "Notification": {
            "type": "object", "required": ["id", "type", "subscriptionId", "notifiedAt", "data"],
            "description": "What the broker sends to a subscription's endpoint. `data` holds "
                           "the entities in the subscription's `format`; an entity deleted "
                           "(trigger entityDeleted) is sent as its id, type and `deletedAt`.",
            "properties": {
                "id": URI, "type": {"const": "Notification"}, "subscriptionId": URI,
                "notifiedAt": TIME,
                "data": array({"anyOf": [ref("EntityRepresentation"), ref("DeletedEntity")]}),
                "@context": ref("LdContext")}},
        "DeletedEntity": {
            "type": "object", "required": ["id", "type", "deletedAt"],
            "additionalProperties": False,
            "properties": {"id": URI, "type": {"oneOf": [{"type": "string"}, STRINGS]},
                           "deletedAt": TIME}},
        "NotificationMqttEnvelope": {
            "type": "object", "required": ["metadata", "body"],
            "description": "What is published to an MQTT endpoint's topic: the headers an "
                           "HTTP notification would have, and the notification.",
            "properties": {"metadata": {"type": "object",
                                        "additionalProperties": {"type": "string"}},
                           "body": ref("Notification")}},
    }


# -- examples ------------------------------------------------------------------------------

def _lights_off() -> dict[str, Any]:
    return {
        "id": SUBSCRIPTION_ID, "type": "Subscription",
        "subscriptionName": "Streetlights switched off in Municipio 1",
        "description": "Tells the lighting maintenance service when a lamp goes dark.",
        "entities": [{"type": "Streetlight", "idPattern": "^urn:ngsi-ld:Streetlight:MI-"}],
        "watchedAttributes": ["powerState"],
        "q": 'powerState=="off"', "scopeQ": "/Milano/Municipio1",
        "notification": {
            "attributes": ["powerState", "location"], "format": "keyValues",
            "endpoint": {"uri": "https://lighting.comune.example/ngsi-ld/notify",
                         "accept": JSON,
                         "receiverInfo": [{"key": "X-Api-Key", "value": "lighting-2026"}]}},
    }


def _congestion() -> dict[str, Any]:
    return {
        "id": TRAFFIC_SUBSCRIPTION_ID, "type": "Subscription",
        "subscriptionName": "Congestion near the Duomo",
        "entities": [{"type": "TrafficFlowObserved"}],
        "watchedAttributes": ["intensity"],
        "notificationTrigger": ["entityCreated", "attributeUpdated"],
        "q": "intensity>1000",
        "geoQ": {"georel": "near;maxDistance==1000", "geometry": "Point",
                 "coordinates": [9.1919, 45.4642]},
        "throttling": 60, "expiresAt": "2049-12-31T23:00:00.000Z",
        "notification": {
            "attributes": ["intensity"], "format": "normalized", "showChanges": True,
            "endpoint": {"uri": "mqtt://mqtt.comune.example:1883/sinergia/traffic",
                         "notifierInfo": [{"key": "MQTT-QoS", "value": "1"},
                                          {"key": "MQTT-Version", "value": "mqtt5.0"}]}},
    }


def _air_quality() -> dict[str, Any]:
    return {
        "type": "Subscription", "subscriptionName": "Hourly air quality for open data",
        "entities": [{"type": "AirQualityObserved",
                      "idPattern": "^urn:ngsi-ld:AirQualityObserved:MI-"}],
        "timeInterval": 3600, "lang": "it",
        "notification": {"format": "concise", "sysAttrs": True, "endpoint": {
            "uri": "https://opendata.comune.example/hooks/air", "accept": JSON_LD}},
        "jsonldContext": CORE_CONTEXT_URL,
    }


def _as_read(sub: dict[str, Any], **notification: Any) -> dict[str, Any]:
    """A subscription as GET shows it: defaults filled in, status members added."""
    sent = sub["notification"]
    return {**sub, "notificationTrigger": sub.get("notificationTrigger",
                                                  list(DEFAULT_TRIGGERS)),
            "isActive": True, "status": "active",
            "notification": {"format": "normalized", "showChanges": False, "sysAttrs": False,
                             **sent, "endpoint": {"accept": JSON, **sent["endpoint"]},
                             **notification}}


def _notification(subscription_id: str, data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Notification:3f1c9a52-6f0e-4d4b-8a9e-0c7d5b2e1a77",
            "type": "Notification", "subscriptionId": subscription_id,
            "notifiedAt": "2026-11-22T07:10:01.250Z", "data": data}


def _examples() -> dict[str, Any]:
    location = {"type": "Point", "coordinates": [9.19, 45.46]}
    lights_off = _as_read(_lights_off(), status="ok", timesSent=42, timesFailed=1,
                          lastNotification="2026-11-22T07:10:01.250Z",
                          lastSuccess="2026-11-22T07:10:01.250Z",
                          lastFailure="2026-11-20T23:41:07.008Z")
    return {
        "LightsOffSubscription": example("Tell maintenance when a lamp in Municipio 1 goes "
                                         "off (HTTP, key-values)", _lights_off()),
        "CongestionSubscription": example(
            "Congested roads near the Duomo, at most once a minute, with the previous "
            "value, over MQTT", _congestion()),
        "AirQualityPeriodic": example("Every hour, all air-quality stations, for open data "
                                      "(id generated)", _air_quality()),
        "LightsOffSubscriptionLd": example("The lamp subscription as JSON-LD, @context in "
                                           "the body",
                                           {**_lights_off(), "@context": CORE_CONTEXT_URL}),
        "LightsOffSubscriptionRead": example("The lamp subscription as GET shows it, with "
                                             "its delivery counters", lights_off),
        "Subscriptions": example("The subscriptions of the tenant", [
            lights_off, _as_read(_congestion(), timesSent=0, timesFailed=0)]),
        "SubscriptionsLd": example("The same as JSON-LD", [
            {**lights_off, "@context": CORE_CONTEXT_URL}]),
        "PauseSubscription": example("Pause it during street works", {"isActive": False}),
        "MoveEndpoint": example("The maintenance service moved; also drop the scope filter",
                                {"notification": {"endpoint": {
                                    "uri": "https://maintenance.comune.example/notify"}},
                                 "scopeQ": NULL_URI}),
        "LightsOffNotification": example("A lamp went off (keyValues)", _notification(
            SUBSCRIPTION_ID, [{"id": STREETLIGHT_ID, "type": "Streetlight",
                               "scope": "/Milano/Municipio1", "powerState": "off",
                               "location": location}])),
        "CongestionNotification": example(
            "Traffic rose above 1000 vehicles/h (showChanges)", _notification(
                TRAFFIC_SUBSCRIPTION_ID, [{
                    "id": TRAFFIC_ID, "type": "TrafficFlowObserved",
                    "intensity": {"type": "Property", "value": 1240, "unitCode": "E50",
                                  "observedAt": "2026-11-22T07:10:00Z",
                                  "previousValue": 980}}])),
        "DeletedNotification": example("A streetlight was dismantled (entityDeleted)",
                                       _notification(SUBSCRIPTION_ID, [{
                                           "id": STREETLIGHT_ID, "type": "Streetlight",
                                           "deletedAt": "2026-11-22T07:10:01.100Z"}])),
        "AirQualityNotificationLd": example("A periodic notification as JSON-LD", {
            "@context": CORE_CONTEXT_URL, **_notification(
                "urn:ngsi-ld:Subscription:0b6f5e1e-3d8c-4c55-9f0a-2e7d1c4b8a90",
                [{"id": "urn:ngsi-ld:AirQualityObserved:MI-Senato", "type": "AirQualityObserved",
                  "no2": {"value": 41.0, "unitCode": "GQ",
                          "observedAt": "2026-11-22T07:00:00Z"}}])}),
    }


# -- components and paths ------------------------------------------------------------------

def components() -> dict[str, dict[str, Any]]:
    return {
        "schemas": _schemas(),
        "examples": _examples(),
        "parameters": {"subscriptionId": path(
            "subscriptionId", "The subscription id (a URI).", SUBSCRIPTION_ID)},
        "headers": {"SubscriptionLocation": {
            "description": "Where the new subscription can be read.",
            "schema": {"type": "string"}, "example": f"{BASE}/{SUBSCRIPTION_ID}"}},
    }


def _callbacks() -> dict[str, Any]:
    headers = [
        {"name": "Link", "in": "header", "description": "The @context of the notification "
         "(endpoint accept `application/json`).", "schema": {"type": "string"},
         "example": LINK_EXAMPLE},
        {"name": "NGSILD-Tenant", "in": "header", "description": "The tenant of the "
         "subscription, when it is not the default one.", "schema": {"type": "string"},
         "example": "milano"}]
    notify = {
        "operationId": "receiveNotification", "tags": [TAG],
        "summary": "A notification sent to the subscriber",
        "description": (
            "When a change matches the subscription (or every `timeInterval` seconds), the "
            "broker POSTs a Notification to `notification.endpoint.uri`, with the "
            "`receiverInfo` entries as extra headers. For an MQTT endpoint it publishes a "
            "NotificationMqttEnvelope to the topic instead. Notifications are written in the "
            "same transaction as the change and delivered at least once: a timeout, a "
            "connection failure, a 5xx, 408 or 429 answer is retried with exponential "
            "backoff; other 4xx answers are not."),
        "parameters": headers,
        "requestBody": body({
            JSON: media(ref("Notification"), "LightsOffNotification",
                        "CongestionNotification", "DeletedNotification"),
            JSON_LD: media(ref("Notification"), "AirQualityNotificationLd")},
            "The notification."),
        "responses": {"200": response("Any 2xx answer means delivered.")}}
    return {"notification": {"{$request.body#/notification/endpoint/uri}": {"post": notify}}}


def paths() -> dict[str, Any]:
    one = f"{BASE}/{{subscriptionId}}"
    read = ref("Subscription")
    fragment = ref("SubscriptionFragment")
    return {
        BASE: {
            "post": operation(
                "createSubscription", TAG, "Subscribe to changes",
                "Asks the broker to notify an endpoint (HTTP or MQTT) when entities change: "
                "e.g. the maintenance service when a streetlight goes off, or an alert app "
                "when traffic near the Duomo passes a threshold. Filters: entity types and "
                "ids, watched attributes, `q`, `geoQ`, `scopeQ`; `timeInterval` makes it "
                "periodic instead. The `Location` header gives its address.",
                params=COMMON,
                body=body({JSON: media(read, "LightsOffSubscription", "CongestionSubscription",
                                       "AirQualityPeriodic"),
                           JSON_LD: media(read, "LightsOffSubscriptionLd")},
                          "The subscription."),
                responses={"201": response("Created.", headers={
                    "Location": header_ref("SubscriptionLocation")}),
                    **errors(*BODY_ERRORS, 409)},
                callbacks=_callbacks()),
            "get": operation(
                "listSubscriptions", TAG, "List subscriptions",
                "Lists the subscriptions of the tenant, in pages, each with its `status` and "
                "delivery counters (`timesSent`, `lastSuccess`, ...): the place to see whether "
                "a receiver has stopped answering.",
                params=(*COMMON, "Accept", *PAGING),
                responses={"200": response("The subscriptions.", {
                    JSON: media(array(read), "Subscriptions"),
                    JSON_LD: media(array(read), "SubscriptionsLd")},
                    {"NGSILD-Results-Count": header_ref("ResultsCount"),
                     "Link": header_ref("Link")}),
                    **errors(400, 403, 406, 503)}),
        },
        one: {
            "get": operation(
                "retrieveSubscription", TAG, "Read a subscription",
                "Returns one subscription, names compacted with the @context of the "
                "request, with its `status` (active, paused or expired) and the broker's "
                "delivery counters.",
                params=(*COMMON, "Accept", "subscriptionId"),
                responses={"200": response("The subscription.", {
                    JSON: media(read, "LightsOffSubscriptionRead"), JSON_LD: media(read)},
                    {"Link": header_ref("Link")}), **errors(400, 404, 406, 503)}),
            "patch": operation(
                "updateSubscription", TAG, "Change a subscription",
                "Changes the members sent and keeps the others, e.g. `isActive: false` to "
                "pause notifications during street works, or a new endpoint.",
                params=(*COMMON, "subscriptionId"),
                body=body({JSON: media(fragment, "PauseSubscription", "MoveEndpoint"),
                           MERGE_PATCH: media(fragment, "PauseSubscription"),
                           JSON_LD: media(fragment)}, "The members to change."),
                responses={**NO_CONTENT, **errors(*BODY_ERRORS, 404)}),
            "delete": operation(
                "deleteSubscription", TAG, "Delete a subscription",
                "Stops the notifications and forgets the subscription; notifications "
                "already on their way may still arrive.",
                params=("Tenant", "subscriptionId"),
                responses={**NO_CONTENT, **errors(400, 404)}),
        },
    }
