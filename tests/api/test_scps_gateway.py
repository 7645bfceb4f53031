"""The SCPS UrbanDatasetGateway (/scps/UrbanDatasetGateway): every operation and every answer
code, errors in the body with HTTP 200, bearer tokens with expiry, and a pushed document coming
back unchanged from every request — while its lines become entities and history in the broker.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.api.scps import Code
from sinergia.settings import Settings

FIXTURES = Path(__file__).parent.parent / "adapters" / "urbandataset" / "fixtures"
GATEWAY = "/scps/UrbanDatasetGateway"
USER, PASSWORD = "pell-milano", "s3cret-for-tests"
RESOURCE = "SCP-015146_PELLMilano-1_CounterReading-2.0_20260101000000"
ENERGY = "https://smartdatamodels.org/dataModel.Energy/"
METER_TYPE = ENERGY + "ThreePhaseAcMeasurement"
AUTHENTICATED_OPERATIONS = ["logout", "isAlive", "push", "basicRequest", "lastRequest",
                            "specificRequest", "delete", "searchingRequest",
                            "deepSearchingRequest", "searchingByPropertyRequest"]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, sqlite_synchronous="normal",
                    allow_remote_contexts=False, scps_username=USER, scps_password=PASSWORD,
                    scps_token_ttl=600.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(client: TestClient) -> Clock:
    """The gateway's clock, moved by the tests (token expiry without waiting)."""
    fake = Clock()
    client.post(f"{GATEWAY}/test")  # builds the gateway's state
    state = client.app.state.scps  # type: ignore[attr-defined]
    state.sessions.clock = fake
    return fake


def call(client: TestClient, operation: str, body: Any = None, *, token: str | None = None,
         headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST an operation; the gateway always answers HTTP 200 with a JSON object."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    response = client.post(f"{GATEWAY}/{operation}", headers=sent,
                           content=None if body is None else orjson.dumps(body))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer: dict[str, Any] = response.json()
    return answer


def login(client: TestClient) -> str:
    answer = call(client, "login", {"username": USER, "password": PASSWORD})
    assert answer["code"] == Code.AUTHENTICATED, answer
    token: str = answer["token"]
    return token


@pytest.fixture
def token(client: TestClient, clock: Clock) -> str:
    return login(client)


def counter_reading() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((FIXTURES / "counter-reading-2.0.json").read_bytes())
    return document


def later_reading(hours: int = 24) -> dict[str, Any]:
    """The same meters a day later, produced somewhere else: another document of the same
    resource."""
    document = counter_reading()
    ud = document["UrbanDataset"]
    ud["context"]["timestamp"] = "2026-11-21T01:05:00"
    ud["context"]["coordinates"] = {"format": "WGS84-DD", "latitude": 41.9, "longitude": 12.5}
    for line in ud["values"]["line"]:
        for bound in ("start_ts", "end_ts"):
            line["period"][bound] = line["period"][bound].replace("2026-11-20", "2026-11-21")
    return document


def push(client: TestClient, token: str, document: dict[str, Any],
         resource_id: str = RESOURCE, **headers: str) -> dict[str, Any]:
    return call(client, "push", {"resource_id": resource_id, "dataset": document},
                token=token, headers=headers)


# -- test, login, logout, isAlive -----------------------------------------------------------------


def test_test_answers_without_a_token(client: TestClient) -> None:
    assert call(client, "test") == {"code": "00", "message": "Successful"}
    response = client.get(f"{GATEWAY}/test")
    assert response.status_code == 200 and response.json()["code"] == "00"


def test_login_gives_a_token_with_its_expiry(client: TestClient, clock: Clock) -> None:
    answer = call(client, "login", {"username": USER, "password": PASSWORD})
    assert answer["code"] == "01" and answer["message"] == "Authentication Successful"
    assert len(answer["token"]) >= 40
    assert answer["expires_at"] == "2027-01-15T08:10:00Z"  # clock + 600 s
    alive = call(client, "isAlive", token=answer["token"])
    assert alive == {"code": "00", "message": "Successful", "username": USER,
                     "expires_at": answer["expires_at"]}


@pytest.mark.parametrize(("body", "code"), [
    ({"username": USER, "password": "wrong"}, Code.AUTHENTICATION_FAILED),
    ({"username": "someone-else", "password": PASSWORD}, Code.AUTHENTICATION_FAILED),
    ({"username": USER}, Code.BAD_REQUEST),
    ({"username": USER, "password": 12345}, Code.BAD_REQUEST),
    (None, Code.BAD_REQUEST),
])
def test_bad_logins_are_refused_in_the_body(client: TestClient, body: Any, code: str) -> None:
    answer = call(client, "login", body)
    assert answer["code"] == code, answer
    assert "token" not in answer and answer["detail"]


def test_login_is_refused_while_no_credentials_are_set(database_url: str) -> None:
    settings = Settings(database_url=database_url, sqlite_synchronous="normal",
                        allow_remote_contexts=False, scps_username=USER)  # no password
    with TestClient(create_app(settings)) as client:
        answer = call(client, "login", {"username": USER, "password": ""})
        assert answer["code"] == Code.LOGIN_DISABLED
        assert "SINERGIA_SCPS_PASSWORD" in answer["detail"]


@pytest.mark.parametrize("operation", AUTHENTICATED_OPERATIONS)
def test_every_other_operation_needs_a_valid_token(client: TestClient, clock: Clock,
                                                   operation: str) -> None:
    body = {"resource_id": RESOURCE}
    for headers in ({}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        answer = call(client, operation, body, headers=headers)
        assert answer["code"] == Code.UNAUTHORIZED, (operation, headers, answer)
    token = login(client)
    clock.now += 601
    assert call(client, operation, body, token=token)["code"] == Code.TOKEN_EXPIRED
    # an expired token is forgotten: it is now simply unknown
    assert call(client, operation, body, token=token)["code"] == Code.UNAUTHORIZED


def test_logout_ends_the_token(client: TestClient, token: str) -> None:
    assert call(client, "logout", token=token) == {"code": "00",
                                                   "message": "Logout Successful"}
    assert call(client, "isAlive", token=token)["code"] == Code.UNAUTHORIZED


def test_tokens_are_shared_through_the_store_not_the_process(client: TestClient,
                                                             token: str) -> None:
    # A second application on the same database (another worker) accepts the token.
    state = gateway_state_of(client)
    with TestClient(create_app(state.settings)) as other:
        assert call(other, "isAlive", token=token)["code"] == "00"


def gateway_state_of(client: TestClient) -> Any:
    return client.app.state.scps  # type: ignore[attr-defined]


# -- push and the requests: the round trip --------------------------------------------------------


def test_a_pushed_document_comes_back_unchanged_and_feeds_the_broker(
        client: TestClient, token: str) -> None:
    document = counter_reading()
    answer = push(client, token, document)
    assert answer["code"] == "02" and answer["message"] == "Push Successful", answer
    assert answer["detail"].startswith("12 of 12 lines imported into 3 entities")

    basic = call(client, "basicRequest", {"resource_id": RESOURCE}, token=token)
    assert basic == {"code": "03", "message": "Request Successful", "dataset": [document]}
    last = call(client, "lastRequest", {"resource_id": RESOURCE}, token=token)
    assert last["code"] == "03" and last["dataset"] == document
    specific = call(client, "specificRequest",
                    {"resource_id": RESOURCE, "timestamp": "2026-11-20T01:05:00"}, token=token)
    assert specific["code"] == "03" and specific["dataset"] == document

    # The lines became the meters' current state and history.
    meters = client.get("/ngsi-ld/v1/entities", params={"type": METER_TYPE})
    assert meters.status_code == 200 and len(meters.json()) == 3
    history = client.get("/ngsi-ld/v1/temporal/entities", params={
        "type": METER_TYPE, "timerel": "after", "timeAt": "2026-11-19T00:00:00Z"})
    assert history.status_code == 200
    energies = {e["id"]: [i["value"] for i in e[ENERGY + "totalActiveEnergyImport"]]
                for e in history.json()}
    assert sorted(len(v) for v in energies.values()) == [4, 4, 4]
    assert [15820.5, 15823.062, 15825.75, 15828.562] in energies.values()


def test_a_second_push_of_the_same_document_is_refused(client: TestClient, token: str) -> None:
    assert push(client, token, counter_reading())["code"] == "02"
    again = push(client, token, counter_reading())
    assert again == {"code": Code.ALREADY_EXISTS, "message": "Push Failed",
                     "detail": "UrbanDataset already exists"}
    # the same timestamp written another way is the same document
    respelled = counter_reading()
    respelled["UrbanDataset"]["context"]["timestamp"] = "2026-11-20 01:05:00"
    assert push(client, token, respelled)["detail"] == "UrbanDataset already exists"


def test_last_request_gives_the_latest_produced(client: TestClient, token: str) -> None:
    assert push(client, token, later_reading())["code"] == "02"  # pushed first
    assert push(client, token, counter_reading())["code"] == "02"
    last = call(client, "lastRequest", {"resource_id": RESOURCE}, token=token)
    assert last["dataset"]["UrbanDataset"]["context"]["timestamp"] == "2026-11-21T01:05:00"
    every = call(client, "basicRequest", {"resource_id": RESOURCE}, token=token)["dataset"]
    assert [d["UrbanDataset"]["context"]["timestamp"] for d in every] == [
        "2026-11-20T01:05:00", "2026-11-21T01:05:00"]


def test_delete_forgets_the_document_not_the_measurements(client: TestClient,
                                                          token: str) -> None:
    assert push(client, token, counter_reading())["code"] == "02"
    body = {"resource_id": RESOURCE, "timestamp": "2026-11-20T01:05:00"}
    assert call(client, "delete", body, token=token) == {"code": "08",
                                                         "message": "Delete Successful"}
    assert call(client, "specificRequest", body, token=token)["code"] == Code.NOT_FOUND
    assert call(client, "delete", body, token=token)["code"] == Code.NOT_FOUND
    assert call(client, "basicRequest", {"resource_id": RESOURCE},
                token=token)["dataset"] == []
    assert len(client.get("/ngsi-ld/v1/entities", params={"type": METER_TYPE}).json()) == 3
    # Pushed again (the way producers correct a document), it adds no duplicate history.
    again = push(client, token, counter_reading())
    assert again["code"] == "02" and "0 new values, 159 already recorded" in again["detail"]


def test_requests_for_what_is_not_there(client: TestClient, token: str) -> None:
    unknown = "SCP-1_Nobody-1_CounterReading-2.0_20260101000000"
    assert call(client, "basicRequest", {"resource_id": unknown}, token=token) == {
        "code": "03", "message": "Request Successful", "dataset": []}
    answer = call(client, "lastRequest", {"resource_id": unknown}, token=token)
    assert answer["code"] == Code.NOT_FOUND and answer["message"] == "UrbanDataset Not Found"
    specific = call(client, "specificRequest",
                    {"resource_id": unknown, "timestamp": "2026-11-20T01:05:00"}, token=token)
    assert specific["code"] == Code.NOT_FOUND


@pytest.mark.parametrize(("operation", "body", "says"), [
    ("basicRequest", {}, "resource_id is required"),
    ("lastRequest", {"resource_id": ""}, "resource_id is required"),
    ("specificRequest", {"resource_id": RESOURCE}, "timestamp"),
    ("specificRequest", {"resource_id": RESOURCE, "timestamp": "yesterday"}, "timestamp"),
    ("delete", {"resource_id": RESOURCE, "timestamp": 5}, "timestamp"),
    ("searchingRequest", {"resource_id": RESOURCE, "distance": "100"}, "go together"),
    ("searchingRequest", {"resource_id": RESOURCE, "center_latitude": "north",
                          "center_longitude": "9.19", "distance": "100"}, "number"),
    ("searchingRequest", {"resource_id": RESOURCE, "center_latitude": "95",
                          "center_longitude": "9.19", "distance": "100"}, "between"),
    ("searchingRequest", {"resource_id": RESOURCE, "period_start": "2026-11-21T00:00:00",
                          "period_end": "2026-11-20T00:00:00"}, "before"),
    ("deepSearchingRequest", {"resource_id": RESOURCE, "period_start": "soon"}, "period_start"),
    ("searchingByPropertyRequest", {"resource_id": RESOURCE, "property_name": "PODID"},
     "required"),
])
def test_malformed_requests_are_refused_in_the_body(client: TestClient, token: str,
                                                    operation: str, body: dict[str, Any],
                                                    says: str) -> None:
    answer = call(client, operation, body, token=token)
    assert answer["code"] == Code.BAD_REQUEST, answer
    assert says in answer["detail"]


def mismatched() -> dict[str, Any]:
    return orjson.loads((FIXTURES / "air-monitoring-2.0.json").read_bytes())  # type: ignore[no-any-return]


def without_timestamp() -> dict[str, Any]:
    document = counter_reading()
    del document["UrbanDataset"]["context"]["timestamp"]
    return document


@pytest.mark.parametrize(("body", "code", "says"), [
    ({"resource_id": "CounterReading-2.0", "dataset": counter_reading()}, Code.BAD_REQUEST,
     "does not read as SCP-"),
    ({"resource_id": RESOURCE}, Code.BAD_REQUEST, "dataset must be an object"),
    ({"resource_id": RESOURCE, "dataset": counter_reading()["UrbanDataset"]},
     Code.BAD_REQUEST, "dataset must be an object"),
    ({"resource_id": RESOURCE, "dataset": {"UrbanDataset": {"context": {
        "timestamp": "2026-11-20T01:05:00"}}}}, Code.INVALID_URBANDATASET, "specification"),
    ({"resource_id": RESOURCE, "dataset": without_timestamp()}, Code.INVALID_URBANDATASET,
     "context.timestamp"),
    ({"resource_id": RESOURCE, "dataset": mismatched()}, Code.INVALID_URBANDATASET,
     "is for CounterReading"),
])
def test_bad_pushes_are_refused_and_keep_nothing(client: TestClient, token: str,
                                                 body: dict[str, Any], code: str,
                                                 says: str) -> None:
    answer = call(client, "push", body, token=token)
    assert answer["code"] == code, answer
    assert says in answer["detail"]
    assert call(client, "basicRequest", {"resource_id": RESOURCE},
                token=token)["dataset"] == []
    assert client.get("/ngsi-ld/v1/entities", params={"type": METER_TYPE}).json() == []


def test_a_defective_document_is_kept_and_its_problems_reported(client: TestClient,
                                                                token: str) -> None:
    document = orjson.loads((FIXTURES / "counter-reading-1.0-defective.json").read_bytes())
    resource = "SCP-015146_PELLMilano-1_CounterReading-1.0_20260101000000"
    answer = push(client, token, document, resource)
    assert answer["code"] == "02", answer
    detail = answer["detail"]
    assert "repairs" in detail and "lines or values skipped" in detail
    assert "not valid against the UrbanDataset schema" in detail
    assert call(client, "lastRequest", {"resource_id": resource},
                token=token)["dataset"] == document


def test_a_placeholder_producer_is_named_after_the_solution(client: TestClient,
                                                            token: str) -> None:
    document = counter_reading()
    document["UrbanDataset"]["context"]["producer"] = {"id": "producer"}
    assert push(client, token, document)["code"] == "02"
    ids = [e["id"] for e in client.get("/ngsi-ld/v1/entities",
                                       params={"type": METER_TYPE}).json()]
    assert all(i.startswith("urn:ngsi-ld:ThreePhaseAcMeasurement:PELLMilano-1:") for i in ids)


@pytest.mark.parametrize(("raw", "headers"), [
    (b"{not json", {}),
    (b"[1, 2]", {}),
    (b'{"resource_id": "x"}', {"NGSILD-Tenant": "no spaces allowed"}),
])
def test_unreadable_requests_are_refused_in_the_body(client: TestClient, token: str,
                                                     raw: bytes,
                                                     headers: dict[str, str]) -> None:
    response = client.post(f"{GATEWAY}/basicRequest", content=raw,
                           headers={"Authorization": f"Bearer {token}", **headers})
    assert response.status_code == 200
    assert response.json()["code"] == Code.BAD_REQUEST


def test_documents_belong_to_their_tenant(client: TestClient, token: str) -> None:
    assert push(client, token, counter_reading(), **{"NGSILD-Tenant": "milano"})["code"] == "02"
    assert call(client, "basicRequest", {"resource_id": RESOURCE},
                token=token)["dataset"] == []
    found = call(client, "basicRequest", {"resource_id": RESOURCE}, token=token,
                 headers={"NGSILD-Tenant": "milano"})
    assert len(found["dataset"]) == 1
    meters = client.get("/ngsi-ld/v1/entities", params={"type": METER_TYPE},
                        headers={"NGSILD-Tenant": "milano"})
    assert len(meters.json()) == 3


def test_an_unexpected_failure_is_an_internal_error_answer(client: TestClient, token: str,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gateway_state_of(client).gateway, "every", broken)
    answer = call(client, "basicRequest", {"resource_id": RESOURCE}, token=token)
    assert answer["code"] == Code.INTERNAL_ERROR and answer["message"] == "Internal Error"
    assert "disk on fire" not in answer["detail"]  # internals stay in the log


# -- searches ------------------------------------------------------------------------------------


@pytest.fixture
def two_documents(client: TestClient, token: str) -> str:
    assert push(client, token, counter_reading())["code"] == "02"  # Milan, 20 Nov
    assert push(client, token, later_reading())["code"] == "02"  # "Rome", 21 Nov
    return token


def timestamps(answer: dict[str, Any]) -> list[str]:
    assert answer["code"] == "03", answer
    return [d["UrbanDataset"]["context"]["timestamp"] for d in answer["dataset"]]


def line_ids(answer: dict[str, Any]) -> list[list[int]]:
    assert answer["code"] == "03", answer
    return [[line["id"] for line in d["UrbanDataset"]["values"]["line"]]
            for d in answer["dataset"]]


def search(client: TestClient, token: str, operation: str, **filters: Any) -> dict[str, Any]:
    return call(client, operation, {"resource_id": RESOURCE, **filters}, token=token)


def test_searching_filters_by_the_documents_context(client: TestClient,
                                                    two_documents: str) -> None:
    token = two_documents
    assert timestamps(search(client, token, "searchingRequest")) == [
        "2026-11-20T01:05:00", "2026-11-21T01:05:00"]
    # The period is in the documents' time zone (UTC+1): 01:05 local is inside, 01:06 not.
    assert timestamps(search(client, token, "searchingRequest",
                             period_start="2026-11-21T00:00:00")) == ["2026-11-21T01:05:00"]
    assert timestamps(search(client, token, "searchingRequest",
                             period_end="2026-11-20T01:05:00")) == ["2026-11-20T01:05:00"]
    assert timestamps(search(client, token, "searchingRequest",
                             period_start="2026-11-20T01:06:00",
                             period_end="2026-11-21T00:00:00")) == []
    # With an offset a bound is absolute: 00:05Z is 01:05 in UTC+1.
    assert timestamps(search(client, token, "searchingRequest",
                             period_start="2026-11-21T00:05:00Z")) == ["2026-11-21T01:05:00"]
    # Context coordinates: Milan's document is 2 km from the Duomo, Rome's 480 km.
    near_duomo = {"center_latitude": "45.4642", "center_longitude": "9.1900"}
    assert timestamps(search(client, token, "searchingRequest", **near_duomo,
                             distance="2000")) == ["2026-11-20T01:05:00"]
    assert timestamps(search(client, token, "searchingRequest", center_latitude=45.4642,
                             center_longitude=9.19, distance=600_000)) == [
        "2026-11-20T01:05:00", "2026-11-21T01:05:00"]


def test_deep_searching_keeps_the_matching_lines(client: TestClient,
                                                 two_documents: str) -> None:
    token = two_documents
    # one meter's lines, in both documents
    assert line_ids(search(client, token, "deepSearchingRequest", property_label="PODID",
                           property_value="IT001E00112233")) == [[1, 4, 7, 10], [1, 4, 7, 10]]
    # a value of any property; a property of any value
    assert line_ids(search(client, token, "deepSearchingRequest",
                           property_value="15825.750")) == [[7], [7]]
    assert line_ids(search(client, token, "deepSearchingRequest",
                           property_label="NoSuchProperty")) == []
    # line periods [start, end) overlapping the period, in UTC+1: 00:20-00:40 on the 21st
    assert line_ids(search(client, token, "deepSearchingRequest",
                           period_start="2026-11-21T00:20:00",
                           period_end="2026-11-21T00:40:00")) == [[4, 5, 6, 7, 8, 9]]
    # line coordinates: 500 m around the first meter
    assert line_ids(search(client, token, "deepSearchingRequest", center_latitude="45.4781",
                           center_longitude="9.2262", distance="500")) == [
        [1, 4, 7, 10], [1, 4, 7, 10]]
    # every filter at once
    assert line_ids(search(client, token, "deepSearchingRequest", center_latitude="45.4781",
                           center_longitude="9.2262", distance="500",
                           period_start="2026-11-20T00:30:00",
                           period_end="2026-11-20T00:30:00",
                           property_label="PODID", property_value="IT001E00112233")) == [[7]]
    # A deep search without filters is a basicRequest.
    full = search(client, token, "deepSearchingRequest")
    assert full["dataset"] == call(client, "basicRequest", {"resource_id": RESOURCE},
                                   token=token)["dataset"]


def test_deep_search_answers_leave_the_kept_documents_whole(client: TestClient,
                                                            two_documents: str) -> None:
    token = two_documents
    assert len(search(client, token, "deepSearchingRequest",
                      property_value="15825.750")["dataset"]) == 2
    every = call(client, "basicRequest", {"resource_id": RESOURCE}, token=token)["dataset"]
    assert every == [counter_reading(), later_reading()]


def test_searching_by_property_filters_context_then_lines(client: TestClient,
                                                          two_documents: str) -> None:
    token = two_documents
    by_pod = {"property_name": "PODID", "property_value": "IT001E00778899"}
    assert line_ids(search(client, token, "searchingByPropertyRequest", **by_pod)) == [
        [3, 6, 9, 12], [3, 6, 9, 12]]
    assert line_ids(search(client, token, "searchingByPropertyRequest", **by_pod,
                           period_start="2026-11-21T00:00:00")) == [[3, 6, 9, 12]]
    # the context-level place: Rome's document only
    assert line_ids(search(client, token, "searchingByPropertyRequest", **by_pod,
                           center_latitude="41.9", center_longitude="12.5",
                           distance="1000")) == [[3, 6, 9, 12]]


def test_searches_read_nested_property_values(client: TestClient, token: str) -> None:
    document = counter_reading()
    line = document["UrbanDataset"]["values"]["line"][0]
    line["property"].append({"name": "Phases", "property": [
        {"name": "Phase1Voltage", "val": "231.0"}, {"name": "Phase2Voltage", "val": "229.5"}]})
    push(client, token, copy.deepcopy(document))
    assert line_ids(search(client, token, "deepSearchingRequest", property_label="Phase2Voltage",
                           property_value="229.5")) == [[1]]


# -- the documented session ----------------------------------------------------------------------


@pytest.fixture
def documented_client(database_url: str) -> Iterator[TestClient]:
    """A broker set up as docs/urbandataset.md says (the credentials of its example)."""
    settings = Settings(database_url=database_url, sqlite_synchronous="normal",
                        allow_remote_contexts=False, scps_username="comune-milano",
                        scps_password="change-me")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def test_the_gateway_session_of_the_docs_runs(documented_client: TestClient) -> None:
    import test_docs  # tests/ is on sys.path: the docs tests' small shell runs the page

    page = test_docs.DOCS / "urbandataset.md"
    gateway_blocks = [b for b in test_docs.blocks(page)
                      if b.lang == "bash" and (b.marker or "").startswith(
                          "docs-test: skip (gateway session")]
    assert gateway_blocks, "docs/urbandataset.md lost its gateway session"
    session = test_docs.Session(documented_client)
    for block in gateway_blocks:
        for command in test_docs.shell_commands(block):
            session.run(command)
    answers = [orjson.loads(e.body) for e in session.exchanges
               if e.path.startswith(GATEWAY)]
    codes = [a["code"] for a in answers]
    assert {"01", "02", "03", "08"} <= set(codes), codes
    assert all(code < "10" for code in codes), answers
    push_answer = next(a for a in answers if a["code"] == "02")
    assert push_answer["detail"] == "2 of 2 lines imported into 1 entity (9 new values)"
    deep = next(e for e in session.exchanges if e.path.endswith("/deepSearchingRequest"))
    (found,) = orjson.loads(deep.body)["dataset"]
    assert [line["id"] for line in found["UrbanDataset"]["values"]["line"]] == [2]


# -- failures part-way, and races ----------------------------------------------------------------


def test_a_push_the_broker_cannot_take_keeps_nothing(client: TestClient, token: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from sinergia.adapters.broker_client import BrokerUnavailable
    from sinergia.adapters.urbandataset import gateway as gateway_module

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise BrokerUnavailable("cannot reach the broker: connection refused")

    monkeypatch.setattr(gateway_module, "write_import", unreachable)
    answer = push(client, token, counter_reading())
    assert answer["code"] == Code.INTERNAL_ERROR and "cannot reach" in answer["detail"]
    assert call(client, "basicRequest", {"resource_id": RESOURCE},
                token=token)["dataset"] == []
    monkeypatch.undo()
    assert push(client, token, counter_reading())["code"] == "02"  # not "already exists"


def test_a_document_whose_summary_was_lost_is_found_again(client: TestClient,
                                                          token: str) -> None:
    """A crash between keeping a document and its summary: the next push of it answers
    'already exists' and puts the summary back, so the requests find it again."""
    from sinergia.broker.urbandatasets import SUMMARY_KIND

    assert push(client, token, counter_reading())["code"] == "02"
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    key = f"{RESOURCE} 2026-11-20T01:05:00"

    async def lose_summary() -> None:
        assert await store.delete_record(SUMMARY_KIND, "", key)

    client.portal.call(lose_summary)  # type: ignore[union-attr]  # on the app's event loop
    assert call(client, "basicRequest", {"resource_id": RESOURCE},
                token=token)["dataset"] == []
    assert push(client, token, counter_reading())["code"] == Code.ALREADY_EXISTS
    assert len(call(client, "basicRequest", {"resource_id": RESOURCE},
                    token=token)["dataset"]) == 1


@pytest.mark.anyio
async def test_two_identical_pushes_at_once_import_once(settings: Settings) -> None:
    import asyncio

    import httpx

    api = create_app(settings)
    runtime = api.state.runtime
    await runtime.store.open()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                     base_url="http://testserver") as http:
            logged = await http.post(f"{GATEWAY}/login",
                                     json={"username": USER, "password": PASSWORD})
            headers = {"Authorization": f"Bearer {logged.json()['token']}"}
            body = {"resource_id": RESOURCE, "dataset": counter_reading()}
            answers = await asyncio.gather(*(http.post(f"{GATEWAY}/push", json=body,
                                                       headers=headers) for _ in range(3)))
            assert sorted(a.json()["code"] for a in answers) == ["02", "22", "22"]
            history = await http.get("/ngsi-ld/v1/temporal/entities", params={
                "type": METER_TYPE, "timerel": "after", "timeAt": "2026-11-19T00:00:00Z"})
            energy = ENERGY + "totalActiveEnergyImport"
            assert sorted(len(e[energy]) for e in history.json()) == [4, 4, 4]
    finally:
        await runtime.store.close()
