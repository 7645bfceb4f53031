"""Hosted @contexts (POST /jsonldContexts): stored per tenant, served by this server, and
resolved by the context resolver without any HTTP request."""

from __future__ import annotations

import contextvars
import re
import uuid
from typing import Any

from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.errors import BadRequestData, ResourceNotFound
from sinergia.ngsild.model import now_iso
from sinergia.storage.base import Store

# The tenant of the request being served: hosted contexts never cross tenants.
current_tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="")

KIND = "context"  # the store record kind of hosted @contexts
HOSTED_PATH = "/ngsi-ld/v1/jsonldContexts/"
_HOSTED_RE = re.compile(r"^https?://[^/]+" + re.escape(HOSTED_PATH) + r"([A-Za-z0-9\-]+)$")


class ContextService:
    def __init__(self, store: Store, resolver: ContextResolver) -> None:
        self.store = store
        self.resolver = resolver

    async def load_hosted(self, url: str) -> dict[str, Any] | None:
        """The HostedLoader given to the resolver."""
        match = _HOSTED_RE.match(url)
        if match is None:
            return None
        record = await self.store.get_record(KIND, current_tenant.get(), match.group(1))
        if record is None:
            return None
        document: dict[str, Any] = record["document"]
        return document

    async def add(self, tenant: str, document: Any, base_url: str) -> dict[str, Any]:
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData("A hosted context is a JSON object with an '@context' member")
        await self.resolver.resolve(document["@context"])  # refuse what cannot be used
        local_id = str(uuid.uuid4())
        record = {"localId": local_id, "URL": base_url.rstrip("/") + HOSTED_PATH + local_id,
                  "kind": "hosted", "createdAt": now_iso(), "document": document}
        await self.store.put_record(KIND, tenant, local_id, record)
        return record

    async def get(self, tenant: str, local_id: str) -> dict[str, Any]:
        """The tenant's hosted @context, else a cached one (shared by every tenant), by the
        localId that :meth:`list` shows."""
        record = await self.store.get_record(KIND, tenant, local_id)
        if record is not None:
            return record
        for entry in self.resolver.cached_entries():
            if entry["localId"] == local_id:
                document = self.resolver.cached_document(entry["URL"])
                if document is not None:
                    return {**entry, "document": document}
        raise ResourceNotFound(f"No hosted or cached @context {local_id!r}")

    async def list(self, tenant: str, kind: str | None) -> list[dict[str, Any]]:
        records = []
        if kind in (None, "hosted"):
            records = [r.record for r in await self.store.list_records(KIND, tenant)]
        if kind in (None, "cached"):
            records.extend(self.resolver.cached_entries())
        return records

    async def delete(self, tenant: str, local_id: str) -> None:
        record = await self.store.get_record(KIND, tenant, local_id)
        if record is None:
            raise ResourceNotFound(f"No hosted @context {local_id!r}")
        await self.store.delete_record(KIND, tenant, local_id)
        self.resolver.forget(record["URL"])
