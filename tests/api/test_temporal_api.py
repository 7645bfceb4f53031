"""The temporal API through HTTP: history recorded by ordinary writes and by temporal writes,
time filters, lastN, representations, aggregation and pagination."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

BASE = "/ngsi-ld/v1"
T = f"{BASE}/temporal/entities"
EID = "urn:ngsi-ld:WeatherObserved:MI-1"


def observe(client: TestClient, hour: int, temperature: float) -> None:
    response = client.post(f"{BASE}/entityOperations/upsert?options=update", json=[{
        "id": EID, "type": "WeatherObserved",
        "temperature": {"type": "Property", "value": temperature,
                        "observedAt": f"2026-11-20T{hour:02d}:30:00Z"}}])
    assert response.status_code in (201, 204), response.text


def day(client: TestClient) -> None:
    for hour in range(6):
        observe(client, hour, 10.0 + hour)


def test_every_update_is_in_the_history(client: TestClient) -> None:
    day(client)
    response = client.get(f"{T}/{EID}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == EID and body["type"] == "WeatherObserved"
    values = [(i["value"], i["observedAt"]) for i in body["temperature"]]
    assert values == [(10.0 + h, f"2026-11-20T{h:02d}:30:00.000Z") for h in range(6)]
    assert all(i["instanceId"].startswith("urn:ngsi-ld:") for i in body["temperature"])


def test_time_filters_and_last_n(client: TestClient) -> None:
    day(client)
    between = client.get(f"{T}/{EID}", params={
        "timerel": "between", "timeAt": "2026-11-20T01:00:00Z",
        "endTimeAt": "2026-11-20T03:00:00Z", "options": "temporalValues"}).json()
    assert between["temperature"]["values"] == [[11.0, "2026-11-20T01:30:00.000Z"],
                                                [12.0, "2026-11-20T02:30:00.000Z"]]
    last = client.get(f"{T}/{EID}", params={"lastN": "2", "format": "temporalValues"}).json()
    assert [v for v, _ in last["temperature"]["values"]] == [14.0, 15.0]
    before = client.get(f"{T}/{EID}", params={"timerel": "before",
                                              "timeAt": "2026-11-20T01:00:00Z"}).json()
    assert [i["value"] for i in before["temperature"]] == [10.0]


def test_aggregated_values(client: TestClient) -> None:
    day(client)
    response = client.get(f"{T}/{EID}", params={
        "format": "aggregatedValues", "aggrMethods": "avg,max,totalCount",
        "aggrPeriodDuration": "PT3H", "timerel": "after", "timeAt": "2026-11-20T00:00:00Z"})
    assert response.status_code == 200, response.text
    temperature = response.json()["temperature"]
    assert temperature["avg"] == [[11.0, "2026-11-20T00:00:00.000Z", "2026-11-20T03:00:00.000Z"],
                                  [14.0, "2026-11-20T03:00:00.000Z", "2026-11-20T06:00:00.000Z"]]
    assert [m[0] for m in temperature["max"]] == [12.0, 15.0]
    assert [m[0] for m in temperature["totalCount"]] == [3, 3]


def test_query_needs_a_time_relation_and_selects_by_type(client: TestClient) -> None:
    day(client)
    missing = client.get(T, params={"type": "WeatherObserved"})
    assert missing.status_code == 400
    found = client.get(T, params={"type": "WeatherObserved", "timerel": "after",
                                  "timeAt": "2026-11-20T04:00:00Z"}).json()
    assert [e["id"] for e in found] == [EID]
    assert [i["value"] for i in found[0]["temperature"]] == [14.0, 15.0]
    posted = client.post(f"{BASE}/temporal/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "WeatherObserved"}],
        "temporalQ": {"timerel": "before", "timeAt": "2026-11-20T01:00:00Z"}})
    assert posted.status_code == 200, posted.text
    assert [i["value"] for i in posted.json()[0]["temperature"]] == [10.0]


def test_q_selects_on_current_state(client: TestClient) -> None:
    day(client)
    hot = client.get(T, params={"type": "WeatherObserved", "q": "temperature>100",
                                "lastN": "1"}).json()
    assert hot == []
    warm = client.get(T, params={"type": "WeatherObserved", "q": "temperature>14",
                                 "lastN": "1"}).json()
    assert [e["id"] for e in warm] == [EID]


def test_temporal_create_add_patch_delete(client: TestClient) -> None:
    body: dict[str, Any] = {"id": "urn:ngsi-ld:Meter:1", "type": "Meter", "energy": [
        {"type": "Property", "value": 1.0, "observedAt": "2026-11-20T00:00:00Z"},
        {"type": "Property", "value": 2.0, "observedAt": "2026-11-20T01:00:00Z"}]}
    assert client.post(T, json=body).status_code == 201
    # the current state follows the latest instance given
    current = client.get(f"{BASE}/entities/urn:ngsi-ld:Meter:1").json()
    assert current["energy"]["value"] == 2.0
    more = {"energy": [{"type": "Property", "value": 3.0, "observedAt": "2026-11-20T02:00:00Z"}]}
    assert client.post(f"{T}/urn:ngsi-ld:Meter:1/attrs", json=more).status_code == 204
    history = client.get(f"{T}/urn:ngsi-ld:Meter:1").json()["energy"]
    assert [i["value"] for i in history] == [1.0, 2.0, 3.0]  # each recorded exactly once
    first = history[0]["instanceId"]
    patched = client.patch(f"{T}/urn:ngsi-ld:Meter:1/attrs/energy/{first}",
                           json={"energy": {"type": "Property", "value": 1.5}})
    assert patched.status_code == 204, patched.text
    history = client.get(f"{T}/urn:ngsi-ld:Meter:1").json()["energy"]
    assert [i["value"] for i in history] == [1.5, 2.0, 3.0]
    assert client.delete(f"{T}/urn:ngsi-ld:Meter:1/attrs/energy/{first}").status_code == 204
    assert client.delete(f"{T}/urn:ngsi-ld:Meter:1/attrs/energy/{first}").status_code == 404
    assert client.delete(f"{T}/urn:ngsi-ld:Meter:1/attrs/energy").status_code == 204
    assert client.delete(f"{T}/urn:ngsi-ld:Meter:1").status_code == 204
    assert client.get(f"{T}/urn:ngsi-ld:Meter:1").status_code == 404


def test_long_history_comes_in_pages(settings: Any) -> None:
    from sinergia.api.app import create_app

    with TestClient(create_app(settings.replace(max_history_instances=4))) as client:
        for hour in range(10):
            observe(client, hour, float(hour))
        seen: list[float] = []
        url = f"{T}/{EID}"
        params: dict[str, str] | None = {"timerel": "after", "timeAt": "2026-11-20T00:00:00Z"}
        for _ in range(10):
            response = client.get(url, params=params)
            assert response.status_code in (200, 206), response.text
            seen.extend(i["value"] for i in response.json()["temperature"])
            if response.status_code == 200:
                break
            assert response.headers["content-range"].startswith("date-time ")
            (next_link,) = [part.split(";")[0].strip(" <>")
                            for part in response.headers["link"].split(",")
                            if 'rel="next"' in part]
            url, params = next_link, None
        assert seen == [float(h) for h in range(10)]


def test_unknown_entity_and_bad_parameters(client: TestClient) -> None:
    day(client)
    assert client.get(f"{T}/urn:ngsi-ld:X:none").status_code == 404
    for params in ({"timerel": "sometime", "timeAt": "2026-11-20T00:00:00Z"},
                   {"timerel": "between", "timeAt": "2026-11-20T00:00:00Z"},
                   {"lastN": "-1"},
                   {"format": "aggregatedValues", "aggrMethods": "median"},
                   {"format": "aggregatedValues", "aggrMethods": "avg",
                    "aggrPeriodDuration": "PT1X"}):
        response = client.get(f"{T}/{EID}", params=params)
        assert response.status_code == 400, (params, response.text)


def test_old_history_does_not_move_the_current_state_back(client: TestClient) -> None:
    def post(hour: int, value: float) -> None:
        instance = {"type": "Property", "value": value,
                    "observedAt": f"2026-11-20T{hour:02d}:00:00Z"}
        response = client.post(T, json={"id": "urn:ngsi-ld:Meter:2", "type": "Meter",
                                        "energy": [instance]})
        assert response.status_code in (201, 204), response.text

    post(5, 50.0)
    post(1, 10.0)  # an older reading arrives late
    assert client.get(f"{BASE}/entities/urn:ngsi-ld:Meter:2").json()["energy"]["value"] == 50.0
    history = client.get(f"{T}/urn:ngsi-ld:Meter:2").json()["energy"]
    assert [i["value"] for i in history] == [10.0, 50.0]


def test_temporal_reads_in_a_tenant_that_does_not_exist(client: TestClient) -> None:
    day(client)
    other = {"NGSILD-Tenant": "comune-b"}
    for url, params in ((f"{T}/{EID}", {}),
                        (T, {"type": "WeatherObserved", "timerel": "after",
                             "timeAt": "2026-11-20T00:00:00Z"})):
        answer = client.get(url, params=params, headers=other)
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"].endswith("NonexistentTenant")
    assert client.get(T, params={"type": "WeatherObserved", "timerel": "after",
                                 "timeAt": "2026-11-20T00:00:00Z"}).json() != []
