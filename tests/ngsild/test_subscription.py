"""Subscriptions: parsing and validation, PATCH, storage records and GET rendering."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinergia.ngsild.context import Context, ContextResolver
from sinergia.ngsild.errors import BadRequestData, InvalidRequest, NgsiLdError
from sinergia.ngsild.model import DEFAULT_VOCAB, LOCATION
from sinergia.ngsild.qlang import TypeAnd, TypeOr, evaluate_q
from sinergia.ngsild.subscription import (
    DEFAULT_TRIGGERS,
    Subscription,
    SubscriptionStatus,
    apply_patch,
    from_record,
    parse_subscription,
    render_subscription,
    to_record,
)

EX = "https://example.org/"
V = DEFAULT_VOCAB
NOW = "2026-11-21T10:00:00Z"
LATER = "2026-11-21T11:00:00.000Z"
CORE: Context = ContextResolver(allow_remote=False).core
CUSTOM_SOURCE = {"speed": EX + "speed", "Road": EX + "Road", "ex": EX}
CUSTOM: Context = asyncio.run(ContextResolver(allow_remote=False).resolve(CUSTOM_SOURCE))


def full_body() -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:Subscription:s1", "type": "Subscription",
        "subscriptionName": "traffic", "description": "busy roads",
        "entities": [{"type": "TrafficFlowObserved"},
                     {"type": "Road|(Street;Lane)", "idPattern": "^urn:ngsi-ld:Road:"},
                     {"type": "Road", "id": "urn:ngsi-ld:Road:1"}],
        "watchedAttributes": ["intensity", "speed"],
        "notificationTrigger": ["entityCreated", "attributeUpdated"],
        "q": "intensity>100;speed<30",
        "geoQ": {"georel": "near;maxDistance==500", "geometry": "Point",
                 "coordinates": [9.19, 45.46]},
        "scopeQ": "/Milano/#", "lang": "it,en;q=0.5", "throttling": 5,
        "expiresAt": "2030-01-01T00:00:00Z", "isActive": True,
        "notification": {
            "attributes": ["intensity"], "format": "keyValues", "showChanges": True,
            "sysAttrs": True,
            "endpoint": {"uri": "http://127.0.0.1:9000/notify", "accept": "application/json",
                         "receiverInfo": [{"key": "X-Auth", "value": "secret"}]}},
    }


def minimal_body() -> dict[str, Any]:
    return {"type": "Subscription", "entities": [{"type": "Road"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9000/n"}}}


def parse(body: Any, ctx: Context = CORE) -> Subscription:
    return parse_subscription(body, ctx, now=NOW)


# --- parsing --------------------------------------------------------------------------------


def test_full_subscription_is_parsed_with_names_expanded() -> None:
    sub = parse(full_body(), CUSTOM)
    assert sub.id == "urn:ngsi-ld:Subscription:s1"
    assert sub.name == "traffic" and sub.description == "busy roads"
    assert sub.entities[0].type == V + "TrafficFlowObserved"
    assert sub.entities[1].type == TypeOr((EX + "Road", TypeAnd((V + "Street", V + "Lane"))))
    assert sub.entities[1].id_pattern == "^urn:ngsi-ld:Road:"
    assert sub.entities[1].id_regex is not None
    assert sub.entities[2].id == "urn:ngsi-ld:Road:1"
    assert sub.watched_attributes == (V + "intensity", EX + "speed")
    assert sub.triggers == ("entityCreated", "attributeUpdated")
    assert sub.q is not None and sub.q.text == "intensity>100;speed<30"
    assert dict(sub.q.terms) == {"intensity": V + "intensity", "speed": EX + "speed"}
    road = {"id": "urn:ngsi-ld:Road:1", "type": [EX + "Road"], "attrs": {
        V + "intensity": [{"type": "Property", "value": 120}],
        EX + "speed": [{"type": "Property", "value": 20}]}}
    assert evaluate_q(sub.q.expr, road)
    assert sub.geo_q is not None and sub.geo_q.query.max_distance == 500
    assert sub.geo_q.query.geoproperty == LOCATION
    assert sub.geo_q.predicate({"type": "Point", "coordinates": [9.19, 45.461]})
    assert not sub.geo_q.predicate({"type": "Point", "coordinates": [9.3, 45.46]})
    assert sub.scope_q is not None and sub.scope_q.text == "/Milano/#"
    assert sub.lang == "it,en;q=0.5" and sub.throttling == 5
    assert sub.expires_at == "2030-01-01T00:00:00.000Z" and sub.is_active
    params = sub.notification
    assert params.attributes == (V + "intensity",)
    assert params.format == "keyValues" and params.show_changes and params.sys_attrs
    assert params.endpoint.uri == "http://127.0.0.1:9000/notify"
    assert params.endpoint.receiver_info == (("X-Auth", "secret"),)
    assert sub.context == CUSTOM_SOURCE
    assert sub.created_at == sub.modified_at == "2026-11-21T10:00:00.000Z"


def test_defaults_and_generated_id() -> None:
    sub = parse(minimal_body())
    assert sub.id.startswith("urn:ngsi-ld:Subscription:")
    assert parse(minimal_body()).id != sub.id
    assert sub.triggers == DEFAULT_TRIGGERS == ("entityCreated", "attributeCreated",
                                                "attributeUpdated")
    assert sub.is_active and sub.expires_at is None and sub.throttling is None
    assert sub.watched_attributes == () and sub.q is None and sub.geo_q is None
    assert sub.notification.format == "normalized"
    assert sub.notification.endpoint.accept == "application/json"
    assert not sub.notification.show_changes and not sub.notification.sys_attrs
    assert sub.context is None and not sub.is_periodic


def test_watched_attributes_alone_and_periodic_subscriptions() -> None:
    body = {"watchedAttributes": ["speed"],
            "notification": {"endpoint": {"uri": "https://example.org/n"}}}
    assert parse(body, CUSTOM).watched_attributes == (EX + "speed",)
    periodic = minimal_body() | {"timeInterval": 60}
    sub = parse(periodic)
    assert sub.is_periodic and sub.time_interval == 60


def test_mqtt_endpoints_and_notifier_info() -> None:
    body = minimal_body()
    body["notification"]["endpoint"] = {
        "uri": "mqtts://user:pw@broker.example.org:8883/city/alerts",
        "accept": "application/ld+json",
        "notifierInfo": [{"key": "MQTT-QoS", "value": "2"},
                         {"key": "MQTT-Version", "value": "mqtt5.0"}]}
    endpoint = parse(body).notification.endpoint
    assert endpoint.is_mqtt and endpoint.scheme == "mqtts" and endpoint.mqtt_qos == 2
    assert endpoint.accept == "application/ld+json"


def _set(path: str, value: Any) -> dict[str, Any]:
    body = full_body()
    *parents, last = path.split(".")
    target: Any = body
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return body


_DELETE = object()

INVALID = [
    ("id", "not a uri", "id must be an absolute URI"),
    ("type", "Subscriptions", "type must be 'Subscription'"),
    ("notification", _DELETE, "'notification' is required"),
    ("notification.endpoint", _DELETE, "notification.endpoint is required"),
    ("notification.endpoint.uri", _DELETE, "notification.endpoint.uri is required"),
    ("notification.endpoint.uri", "ftp://example.org/x", "http, https, mqtt or mqtts"),
    ("notification.endpoint.uri", "http://", "names no host"),
    ("notification.endpoint.uri", "http://h:99999/n", "not a valid URL"),
    ("notification.endpoint.uri", "mqtt://broker:1883", "names no topic"),
    ("notification.endpoint.uri", "mqtt://broker/a/#", "wildcards"),
    ("notification.endpoint.accept", "text/plain", "application/json or application/ld+json"),
    ("notification.endpoint.receiverInfo", [{"key": "Bad Header", "value": "x"}],
     "not a valid header name"),
    ("notification.endpoint.receiverInfo", [{"key": "Content-Type", "value": "x"}],
     "set by the broker"),
    ("notification.endpoint.receiverInfo", [{"key": "X-A", "value": "a\r\nb"}],
     "not a valid header value"),
    ("notification.endpoint.receiverInfo", [{"key": "X-A"}], "exactly 'key' and 'value'"),
    ("notification.endpoint.notifierInfo", [{"key": "MQTT-QoS", "value": "3"}], "MQTT-QoS"),
    ("notification.endpoint.notifierInfo", [{"key": "Other", "value": "3"}],
     "unknown notifierInfo key"),
    ("notification.endpoint.timeout", 1000, "'timeout' is not supported"),
    ("notification.format", "xml", "normalized, concise or keyValues"),
    ("notification.showChanges", "yes", "showChanges must be true or false"),
    ("notification.attributes", "intensity", "non-empty array of attribute names"),
    ("notification.attributes", ["bad name"], "forbidden character"),
    ("notification.extra", 1, "unknown member 'extra'"),
    ("entities", [], "non-empty array"),
    ("entities", [{"id": "urn:x:1"}], "'type' is required"),
    ("entities", [{"type": "Road", "id": "urn:x:1", "idPattern": ".*"}], "not both"),
    ("entities", [{"type": "Road", "idPattern": "(unclosed"}], "not a valid regular"),
    ("entities", [{"type": "Road", "id": "no uri"}], "id must be an absolute URI"),
    ("entities", [{"type": "Road|"}], "entities[0].type"),
    ("entities", [{"type": 3}], "entities[0].type must be"),
    ("entities", [{"type": "Road", "colour": "red"}], "unknown member 'colour'"),
    ("watchedAttributes", [], "non-empty array"),
    ("notificationTrigger", ["entityChanged"], "unknown trigger 'entityChanged'"),
    ("notificationTrigger", [], "non-empty array"),
    ("q", "intensity>>3", "q: unexpected"),
    ("q", "", "q must be a non-empty string"),
    ("geoQ", {"georel": "within", "geometry": "Point"}, "'coordinates' missing"),
    ("geoQ", {"georel": "near", "geometry": "Point", "coordinates": [9, 45]},
     "near needs a distance"),
    ("geoQ", {"georel": "inside", "geometry": "Point", "coordinates": [9, 45]}, "georel"),
    ("scopeQ", "Milano", "scopeQ"),
    ("lang", "it;x", "lang must be a language tag"),
    ("throttling", -1, "throttling must be a finite number"),
    ("throttling", True, "throttling must be a number"),
    ("throttling", 10**400, "finite number"),
    ("expiresAt", "2020-01-01T00:00:00Z", "not in the future"),
    ("expiresAt", "tomorrow", "expiresAt must be an ISO 8601"),
    ("isActive", "true", "isActive must be true or false"),
    ("watchedAttribute", ["speed"], "unknown member 'watchedAttribute'"),
    ("temporalQ", {"timerel": "after"}, "'temporalQ' is not supported"),
    ("datasetId", [], "non-empty array"),
    ("jsonldContext", "not a uri", "jsonldContext must be an absolute URI"),
]


@pytest.mark.parametrize(("path", "value", "message"), INVALID,
                         ids=[f"{p}={str(v)[:30]}" for p, v, _ in INVALID])
def test_invalid_members_are_rejected_with_a_clear_detail(path: str, value: Any,
                                                          message: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        parse(_set(path, value))
    assert message in caught.value.detail


def test_cross_member_rules() -> None:
    neither = minimal_body()
    del neither["entities"]
    with pytest.raises(BadRequestData, match="needs 'entities' or 'watchedAttributes'"):
        parse(neither)
    for extra in ({"watchedAttributes": ["a"]}, {"throttling": 3},
                  {"notificationTrigger": ["entityDeleted"]}):
        with pytest.raises(BadRequestData, match=r"timeInterval .* cannot be combined"):
            parse(minimal_body() | {"timeInterval": 10} | extra)
    with pytest.raises(BadRequestData, match="timeInterval must be"):
        parse(minimal_body() | {"timeInterval": 0})


@pytest.mark.parametrize("body", [[], "x", 3, None])
def test_a_body_that_is_not_an_object_is_an_invalid_request(body: Any) -> None:
    with pytest.raises(InvalidRequest):
        parse(body)


def test_members_the_broker_keeps_are_ignored_on_input() -> None:
    body = minimal_body() | {"status": "paused", "createdAt": "2000-01-01T00:00:00Z",
                             "@context": "https://example.org/ctx.jsonld"}
    body["notification"] |= {"status": "failed", "timesSent": 9, "lastFailure": "x"}
    sub = parse(body)
    assert sub.is_active and sub.created_at == "2026-11-21T10:00:00.000Z"


# --- records ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ctx", [CORE, CUSTOM], ids=["core", "custom"])
def test_record_round_trip_needs_no_context(ctx: Context) -> None:
    sub = parse(full_body(), ctx)
    record = to_record(sub)
    restored = from_record(orjson.loads(orjson.dumps(record)))
    assert restored == sub
    assert restored.q is not None and sub.q is not None and restored.q.expr == sub.q.expr
    assert restored.entities[1].id_regex is not None
    assert restored.geo_q is not None
    assert restored.geo_q.predicate({"type": "Point", "coordinates": [9.19, 45.461]})
    if ctx is CUSTOM:
        assert record["watchedAttributes"] == [V + "intensity", EX + "speed"]
        assert record["qTerms"]["speed"] == EX + "speed"
        assert EX + "Road" in record["entities"][1]["type"]


def test_huge_numbers_are_kept_as_json_safe_floats() -> None:
    sub = parse(minimal_body() | {"throttling": 10**30})
    assert sub.throttling == 1e30 and isinstance(sub.throttling, float)
    assert orjson.loads(orjson.dumps(to_record(sub)))["throttling"] == 1e30
    assert parse(minimal_body() | {"throttling": 7}).throttling == 7


def test_record_of_a_minimal_subscription() -> None:
    sub = parse(minimal_body())
    assert from_record(to_record(sub)) == sub


# --- rendering -------------------------------------------------------------------------------


def test_render_compacts_names_and_shows_status() -> None:
    sub = parse(full_body(), CUSTOM)
    status = SubscriptionStatus(times_sent=3, times_failed=1,
                                last_notification="2026-11-21T10:05:00.000Z",
                                last_success="2026-11-21T10:05:00.000Z",
                                last_failure="2026-11-21T10:01:00.000Z",
                                notification_status="ok")
    out = render_subscription(sub, status, CUSTOM, now=NOW)
    assert out["id"] == "urn:ngsi-ld:Subscription:s1" and out["type"] == "Subscription"
    assert out["entities"] == [{"type": "TrafficFlowObserved"},
                               {"idPattern": "^urn:ngsi-ld:Road:", "type": "Road|(Street;Lane)"},
                               {"id": "urn:ngsi-ld:Road:1", "type": "Road"}]
    assert out["watchedAttributes"] == ["intensity", "speed"]
    assert out["q"] == "intensity>100;speed<30"
    assert out["geoQ"] == {"georel": "near;maxDistance==500", "geometry": "Point",
                           "coordinates": [9.19, 45.46]}
    assert out["throttling"] == 5 and out["status"] == "active" and out["isActive"] is True
    notification = out["notification"]
    assert notification["attributes"] == ["intensity"]
    assert notification["status"] == "ok"
    assert notification["timesSent"] == 3 and notification["timesFailed"] == 1
    assert notification["lastSuccess"] == "2026-11-21T10:05:00.000Z"
    assert notification["lastFailure"] == "2026-11-21T10:01:00.000Z"
    assert notification["endpoint"]["receiverInfo"] == [{"key": "X-Auth", "value": "secret"}]
    assert "createdAt" not in out
    assert render_subscription(sub, status, CUSTOM, now=NOW, sys_attrs=True)["createdAt"]


def test_render_with_another_context_shows_what_it_cannot_compact_in_full() -> None:
    sub = parse(full_body(), CUSTOM)
    out = render_subscription(sub, SubscriptionStatus(), CORE, now=NOW)
    assert out["watchedAttributes"] == ["intensity", EX + "speed"]
    assert EX + "speed" in out["q"]
    assert out["entities"][1]["type"] == EX + "Road|(Street;Lane)"
    assert "status" not in out["notification"]   # nothing sent yet


def test_status_is_expired_then_paused_then_active() -> None:
    body = minimal_body() | {"expiresAt": "2026-11-21T10:30:00Z"}
    sub = parse(body)
    assert sub.status(NOW) == "active"
    assert sub.status("2026-11-21T10:30:00Z") == "expired"
    paused = parse(body | {"isActive": False})
    assert paused.status(NOW) == "paused"
    assert paused.status(LATER) == "expired"
    rendered = render_subscription(paused, SubscriptionStatus(), CORE, now=LATER)
    assert rendered["status"] == "expired"


def test_what_get_shows_can_be_posted_back() -> None:
    sub = parse(full_body(), CUSTOM)
    shown = render_subscription(sub.__class__(**{**_fields(sub), "is_active": False}),
                                SubscriptionStatus(times_sent=2, notification_status="failed"),
                                CUSTOM, now=NOW, sys_attrs=True)
    again = parse(shown, CUSTOM)
    assert again == sub.__class__(**{**_fields(sub), "is_active": False})


def _fields(sub: Subscription) -> dict[str, Any]:
    return {name: getattr(sub, name) for name in sub.__dataclass_fields__}


# --- PATCH -----------------------------------------------------------------------------------


def test_patch_replaces_members_and_merges_notification() -> None:
    sub = parse(full_body(), CUSTOM)
    before = copy.deepcopy(to_record(sub))
    patched = apply_patch(sub, {"q": "speed>50", "notification": {"format": "concise"},
                                "isActive": False}, CORE, LATER)
    assert to_record(sub) == before   # the original is untouched
    assert patched.q is not None and patched.q.text == "speed>50"
    assert dict(patched.q.terms) == {"speed": V + "speed"}   # expanded with the patch's ctx
    assert patched.notification.format == "concise"
    assert patched.notification.endpoint == sub.notification.endpoint
    assert patched.notification.attributes == sub.notification.attributes
    assert not patched.is_active
    assert patched.created_at == sub.created_at and patched.modified_at == LATER
    assert patched.context == CUSTOM_SOURCE   # a patch without @context keeps the old one


def test_patch_merges_endpoint_and_deletes_members_given_null() -> None:
    sub = parse(full_body())
    patched = apply_patch(sub, {
        "q": None, "geoQ": "urn:ngsi-ld:null", "throttling": None, "expiresAt": None,
        "notificationTrigger": None,
        "notification": {"attributes": None, "endpoint": {"accept": "application/ld+json",
                                                          "receiverInfo": None}}},
        CORE, LATER)
    assert patched.q is None and patched.geo_q is None and patched.throttling is None
    assert patched.expires_at is None and patched.triggers == DEFAULT_TRIGGERS
    assert patched.notification.attributes == ()
    assert patched.notification.endpoint.accept == "application/ld+json"
    assert patched.notification.endpoint.uri == sub.notification.endpoint.uri
    assert patched.notification.endpoint.receiver_info == ()


def test_patch_with_a_context_makes_it_the_subscription_context() -> None:
    sub = parse(minimal_body())
    patched = apply_patch(sub, {"watchedAttributes": ["speed"]}, CUSTOM, LATER)
    assert patched.watched_attributes == (EX + "speed",)
    assert patched.context == CUSTOM_SOURCE


@pytest.mark.parametrize(("patch", "message"), [
    ({"id": "urn:ngsi-ld:Subscription:other"}, "cannot be changed"),
    ({"type": "Entity"}, "type must be 'Subscription'"),
    ({"expiresAt": "2026-11-21T10:59:00Z"}, "not in the future"),
    ({"notification": None}, "notification cannot be deleted"),
    ({"notification": {"endpoint": None}}, "endpoint cannot be deleted"),
    ({"notification": {"endpoint": {"uri": None}}}, "uri cannot be deleted"),
    ({"notification": {"endpoint": {"uri": "gopher://x/y"}}}, "http, https, mqtt or mqtts"),
    ({"timeInterval": 30}, "cannot be combined"),
    ({"entities": None, "watchedAttributes": None}, "needs 'entities' or 'watchedAttributes'"),
    ({"wachtedAttributes": ["a"]}, "unknown member"),
    ({"q": "a=="}, "q:"),
])
def test_invalid_patches_are_rejected(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        apply_patch(parse(full_body()), patch, CORE, LATER)
    assert message in caught.value.detail


def test_patch_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest):
        apply_patch(parse(minimal_body()), ["q"], CORE, LATER)


def test_status_transitions_count_deliveries() -> None:
    status = SubscriptionStatus().after_failure("t1").after_failure("t2")
    assert (status.times_sent, status.times_failed) == (2, 2)
    assert status.notification_status == "failed" and status.last_failure == "t2"
    recovered = status.after_success("t3")
    assert recovered.notification_status == "ok" and recovered.last_success == "t3"
    assert (recovered.times_sent, recovered.times_failed) == (3, 2)
    assert recovered.last_notification == "t3" and recovered.last_failure == "t2"


# --- property tests --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)

MEMBERS = ["id", "type", "entities", "watchedAttributes", "notificationTrigger", "q", "geoQ",
           "scopeQ", "lang", "throttling", "timeInterval", "expiresAt", "isActive",
           "notification", "datasetId", "subscriptionName", "jsonldContext"]
NOTIFICATION_MEMBERS = ["attributes", "format", "showChanges", "sysAttrs", "endpoint"]
ENDPOINT_MEMBERS = ["uri", "accept", "receiverInfo", "notifierInfo"]

member_values = st.one_of(
    json_values,
    st.sampled_from(["Road", "a;b|c", "(x", "intensity>1", "speed==1..2", "/A/#", "/+",
                     "2030-01-01T00:00:00Z", "mqtt://h/t", "http://h:1/n", "urn:ngsi-ld:x",
                     "entityCreated", "keyValues", "application/ld+json", "near;maxDistance==1"]),
    st.fixed_dictionaries({"georel": st.sampled_from(["within", "near;minDistance==3",
                                                      "intersects", "equals"]),
                           "geometry": st.sampled_from(["Point", "Polygon", "LineString"]),
                           "coordinates": json_values}),
)


@st.composite
def mutated_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = full_body()
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "notification", "endpoint"]))
        target: Any = body
        names = MEMBERS
        if where != "top":
            target, names = target.get("notification"), NOTIFICATION_MEMBERS
        if where == "endpoint" and isinstance(target, dict):
            target, names = target.get("endpoint"), ENDPOINT_MEMBERS
        if not isinstance(target, dict):
            break
        target[draw(st.sampled_from(names))] = draw(member_values)
    return body


def _only_ngsi_ld_errors(body: Any) -> None:
    try:
        sub = parse(body)
    except NgsiLdError:
        return
    assert from_record(orjson.loads(orjson.dumps(to_record(sub)))) == sub
    render_subscription(sub, SubscriptionStatus(), CORE, now=NOW)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_raises_only_ngsi_ld_errors(body: Any) -> None:
    _only_ngsi_ld_errors(body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_bodies())
def test_mutated_subscriptions_raise_only_ngsi_ld_errors(body: dict[str, Any]) -> None:
    _only_ngsi_ld_errors(body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(MEMBERS), member_values, max_size=4))
def test_arbitrary_patches_raise_only_ngsi_ld_errors(patch: dict[str, Any]) -> None:
    try:
        sub = apply_patch(parse(full_body()), patch, CORE, LATER)
    except NgsiLdError:
        return
    assert from_record(to_record(sub)) == sub
