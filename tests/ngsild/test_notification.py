"""Notification payloads: formats, projections, showChanges, JSON vs JSON-LD, MQTT envelope."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinergia.ngsild.context import Context, ContextResolver
from sinergia.ngsild.model import CORE_CONTEXT_URL, DEFAULT_VOCAB, Entity
from sinergia.ngsild.notification import (
    RenderCache,
    build_notification,
    link_header,
    previous_instances,
    render_options,
)
from sinergia.ngsild.subscription import Subscription, parse_subscription

EX = "https://example.org/"
V = DEFAULT_VOCAB
NOW = "2026-11-21T10:00:00.000Z"
CONTEXT_URL = "https://example.org/road-context.jsonld"
LINK = f'<{CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#context"; ' \
       'type="application/ld+json"'
CORE: Context = ContextResolver(allow_remote=False).core


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Context:
    path: Path = tmp_path_factory.mktemp("ctx") / "road.jsonld"
    path.write_text(json.dumps({"@context": {
        "Road": EX + "Road", "speed": EX + "speed", "owner": EX + "owner",
        "name": EX + "name", "kind": {"@id": EX + "kind", "@type": "@vocab"},
        "Motorway": EX + "Motorway", "Street": EX + "Street"}}))
    resolver = ContextResolver(context_map={CONTEXT_URL: str(path)}, allow_remote=False)
    return asyncio.run(resolver.resolve(CONTEXT_URL))


def road(speed: Any = 50, **attrs: Any) -> Entity:
    entity: Entity = {
        "id": "urn:ngsi-ld:Road:1", "type": [EX + "Road"],
        "createdAt": "2026-01-01T00:00:00.000Z", "modifiedAt": NOW,
        "attrs": {EX + "speed": [{"type": "Property", "value": speed, "unitCode": "KMH",
                                  "createdAt": "2026-01-01T00:00:00.000Z",
                                  "modifiedAt": NOW}]}}
    entity["attrs"].update(attrs)
    return entity


def subscription(ctx: Context, **notification: Any) -> Subscription:
    """A subscription to Roads; ``lang`` and ``datasetId`` go to the top level, the rest to
    ``notification``."""
    endpoint = {"uri": "http://127.0.0.1:9000/notify"} | notification.pop("endpoint", {})
    top = {key: notification.pop(key) for key in ("lang", "datasetId") if key in notification}
    body = {"id": "urn:ngsi-ld:Subscription:s1", "type": "Subscription",
            "entities": [{"type": "Road"}], **top,
            "notification": {"endpoint": endpoint, **notification}}
    return parse_subscription(body, ctx, now=NOW)


def build(sub: Subscription, entities: list[Entity], ctx: Context,
          previous: dict[str, Any] | None = None, **kw: Any) -> tuple[dict[str, str], Any]:
    headers, body = build_notification(sub, entities, previous, ctx,
                                       notification_id="urn:ngsi-ld:Notification:n1", now=NOW,
                                       **kw)
    return headers, orjson.loads(body)


def test_normalized_json_notification_with_link_header(ctx: Context) -> None:
    sub = subscription(ctx, endpoint={"receiverInfo": [{"key": "X-Auth", "value": "k"}]})
    headers, body = build(sub, [road()], ctx)
    assert headers == {"Content-Type": "application/json", "Link": LINK, "X-Auth": "k"}
    assert body == {
        "id": "urn:ngsi-ld:Notification:n1", "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:s1", "notifiedAt": NOW,
        "data": [{"id": "urn:ngsi-ld:Road:1", "type": "Road",
                  "speed": {"type": "Property", "value": 50, "unitCode": "KMH"}}]}


def test_json_ld_notification_carries_the_context_in_the_body(ctx: Context) -> None:
    sub = subscription(ctx, endpoint={"accept": "application/ld+json"})
    headers, body = build(sub, [road()], ctx)
    assert headers == {"Content-Type": "application/ld+json"}
    assert body["@context"] == CONTEXT_URL
    assert body["data"][0]["speed"]["value"] == 50
    _, core_body = build(subscription(CORE, endpoint={"accept": "application/ld+json"}),
                         [road()], CORE)
    assert core_body["@context"] == CORE_CONTEXT_URL
    assert core_body["data"][0]["type"] == EX + "Road"   # the core context cannot compact it


def test_formats_projection_and_system_attributes(ctx: Context) -> None:
    owner = {"type": "Relationship", "object": "urn:ngsi-ld:Person:7"}
    entity = road(**{EX + "owner": [owner]})
    _, kv = build(subscription(ctx, format="keyValues"), [entity], ctx)
    assert kv["data"] == [{"id": "urn:ngsi-ld:Road:1", "type": "Road", "speed": 50,
                           "owner": "urn:ngsi-ld:Person:7"}]
    _, concise = build(subscription(ctx, format="concise", attributes=["owner"]), [entity], ctx)
    assert concise["data"] == [{"id": "urn:ngsi-ld:Road:1", "type": "Road",
                                "owner": {"object": "urn:ngsi-ld:Person:7"}}]
    _, with_sys = build(subscription(ctx, sysAttrs=True, attributes=["speed"]), [entity], ctx)
    shown = with_sys["data"][0]
    assert shown["createdAt"] == "2026-01-01T00:00:00.000Z" and shown["modifiedAt"] == NOW
    assert shown["speed"]["modifiedAt"] == NOW and "owner" not in shown


def test_lang_picks_one_language(ctx: Context) -> None:
    name = {"type": "LanguageProperty", "languageMap": {"it": "Via Roma", "en": "Rome St"}}
    sub = subscription(ctx, lang="en")
    _, body = build(sub, [road(**{EX + "name": [name]})], ctx)
    assert body["data"][0]["name"] == {"type": "Property", "value": "Rome St", "lang": "en"}


def test_show_changes_adds_the_previous_value_member(ctx: Context) -> None:
    owner = {"type": "Relationship", "object": "urn:ngsi-ld:Person:8"}
    kind = {"type": "VocabProperty", "vocab": EX + "Motorway"}
    after = road(70, **{EX + "owner": [owner], EX + "kind": [kind]})
    previous = {"urn:ngsi-ld:Road:1": {
        EX + "speed": [{"type": "Property", "value": 50}],
        EX + "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:7"}],
        EX + "kind": [{"type": "VocabProperty", "vocab": EX + "Street"}]}}
    _, body = build(subscription(ctx, showChanges=True), [after], ctx, previous)
    data = body["data"][0]
    assert data["speed"]["value"] == 70 and data["speed"]["previousValue"] == 50
    assert data["owner"]["previousObject"] == "urn:ngsi-ld:Person:7"
    assert data["kind"] == {"type": "VocabProperty", "vocab": "Motorway",
                            "previousVocab": "Street"}

    _, concise = build(subscription(ctx, showChanges=True, format="concise"),
                       [road(70)], ctx, {"urn:ngsi-ld:Road:1": previous["urn:ngsi-ld:Road:1"]})
    assert concise["data"][0]["speed"] == {"value": 70, "unitCode": "KMH",
                                           "previousValue": 50}
    bare = road(70)
    del bare["attrs"][EX + "speed"][0]["unitCode"]
    _, concise_bare = build(subscription(ctx, showChanges=True, format="concise"),
                            [bare], ctx, previous)
    assert concise_bare["data"][0]["speed"] == {"value": 70, "previousValue": 50}

    _, kv = build(subscription(ctx, showChanges=True, format="keyValues"), [after], ctx,
                  previous)
    assert kv["data"][0]["speed"] == 70   # keyValues has no room for previous values

    _, off = build(subscription(ctx), [after], ctx, previous)
    assert "previousValue" not in off["data"][0]["speed"]


def test_show_changes_matches_instances_by_dataset_id(ctx: Context) -> None:
    speeds = [{"type": "Property", "value": 70},
              {"type": "Property", "value": 30, "datasetId": "urn:ds:lane2"},
              {"type": "Property", "value": 10, "datasetId": "urn:ds:new"}]
    entity = road(**{EX + "speed": speeds})
    previous = {"urn:ngsi-ld:Road:1": {EX + "speed": [
        {"type": "Property", "value": 35, "datasetId": "urn:ds:lane2"},
        {"type": "Property", "value": 60}]}}
    _, body = build(subscription(ctx, showChanges=True), [entity], ctx, previous)
    rendered = body["data"][0]["speed"]
    assert [item.get("previousValue") for item in rendered] == [60, 35, None]

    sub = subscription(ctx, showChanges=True, datasetId=["urn:ds:lane2"])
    _, only_lane = build(sub, [entity], ctx, previous)
    assert only_lane["data"][0]["speed"] == {"type": "Property", "value": 30,
                                             "datasetId": "urn:ds:lane2", "previousValue": 35}


def test_deleted_entities_are_sent_as_id_type_and_deleted_at(ctx: Context) -> None:
    _, body = build(subscription(ctx), [road()], ctx, trigger="entityDeleted")
    assert body["data"] == [{"id": "urn:ngsi-ld:Road:1", "type": "Road", "deletedAt": NOW}]


def test_mqtt_endpoints_get_the_metadata_envelope(ctx: Context) -> None:
    sub = subscription(ctx, endpoint={"uri": "mqtt://127.0.0.1:1883/city/roads",
                                      "receiverInfo": [{"key": "X-Auth", "value": "k"}]})
    headers, envelope = build(sub, [road()], ctx, tenant="milano")
    assert headers == {"Content-Type": "application/json", "Link": LINK,
                       "NGSILD-Tenant": "milano", "X-Auth": "k"}
    assert envelope["metadata"] == headers
    assert envelope["body"]["type"] == "Notification"
    assert envelope["body"]["data"][0]["speed"]["value"] == 50


def test_tenant_header_and_link_for_inline_contexts() -> None:
    inline = asyncio.run(ContextResolver(allow_remote=False).resolve({"speed": EX + "speed"}))
    sub = subscription(inline)
    headers, body = build(sub, [road()], inline, tenant="t1")
    assert headers["NGSILD-Tenant"] == "t1"
    assert headers["Link"] == link_header(CORE_CONTEXT_URL)   # one URL is all a Link can say
    assert body["data"][0]["speed"]["value"] == 50
    hosted = "http://broker.example/ngsi-ld/v1/jsonldContexts/abc"
    headers, _ = build(sub, [road()], inline, context_url_override=hosted)
    assert headers["Link"] == link_header(hosted)


def test_previous_instances_takes_what_the_entity_had() -> None:
    before = road(50)
    assert previous_instances(before, [EX + "speed", EX + "missing"]) == {
        EX + "speed": before["attrs"][EX + "speed"]}
    assert previous_instances(None, [EX + "speed"]) == {}


def test_a_render_cache_renders_one_snapshot_once_per_rendering(ctx: Context) -> None:
    cache = RenderCache(size=2)
    entity = road()
    plain, key_values = subscription(ctx), subscription(ctx, format="keyValues")
    bodies = [build(sub, [entity], ctx, cache=cache)[1] for sub in (plain, key_values, plain)]
    assert bodies == [build(sub, [entity], ctx)[1] for sub in (plain, key_values, plain)]
    first = cache.render(entity, ctx, render_options(plain))
    assert cache.render(entity, ctx, render_options(plain)) is first
    # Another snapshot with the same content is another change: rendered on its own.
    assert cache.render(road(), ctx, render_options(plain)) is not first
    assert len(cache._entries) == 2   # bounded: the oldest went


def test_show_changes_never_touches_a_cached_rendering(ctx: Context) -> None:
    cache = RenderCache()
    entity = road(speed=60)
    sub = subscription(ctx, showChanges=True)
    previous = {entity["id"]: previous_instances(road(speed=50), [EX + "speed"])}
    cached = cache.render(entity, ctx, render_options(sub))
    _, body = build(sub, [entity], ctx, previous, cache=cache)
    assert body["data"][0]["speed"]["previousValue"] == 50
    assert "previousValue" not in cached["speed"]
