"""Subscription matching: the index finds only the candidates, the exact test decides."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from sinergia.broker.matching import Match, SubscriptionIndex, index_types
from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.model import DEFAULT_VOCAB, LOCATION, Entity
from sinergia.ngsild.qlang import TypeAnd, TypeOr
from sinergia.ngsild.subscription import Subscription, parse_subscription

V = DEFAULT_VOCAB
CORE = ContextResolver(allow_remote=False).core
T0 = "2026-11-21T10:00:00.000Z"
ENDPOINT = {"endpoint": {"uri": "http://127.0.0.1:9000/n"}}


def sub(sub_id: str = "s1", **members: Any) -> Subscription:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Subscription:{sub_id}",
                            "notification": ENDPOINT, **members}
    if "entities" not in body and "watchedAttributes" not in body:
        body["entities"] = [{"type": "Road"}]
    return parse_subscription(body, CORE, now=T0)


def road(entity_id: str = "urn:ngsi-ld:Road:1", types: tuple[str, ...] = ("Road",),
         **values: Any) -> Entity:
    entity: Entity = {"id": entity_id, "type": [V + t for t in types],
                      "createdAt": T0, "modifiedAt": T0, "attrs": {}}
    for name, value in values.items():
        entity["attrs"][V + name] = [{"type": "Property", "value": value,
                                      "createdAt": T0, "modifiedAt": T0}]
    return entity


def changed(entity: Entity, at: str = "2026-11-21T10:01:00.000Z", **values: Any) -> Entity:
    """A new version of ``entity``, sharing unchanged instances as the update rules do."""
    new = {**entity, "modifiedAt": at, "attrs": dict(entity["attrs"])}
    for name, value in values.items():
        if value is None:
            new["attrs"].pop(V + name, None)
        else:
            new["attrs"][V + name] = [{"type": "Property", "value": value,
                                       "createdAt": T0, "modifiedAt": at}]
    return new


def index(*subs: Subscription, tenant: str = "") -> SubscriptionIndex:
    idx = SubscriptionIndex()
    for s in subs:
        idx.add(tenant, s)
    return idx


def names(matches: list[Match]) -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted((m.subscription.id.rsplit(":", 1)[1], m.trigger,
                   tuple(a.removeprefix(V) for a in m.attributes)) for m in matches)


# --- the index ---------------------------------------------------------------------------------


def test_index_types_of_type_expressions() -> None:
    assert index_types("A") == {"A"}
    assert index_types(TypeOr(("A", "B"))) == {"A", "B"}
    assert index_types(TypeAnd(("A", "B"))) in ({"A"}, {"B"})
    assert index_types(TypeAnd((TypeOr(("A", "B", "C")), "D"))) == {"D"}
    assert index_types(TypeOr((TypeAnd(("A", "B")), "C"))) in ({"A", "C"}, {"B", "C"})


def test_ten_thousand_other_subscriptions_are_never_evaluated() -> None:
    idx = SubscriptionIndex()
    for i in range(10_000):
        kind = i % 3
        if kind == 0:      # another entity type
            other = sub(f"type{i}", entities=[{"type": f"Other{i % 50}"}])
        elif kind == 1:    # the same type, another watched attribute
            other = sub(f"attr{i}", watchedAttributes=[f"other{i % 50}"])
        else:              # no entities, another watched attribute
            other = parse_subscription({"id": f"urn:ngsi-ld:Subscription:wa{i}",
                                        "watchedAttributes": [f"x{i % 50}"],
                                        "notification": ENDPOINT}, CORE, now=T0)
        idx.add("", other)
    idx.add("", sub("mine", watchedAttributes=["speed"]))
    assert len(idx) == 10_001
    before = road(speed=10)
    matches = idx.match("", before, changed(before, speed=20), T0)
    assert names(matches) == [("mine", "attributeUpdated", ("speed",))]
    assert idx.stats.evaluated == 1


def test_attribute_only_subscriptions_are_found_by_attribute() -> None:
    watcher = parse_subscription({"id": "urn:ngsi-ld:Subscription:wa",
                                  "watchedAttributes": ["speed"], "notification": ENDPOINT},
                                 CORE, now=T0)
    idx = index(watcher)
    before = road(types=("Anything",), speed=1, other=1)
    assert names(idx.match("", before, changed(before, other=2), T0)) == []
    assert names(idx.match("", before, changed(before, speed=2), T0)) == [
        ("wa", "attributeUpdated", ("speed",))]


def test_remove_and_replace_refile_subscriptions() -> None:
    idx = index(sub("s1"))
    entity = road(speed=1)
    assert names(idx.match("", None, entity, T0)) == [("s1", "entityCreated", ("speed",))]
    idx.replace("", sub("s1", entities=[{"type": "Street"}]))
    assert idx.match("", None, entity, T0) == []
    assert len(idx) == 1 and idx.get("", "urn:ngsi-ld:Subscription:s1") is not None
    street = road(types=("Street",), speed=1)
    assert names(idx.match("", None, street, T0)) == [("s1", "entityCreated", ("speed",))]
    assert idx.remove("", "urn:ngsi-ld:Subscription:s1")
    assert not idx.remove("", "urn:ngsi-ld:Subscription:s1")
    assert idx.match("", None, street, T0) == [] and len(idx) == 0


def test_tenants_never_see_each_others_subscriptions() -> None:
    idx = index(sub("s1"), tenant="milano")
    assert idx.match("torino", None, road(speed=1), T0) == []
    assert len(idx.match("milano", None, road(speed=1), T0)) == 1
    assert idx.get("torino", "urn:ngsi-ld:Subscription:s1") is None


def test_periodic_subscriptions_are_not_notified_by_changes() -> None:
    periodic = sub("p", timeInterval=60)
    idx = index(periodic, tenant="t")
    assert idx.match("t", None, road(speed=1), T0) == []
    assert idx.periodic() == [("t", periodic)]
    assert idx.remove("t", periodic.id) and idx.periodic() == []


# --- triggers ----------------------------------------------------------------------------------


def test_default_triggers() -> None:
    idx = index(sub("s1"))
    entity = road(speed=1, lanes=2)
    assert names(idx.match("", None, entity, T0)) == [
        ("s1", "entityCreated", ("speed", "lanes"))]
    assert names(idx.match("", entity, changed(entity, speed=2), T0)) == [
        ("s1", "attributeUpdated", ("speed",))]
    assert names(idx.match("", entity, changed(entity, width=7), T0)) == [
        ("s1", "attributeCreated", ("width",))]
    assert idx.match("", entity, changed(entity, lanes=None), T0) == []   # deleted: not default
    assert idx.match("", entity, None, T0) == []                          # entityDeleted too


@pytest.mark.parametrize(("triggers", "change", "expected"), [
    (["entityDeleted"], "delete", ("entityDeleted", ("speed", "lanes"))),
    (["attributeDeleted"], "delete", None),
    (["attributeDeleted"], "drop lanes", ("attributeDeleted", ("lanes",))),
    (["attributeUpdated"], "create", None),
    (["entityUpdated"], "speed", ("entityUpdated", ("speed",))),
    (["entityUpdated"], "drop lanes", ("entityUpdated", ("lanes",))),
    (["entityUpdated"], "scope", ("entityUpdated", ())),
    (["attributeUpdated"], "scope", None),
    (["attributeCreated", "attributeUpdated"], "speed and width",
     ("attributeCreated", ("width",))),
    (["attributeUpdated"], "speed and width", ("attributeUpdated", ("speed",))),
])
def test_explicit_triggers(triggers: list[str], change: str,
                           expected: tuple[str, tuple[str, ...]] | None) -> None:
    idx = index(sub("s1", notificationTrigger=triggers))
    original = road(speed=1, lanes=2)
    before: Entity | None = original
    after: Entity | None
    if change == "delete":
        after = None
    elif change == "create":
        before, after = None, original
    elif change == "drop lanes":
        after = changed(original, lanes=None)
    elif change == "scope":
        after = {**original, "scope": ["/Milano"], "modifiedAt": "2026-11-21T11:00:00.000Z"}
    elif change == "speed":
        after = changed(original, speed=5)
    else:
        after = changed(original, speed=5, width=3)
    matches = idx.match("", before, after, T0)
    assert names(matches) == ([] if expected is None else [("s1", *expected)])


def test_only_content_changes_count() -> None:
    idx = index(sub("s1", notificationTrigger=["entityUpdated", "attributeUpdated"]))
    before = road(speed=1)
    assert idx.match("", before, {**before, "modifiedAt": "2027-01-01T00:00:00.000Z"},
                     T0) == []
    rewritten = copy.deepcopy(before)   # no shared instances, same content, new timestamps
    rewritten["attrs"][V + "speed"][0]["modifiedAt"] = "2027-01-01T00:00:00.000Z"
    assert idx.match("", before, rewritten, T0) == []
    as_float = copy.deepcopy(before)
    as_float["attrs"][V + "speed"][0]["value"] = 1.0   # 1 and 1.0 are different JSON
    assert names(idx.match("", before, as_float, T0)) == [
        ("s1", "attributeUpdated", ("speed",))]
    observed = copy.deepcopy(before)
    observed["attrs"][V + "speed"][0]["observedAt"] = "2026-11-21T10:05:00.000Z"
    assert len(idx.match("", before, observed, T0)) == 1


def test_watched_attributes_limit_what_notifies() -> None:
    idx = index(sub("s1", watchedAttributes=["speed", "lanes"]))
    before = road(speed=1, lanes=2, colour="grey")
    assert idx.match("", before, changed(before, colour="red"), T0) == []
    assert names(idx.match("", before, changed(before, colour="red", lanes=3, speed=2), T0)) == [
        ("s1", "attributeUpdated", ("speed", "lanes"))]
    assert idx.match("", None, road(colour="red"), T0) == []   # created without watched ones
    assert names(idx.match("", None, road(lanes=1, colour="red"), T0)) == [
        ("s1", "entityCreated", ("lanes",))]


# --- selectors and filters --------------------------------------------------------------------


def test_entity_selectors() -> None:
    idx = index(
        sub("byid", entities=[{"type": "Road", "id": "urn:ngsi-ld:Road:1"}]),
        sub("bypattern", entities=[{"type": "Road", "idPattern": "Road:[2-3]"}]),
        sub("both", entities=[{"type": "Road;Paved"}]),
        sub("either", entities=[{"type": "Street|Paved"}]),
        sub("many", entities=[{"type": "Street"}, {"type": "Road", "id": "urn:ngsi-ld:Road:3"}]),
    )

    def created(entity_id: str, *types: str) -> list[str]:
        return [n for n, _, _ in names(idx.match("", None, road(entity_id, types, a=1), T0))]

    assert created("urn:ngsi-ld:Road:1", "Road") == ["byid"]
    assert created("urn:ngsi-ld:Road:2", "Road") == ["bypattern"]
    assert created("urn:ngsi-ld:Road:3", "Road", "Paved") == ["both", "bypattern", "either",
                                                               "many"]
    assert created("urn:ngsi-ld:Road:9", "Paved") == ["either"]
    assert created("urn:ngsi-ld:Road:9", "Street") == ["either", "many"]


def test_q_is_evaluated_on_the_entity_after_the_change_or_before_a_deletion() -> None:
    idx = index(sub("fast", q="speed>50", notificationTrigger=[
        "entityCreated", "attributeUpdated", "entityDeleted"]))
    slow = road(speed=10)
    assert idx.match("", None, slow, T0) == []
    fast = changed(slow, speed=80)
    assert names(idx.match("", slow, fast, T0)) == [("fast", "attributeUpdated", ("speed",))]
    assert idx.match("", fast, changed(fast, speed=20), T0) == []
    assert names(idx.match("", fast, None, T0)) == [("fast", "entityDeleted", ("speed",))]
    assert idx.match("", slow, None, T0) == []


def test_geo_and_scope_filters() -> None:
    near_duomo = sub("geo", geoQ={"georel": "near;maxDistance==1000", "geometry": "Point",
                                  "coordinates": [9.1900, 45.4642]})
    scoped = sub("scope", scopeQ="/Milano/#")
    idx = index(near_duomo, scoped)

    def located(lon: float, scope: list[str] | None = None) -> Entity:
        entity = road(a=1)
        entity["attrs"][LOCATION] = [{"type": "GeoProperty",
                                      "value": {"type": "Point", "coordinates": [lon, 45.4642]}}]
        if scope is not None:
            entity["scope"] = scope
        return entity

    assert [n for n, _, _ in names(idx.match("", None, located(9.1910), T0))] == ["geo"]
    assert idx.match("", None, located(9.30), T0) == []
    assert [n for n, _, _ in names(idx.match("", None, located(9.30, ["/Milano/Centro"]),
                                             T0))] == ["scope"]
    assert idx.match("", None, located(9.30, ["/Torino"]), T0) == []


def test_inactive_and_expired_subscriptions_do_not_notify() -> None:
    idx = index(sub("paused", isActive=False),
                sub("expiring", expiresAt="2026-11-21T12:00:00Z"))
    entity = road(speed=1)
    assert names(idx.match("", None, entity, "2026-11-21T11:59:59.999Z")) == [
        ("expiring", "entityCreated", ("speed",))]
    assert idx.match("", None, entity, "2026-11-21T12:00:00Z") == []


def test_throttling_skips_notifications_inside_the_window() -> None:
    idx = index(sub("slow", throttling=5), sub("free"))
    before = road(speed=1)

    def notified(at: str, value: int) -> list[str]:
        return [n for n, _, _ in names(idx.match("", before, changed(before, speed=value), at))]

    assert notified("2026-11-21T10:00:00Z", 2) == ["free", "slow"]
    assert notified("2026-11-21T10:00:04.999Z", 3) == ["free"]
    assert notified("2026-11-21T10:00:05Z", 4) == ["free", "slow"]
    idx.add("other", sub("slow", throttling=5))   # the window is per tenant
    assert len(idx.match("other", before, changed(before, speed=9), "2026-11-21T10:00:06Z")) == 1


def test_match_is_safe_while_subscriptions_come_and_go() -> None:
    idx = index(sub("stable"))
    before = road(speed=1)
    after = changed(before, speed=2)
    errors: list[BaseException] = []
    stop = threading.Event()
    seen: list[int] = []

    def churn() -> None:
        try:
            for i in range(3000):
                idx.add("", sub(f"churn{i % 20}"))
                idx.remove("", f"urn:ngsi-ld:Subscription:churn{(i + 7) % 20}")
        except BaseException as exc:   # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        while not stop.is_set():
            matches = idx.match("", before, after, T0)
            assert "urn:ngsi-ld:Subscription:stable" in {m.subscription.id for m in matches}
            seen.append(len(matches))
    finally:
        worker.join()
    assert errors == []
    assert seen and all(1 <= n <= 21 for n in seen)
