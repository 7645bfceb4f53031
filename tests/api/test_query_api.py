"""Entity queries through the HTTP API: q on a VocabProperty, and the entity selectors of
POST /entityOperations/query."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from support.receiver import http_receiver

BASE = "/ngsi-ld/v1"
WASTE = "https://example.org/waste#"


def bin_(n: int, waste: Any, kind: str = "VocabProperty") -> dict[str, Any]:
    member = "vocab" if kind == "VocabProperty" else "value"
    return {"id": f"urn:ngsi-ld:WasteContainer:{n}", "type": "WasteContainer",
            "wasteType": {"type": kind, member: waste}}


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(e["id"].rsplit(":", 1)[1] for e in response.json())


def test_q_on_a_vocab_property_compares_expanded_terms(client: TestClient) -> None:
    for entity in (bin_(1, "glass"), bin_(2, "paper"), bin_(3, ["metal", "glass"]),
                   bin_(4, "glass", kind="Property")):
        assert client.post(f"{BASE}/entities", json=entity).status_code == 201
    stored = client.get(f"{BASE}/entities/urn:ngsi-ld:WasteContainer:1",
                        params={"options": "keyValues"}).json()
    assert stored["wasteType"] == "glass"

    def find(q: str) -> list[str]:
        return ids(client.get(f"{BASE}/entities", params={"type": "WasteContainer", "q": q}))

    assert find('wasteType=="glass"') == ["1", "3", "4"]   # 4: a plain string Property
    assert find('wasteType=="paper","metal"') == ["2", "3"]
    assert find('wasteType!="glass"') == ["2"]
    assert find("wasteType==https://uri.etsi.org/ngsi-ld/default-context/paper") == ["2"]
    assert find('wasteType~="/glass$"') == ["1", "3"]   # patterns see the stored IRI


def test_vocab_terms_expand_with_the_request_context(client: TestClient) -> None:
    body = {**bin_(1, "glass"), "@context": [{"glass": WASTE + "glass"},
                                             "https://uri.etsi.org/ngsi-ld/v1/"
                                             "ngsi-ld-core-context.jsonld"]}
    created = client.post(f"{BASE}/entities", json=body,
                          headers={"Content-Type": "application/ld+json"})
    assert created.status_code == 201, created.text
    query = {"type": "Query", "entities": [{"type": "WasteContainer"}],
             "q": 'wasteType=="glass"', "@context": body["@context"]}
    with_context = client.post(f"{BASE}/entityOperations/query", json=query,
                               headers={"Content-Type": "application/ld+json"})
    assert ids(with_context) == ["1"]
    # Under the core context "glass" is another IRI (default vocabulary): no match.
    assert ids(client.get(f"{BASE}/entities", params={"type": "WasteContainer",
                                                      "q": 'wasteType=="glass"'})) == []


def test_subscriptions_match_vocab_terms_like_queries(client: TestClient) -> None:
    with http_receiver() as receiver:
        subscription = {"id": "urn:ngsi-ld:Subscription:glass", "type": "Subscription",
                        "entities": [{"type": "WasteContainer"}], "q": 'wasteType=="glass"',
                        "notification": {"endpoint": {"uri": receiver.url},
                                         "format": "keyValues"}}
        assert client.post(f"{BASE}/subscriptions", json=subscription).status_code == 201
        assert client.post(f"{BASE}/entities", json=bin_(1, "paper")).status_code == 201
        assert client.post(f"{BASE}/entities", json=bin_(2, "glass")).status_code == 201
        note = receiver.next()
        assert [e["id"] for e in note.body["data"]] == ["urn:ngsi-ld:WasteContainer:2"]
        assert receiver.nothing_within(0.3)
    shown = client.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:glass").json()
    assert shown["q"] == 'wasteType=="glass"'


# -- POST /entityOperations/query: the entities array is an OR of selectors -----------------


def seed_city(client: TestClient) -> None:
    for n, kind in ((1, "Lamp"), (2, "Lamp"), (3, "Bin"), (4, "Bench")):
        entity = {"id": f"urn:ngsi-ld:{kind}:{n}", "type": kind}
        assert client.post(f"{BASE}/entities", json=entity).status_code == 201


def post_query(client: TestClient, entities: list[dict[str, str]], **extra: Any) -> list[str]:
    body = {"type": "Query", "entities": entities, **extra}
    return ids(client.post(f"{BASE}/entityOperations/query", json=body))


def test_selectors_with_different_members_are_ored(client: TestClient) -> None:
    seed_city(client)
    assert post_query(client, [{"type": "Lamp"}, {"id": "urn:ngsi-ld:Bin:3"}]) == ["1", "2", "3"]
    assert post_query(client, [{"type": "Bench"},
                               {"idPattern": "^urn:ngsi-ld:Lamp:[2-9]$"}]) == ["2", "4"]


def test_each_selector_ands_its_own_members(client: TestClient) -> None:
    seed_city(client)
    selectors = [{"type": "Lamp", "id": "urn:ngsi-ld:Lamp:1"},
                 {"type": "Bin", "id": "urn:ngsi-ld:Bin:3"}]
    assert post_query(client, selectors) == ["1", "3"]
    crossed = [{"type": "Lamp", "id": "urn:ngsi-ld:Bin:3"},
               {"type": "Bin", "id": "urn:ngsi-ld:Lamp:1"}]
    assert post_query(client, crossed) == []
    assert post_query(client, [{"type": "Lamp"}, {"type": "Bin"}]) == ["1", "2", "3"]
    assert post_query(client, [{"type": "Lamp", "idPattern": ":2$"}]) == ["2"]


def test_selectors_combine_with_the_other_filters(client: TestClient) -> None:
    seed_city(client)
    client.post(f"{BASE}/entities/urn:ngsi-ld:Lamp:1/attrs",
                json={"lux": {"type": "Property", "value": 5}})
    client.post(f"{BASE}/entities/urn:ngsi-ld:Bin:3/attrs",
                json={"lux": {"type": "Property", "value": 9}})
    selectors = [{"type": "Lamp"}, {"id": "urn:ngsi-ld:Bin:3"}]
    assert post_query(client, selectors, q="lux>6") == ["3"]
    assert post_query(client, selectors, attrs=["lux"]) == ["1", "3"]
    counted = client.post(f"{BASE}/entityOperations/query", params={"count": "true"},
                          json={"type": "Query", "entities": selectors})
    assert counted.headers["NGSILD-Results-Count"] == "3"


def test_selectors_are_checked(client: TestClient) -> None:
    for selectors in ([{"type": "Lamp"}, {"id": "not a uri"}],
                      [{"type": "Lamp"}, {"idPattern": "("}],
                      [{"type": "Lamp"}, {"id": "urn:x:1", "type": 5}]):
        response = client.post(f"{BASE}/entityOperations/query",
                               json={"type": "Query", "entities": selectors})
        assert response.status_code == 400, (selectors, response.text)


def test_temporal_query_ors_selectors_too(client: TestClient) -> None:
    seed_city(client)
    for entity_id in ("urn:ngsi-ld:Lamp:1", "urn:ngsi-ld:Bin:3", "urn:ngsi-ld:Bench:4"):
        client.post(f"{BASE}/entities/{entity_id}/attrs", json={
            "lux": {"type": "Property", "value": 1, "observedAt": "2026-11-20T10:00:00Z"}})
    body = {"type": "Query", "entities": [{"type": "Lamp"}, {"id": "urn:ngsi-ld:Bin:3"}],
            "temporalQ": {"timerel": "after", "timeAt": "2026-11-20T00:00:00Z"}}
    response = client.post(f"{BASE}/temporal/entityOperations/query", json=body)
    assert ids(response) == ["1", "3"]
