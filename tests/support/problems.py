"""Assertions on NGSI-LD ProblemDetails answers, shared by the conformance tests."""

from __future__ import annotations

from typing import Any


def problem(response: Any, status: int, name: str) -> dict[str, Any]:
    """Assert an ``application/json`` ProblemDetails of this status and NGSI-LD error type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{name}", body
    assert body["title"], body
    return body
