"""Refusals by an ``Authenticator`` become ProblemDetails (401 with a challenge, 403), not 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from starlette.types import Scope

from sinergia.api.app import create_app
from sinergia.api.security import Principal
from sinergia.ngsild.errors import AccessDenied, Unauthenticated
from sinergia.settings import Settings

BASE = "/ngsi-ld/v1"
CHALLENGE = 'Bearer realm="sinergia"'


class ToyTokens:
    """Token "reader" may only read; token "admin" may do anything; no token: 401."""

    async def authenticate(self, scope: Scope) -> Principal:
        headers = dict(scope["headers"])
        token = headers.get(b"authorization", b"").removeprefix(b"Bearer ").decode()
        if token not in ("reader", "admin"):
            raise Unauthenticated("A valid bearer token is required", challenge=CHALLENGE)
        if token == "reader" and scope["method"] != "GET":
            raise AccessDenied("Readers may not change anything")
        return Principal(token, frozenset({token}))


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, authenticator=ToyTokens())) as test_client:
        yield test_client


def test_missing_credentials_answer_401_with_a_challenge(guarded: TestClient) -> None:
    response = guarded.get(f"{BASE}/types")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/Unauthenticated"
    assert body["detail"] == "A valid bearer token is required"


def test_a_known_caller_without_the_right_answers_403(guarded: TestClient) -> None:
    entity = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}
    response = guarded.post(f"{BASE}/entities", json=entity,
                            headers={"Authorization": "Bearer reader"})
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers
    assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/AccessDenied"
    admin = {"Authorization": "Bearer admin"}
    assert guarded.get(f"{BASE}/entities/urn:ngsi-ld:Thing:1", headers=admin).status_code == 404


def test_accepted_callers_reach_the_api(guarded: TestClient) -> None:
    entity = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}
    admin = {"Authorization": "Bearer admin"}
    assert guarded.post(f"{BASE}/entities", json=entity, headers=admin).status_code == 201
    read = guarded.get(f"{BASE}/entities/urn:ngsi-ld:Thing:1",
                       headers={"Authorization": "Bearer reader"})
    assert read.status_code == 200
    assert read.json()["id"] == "urn:ngsi-ld:Thing:1"
