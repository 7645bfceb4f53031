"""The few NGSI-LD calls the lighting app makes, over HTTP with httpx.

The app's ``httpx.AsyncClient`` reaches the broker either through the network (a base URL) or,
inside the server's own process, through ``httpx.ASGITransport`` — the same public API either
way. Every body is JSON-LD with the app's @context inline, so the app needs no hosted context
and reads back exactly the short names it wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from sinergia.apps.lighting.vocabulary import LIGHTING_CONTEXT

log = logging.getLogger(__name__)

BASE = "/ngsi-ld/v1"
JSON_LD = "application/ld+json"


class BrokerError(RuntimeError):
    """The broker could not be reached or refused a request the app cannot do without."""


class BrokerApi:
    def __init__(self, client: httpx.AsyncClient, *, tenant: str = "",
                 context: Mapping[str, Any] | None = None, page_size: int = 500,
                 batch_size: int = 500) -> None:
        self.client = client
        self.tenant = tenant
        self.context = dict(context or LIGHTING_CONTEXT)
        self.page_size = page_size
        self.batch_size = batch_size

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": JSON_LD, "Accept": "application/json"}
        if self.tenant:
            headers["NGSILD-Tenant"] = self.tenant
        return headers

    async def _post(self, path: str, body: Any, params: Mapping[str, str] | None = None
                    ) -> httpx.Response:
        try:
            return await self.client.post(BASE + path, content=orjson.dumps(body),
                                          headers=self._headers(), params=params)
        except httpx.HTTPError as exc:
            raise BrokerError(f"cannot reach the broker: {exc!r}") from exc

    async def query(self, entity_type: str) -> list[dict[str, Any]]:
        """Every entity of ``entity_type`` (normalized, short names), following the pages."""
        found: list[dict[str, Any]] = []
        body = {"type": "Query", "entities": [{"type": entity_type}], "@context": self.context}
        offset = 0
        while True:
            response = await self._post("/entityOperations/query", body, {
                "limit": str(self.page_size), "offset": str(offset)})
            if response.status_code != 200:
                raise BrokerError(f"query of {entity_type} refused ({response.status_code}): "
                                  f"{response.text[:300]}")
            page = response.json()
            found.extend(e for e in page if isinstance(e, dict))
            if len(page) < self.page_size:
                return found
            offset += self.page_size

    async def _batch(self, op: str, entities: Sequence[Mapping[str, Any]],
                     params: Mapping[str, str] | None = None) -> list[str]:
        """Run a batch operation in chunks; the ids that failed (logged), [] when all
        succeeded."""
        failed: list[str] = []
        for start in range(0, len(entities), self.batch_size):
            chunk = [{**e, "@context": self.context}
                     for e in entities[start:start + self.batch_size]]
            response = await self._post(f"/entityOperations/{op}", chunk, params)
            if response.status_code in (200, 201, 204):
                continue
            if response.status_code == 207:
                for error in response.json().get("errors", []):
                    failed.append(str(error.get("entityId")))
                    log.warning("lighting: %s of %s refused: %s", op, error.get("entityId"),
                                error.get("error", {}).get("detail"))
                continue
            raise BrokerError(f"batch {op} refused ({response.status_code}): "
                              f"{response.text[:300]}")
        return failed

    async def update(self, entities: Sequence[Mapping[str, Any]]) -> list[str]:
        """Overwrite the given attributes of existing entities (absent entities fail)."""
        return await self._batch("update", entities)

    async def upsert(self, entities: Sequence[Mapping[str, Any]]) -> list[str]:
        """Create the entities, or replace them whole."""
        return await self._batch("upsert", entities)

    async def ensure_subscription(self, subscription: Mapping[str, Any]) -> None:
        """Create the subscription, or bring the existing one with its id up to date."""
        body = {**subscription, "@context": self.context}
        response = await self._post("/subscriptions", body)
        if response.status_code == 201:
            return
        if response.status_code == 409:
            changes = {k: v for k, v in body.items() if k not in ("id", "type")}
            try:
                patched = await self.client.patch(
                    f"{BASE}/subscriptions/{quote(str(subscription['id']), safe=':')}",
                    content=orjson.dumps(changes), headers=self._headers())
            except httpx.HTTPError as exc:
                raise BrokerError(f"cannot reach the broker: {exc!r}") from exc
            if patched.status_code == 204:
                return
            response = patched
        raise BrokerError(f"subscription {subscription.get('id')} refused "
                          f"({response.status_code}): {response.text[:300]}")
