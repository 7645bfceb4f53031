"""/jsonldContexts and @context resolution across tenants, through the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.settings import Settings
from support.receiver import http_receiver

BASE = "/ngsi-ld/v1"
CTX_REL = 'rel="http://www.w3.org/ns/json-ld#context"'
CITY = "https://example.org/city#"


def link(url: str) -> str:
    return f'<{url}>; {CTX_REL}; type="application/ld+json"'


def host_context(client: TestClient, tenant: str) -> str:
    document = {"@context": {"Lamp": CITY + "Lamp", "lux": CITY + "lux"}}
    added = client.post(f"{BASE}/jsonldContexts", json=document,
                        headers={"NGSILD-Tenant": tenant})
    assert added.status_code == 201, added.text
    url: str = added.headers["location"]
    return url


def lamp(n: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp", "lux": n}


def test_a_hosted_context_is_not_usable_from_another_tenant(client: TestClient) -> None:
    url = host_context(client, "alpha")
    alpha = {"NGSILD-Tenant": "alpha", "Link": link(url)}
    assert client.post(f"{BASE}/entities", json=lamp(1), headers=alpha).status_code == 201
    assert client.get(f"{BASE}/entities", params={"type": "Lamp"},
                      headers=alpha).json()[0]["lux"]["value"] == 1  # cached for alpha now
    beta = {"NGSILD-Tenant": "beta"}
    assert client.post(f"{BASE}/entities", json={"id": "urn:x:1", "type": "T"},
                       headers=beta).status_code == 201
    beta_with_link = {**beta, "Link": link(url)}
    created = client.post(f"{BASE}/entities", json=lamp(2), headers=beta_with_link)
    assert created.status_code == 503, created.text
    assert created.json()["type"].endswith("/LdContextNotAvailable")
    queried = client.get(f"{BASE}/entities", params={"type": "Lamp"}, headers=beta_with_link)
    assert queried.status_code == 503, queried.text
    # Nothing was written in beta under alpha's terms, nor under the default vocabulary.
    assert client.get(f"{BASE}/entities", params={"type": f"{CITY}Lamp"},
                      headers=beta).json() == []
    assert client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:2", headers=beta).status_code == 404


def test_another_tenant_failing_first_does_not_block_the_owner(client: TestClient) -> None:
    url = host_context(client, "alpha")
    beta = {"NGSILD-Tenant": "beta", "Link": link(url)}
    assert client.post(f"{BASE}/entities", json=lamp(1), headers=beta).status_code == 503
    alpha = {"NGSILD-Tenant": "alpha", "Link": link(url)}
    assert client.post(f"{BASE}/entities", json=lamp(1), headers=alpha).status_code == 201
    got = client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1", headers=alpha).json()
    assert got["type"] == "Lamp" and got["lux"]["value"] == 1


def test_notifications_compact_with_the_tenants_hosted_context(client: TestClient) -> None:
    url = host_context(client, "alpha")
    alpha = {"NGSILD-Tenant": "alpha", "Link": link(url)}
    with http_receiver() as receiver:
        subscription = {"id": "urn:ngsi-ld:Subscription:lamps", "type": "Subscription",
                        "entities": [{"type": "Lamp"}],
                        "notification": {"endpoint": {"uri": receiver.url},
                                         "format": "keyValues"}}
        created = client.post(f"{BASE}/subscriptions", json=subscription, headers=alpha)
        assert created.status_code == 201, created.text
        assert client.post(f"{BASE}/entities", json=lamp(1), headers=alpha).status_code == 201
        note = receiver.next()
    assert note.body["data"] == [{"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "lux": 1}]


def test_a_cached_context_is_served_by_its_listed_local_id(tmp_path: Path,
                                                          database_url: str) -> None:
    url = "https://contexts.example/city.jsonld"
    document = {"@context": {"Lamp": CITY + "Lamp", "lux": CITY + "lux"}}
    path = tmp_path / "city.jsonld"
    path.write_text(json.dumps(document))
    settings = Settings(database_url=database_url, sqlite_synchronous="normal",
                        allow_remote_contexts=False, context_map={url: str(path)})
    with TestClient(create_app(settings)) as client:
        created = client.post(f"{BASE}/entities", json=lamp(1), headers={"Link": link(url)})
        assert created.status_code == 201, created.text
        listed = client.get(f"{BASE}/jsonldContexts",
                            params={"kind": "cached", "details": "true"}).json()
        assert [entry["URL"] for entry in listed] == [url]
        local_id = listed[0]["localId"]
        served = client.get(f"{BASE}/jsonldContexts/{local_id}")
        assert served.status_code == 200, served.text
        assert served.json() == document
        assert served.headers["content-type"].startswith("application/ld+json")
        details = client.get(f"{BASE}/jsonldContexts/{local_id}", params={"details": "true"})
        assert details.json() == listed[0] | {"lastUsage": details.json()["lastUsage"],
                                              "numberOfHits": details.json()["numberOfHits"]}
        assert client.get(f"{BASE}/jsonldContexts/no-such-id").status_code == 404
