"""The SCPS UrbanDatasetGateway's use cases, free of HTTP (``api/scps.py`` speaks the protocol).

A pushed document is kept whole — the requests answer with the documents producers sent — and
imported into the broker exactly as ``sinergia import urbandataset`` imports a file: its lines
become the history and current state of NGSI-LD entities. Deleting a document forgets the
document; the measurements it brought stay in the entities' history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import anyio

from sinergia.adapters.broker_client import BrokerClient
from sinergia.adapters.urbandataset.mapping import spec_base_name
from sinergia.adapters.urbandataset.pipeline import WriteReport, write_import
from sinergia.adapters.urbandataset.repair import is_placeholder_producer
from sinergia.adapters.urbandataset.report import ImportResult, UrbanDatasetError
from sinergia.adapters.urbandataset.search import (
    Filters,
    context_matches,
    matching_lines,
    produced_at,
    summarize,
    timestamp_key,
    with_lines,
)
from sinergia.adapters.urbandataset.to_ngsild import import_document
from sinergia.adapters.urbandataset.validation import validate
from sinergia.broker.urbandatasets import StoredSummary, UrbanDatasetService

__all__ = [
    "AlreadyExists",
    "BadGatewayRequest",
    "DocumentNotFound",
    "GatewayRefusal",
    "InvalidDocument",
    "PushOutcome",
    "ResourceId",
    "UrbanDatasetGateway",
    "parse_resource_id",
]

# SCP-<SmartCityId>_<SolutionName>-<n>_<UrbanDatasetName>-<version>_<yyyyMMddHHmmss>
_RESOURCE_ID: Final = re.compile(
    r"SCP-(?P<city>[^_\s]+)_(?P<solution>[^_\s]+)-(?P<instance>\d+)_"
    r"(?P<dataset>[^_\s]+)-(?P<version>\d+(?:\.\d+)*)_(?P<started>\d{14})")
_SHOWN_PROBLEMS: Final = 3


class GatewayRefusal(Exception):
    """A request the gateway cannot satisfy; the message says why, for the caller."""


class BadGatewayRequest(GatewayRefusal):
    """The request itself is malformed: a member missing or of the wrong kind."""


class InvalidDocument(GatewayRefusal):
    """The pushed document is not an UrbanDataset that can be kept and read."""


class AlreadyExists(GatewayRefusal):
    """A document with this resource id and timestamp is already kept."""


class DocumentNotFound(GatewayRefusal):
    """No kept document answers the request."""


@dataclass(frozen=True, slots=True)
class ResourceId:
    text: str
    smart_city: str
    solution: str  # with its instance number: "SmartBuildingCasaccia-3"
    dataset: str  # the UrbanDataset name without version: "SmartBuildingAnomalies"
    version: str
    started: str  # yyyyMMddHHmmss, when the collaboration began


def parse_resource_id(value: Any) -> ResourceId:
    if not isinstance(value, str) or not value.strip():
        raise BadGatewayRequest("resource_id is required")
    text = value.strip()
    match = _RESOURCE_ID.fullmatch(text)
    if match is None:
        raise BadGatewayRequest(
            f"resource_id {text[:120]!r} does not read as SCP-<SmartCityId>_<SolutionName>-<n>"
            "_<UrbanDatasetName>-<version>_<yyyyMMddHHmmss>")
    return ResourceId(text, match["city"], f"{match['solution']}-{match['instance']}",
                      match["dataset"], match["version"], match["started"])


def request_resource_id(value: Any) -> str:
    """The resource id of a request: any non-empty text (only a push checks its form)."""
    if not isinstance(value, str) or not value.strip():
        raise BadGatewayRequest("resource_id is required")
    return value.strip()


@dataclass(frozen=True, slots=True)
class PushOutcome:
    result: ImportResult
    written: WriteReport
    problems: list[str]  # how the document breaks its version's schema (kept all the same)

    def detail(self) -> str:
        counts = self.result.report.counts
        entities = counts.get("entities", 0)
        parts = [f"{counts.get('imported', 0)} of {counts.get('lines', 0)} lines imported into "
                 f"{entities} {'entity' if entities == 1 else 'entities'} "
                 f"({self.written.instances} new values"
                 + (f", {self.written.already_recorded} already recorded"
                    if self.written.already_recorded else "") + ")"]
        if self.result.report.repairs:
            parts.append(f"{len(self.result.report.repairs)} repairs")
        if self.result.report.skipped:
            first = self.result.report.skipped[0]
            parts.append(f"{len(self.result.report.skipped)} lines or values skipped "
                         f"(first: line {first.line}: {first.reason})")
        failed = self.written.broker.failed
        if failed:
            parts.append(f"{len(failed)} entities refused by the broker (first: "
                         f"{failed[0].entity_id}: {failed[0].title}: {failed[0].detail})")
        if self.problems:
            shown = "; ".join(self.problems[:_SHOWN_PROBLEMS])
            parts.append(f"not valid against the UrbanDataset schema ({len(self.problems)} "
                         f"problems: {shown})")
        return "; ".join(parts)


def _urbandataset(dataset: Any) -> dict[str, Any]:
    if not isinstance(dataset, dict) or not isinstance(dataset.get("UrbanDataset"), dict):
        raise BadGatewayRequest('dataset must be an object {"UrbanDataset": {...}}')
    ud: dict[str, Any] = dataset["UrbanDataset"]
    return ud


def _producer_override(ud: dict[str, Any], resource: ResourceId) -> str | None:
    """The solution named by the resource id stands in for a placeholder producer, so that
    such documents still name their entities after who sent them."""
    context = ud.get("context")
    producer = context.get("producer") if isinstance(context, dict) else None
    written = producer.get("id") if isinstance(producer, dict) else None
    if isinstance(written, str) and not is_placeholder_producer(written):
        return None
    return resource.solution


class UrbanDatasetGateway:
    def __init__(self, documents: UrbanDatasetService, broker: BrokerClient) -> None:
        self.documents = documents
        self.broker = broker

    async def push(self, tenant: str, resource: ResourceId, dataset: Any) -> PushOutcome:
        """Keep the document and import it. Raises InvalidDocument, AlreadyExists (nothing
        changed either way) or BrokerUnavailable."""
        ud = _urbandataset(dataset)
        try:
            timestamp = timestamp_key(ud.get("context", {}).get("timestamp")
                                      if isinstance(ud.get("context"), dict) else None)
            summary = summarize(ud)
        except ValueError as exc:
            raise InvalidDocument(f"context.timestamp: {exc}") from None
        if await self.documents.kept(tenant, resource.text, timestamp):
            raise AlreadyExists("UrbanDataset already exists")
        override = _producer_override(ud, resource)
        try:
            result = await anyio.to_thread.run_sync(
                lambda: import_document(dataset, producer_id=override))
        except UrbanDatasetError as exc:
            raise InvalidDocument(str(exc)) from None
        if spec_base_name(result.spec_id) != resource.dataset:
            raise InvalidDocument(f"the document is a {result.spec_id} UrbanDataset, but "
                                  f"resource_id {resource.text} is for {resource.dataset}")
        problems = await anyio.to_thread.run_sync(lambda: validate(dataset))
        # Claim the (resource id, timestamp) first: of two identical pushes, one imports.
        if not await self.documents.add(tenant, resource.text, timestamp, dataset, summary):
            raise AlreadyExists("UrbanDataset already exists")
        try:
            written = await write_import(result, self.broker, tenant=tenant)
        except Exception:
            await self.documents.delete(tenant, resource.text, timestamp)
            raise
        return PushOutcome(result, written, problems)

    async def _summaries(self, tenant: str, resource_id: str) -> list[StoredSummary]:
        found = await self.documents.summaries(tenant, resource_id)
        return sorted(found, key=lambda s: (produced_at(s.summary), s.timestamp))

    async def _load(self, tenant: str, summaries: list[StoredSummary]) -> list[dict[str, Any]]:
        documents = []
        for summary in summaries:
            document = await self.documents.get(tenant, summary.resource_id, summary.timestamp)
            if document is not None:  # deleted meanwhile
                documents.append(document)
        return documents

    async def every(self, tenant: str, resource_id: str) -> list[dict[str, Any]]:
        """Every kept document of the resource, oldest first."""
        return await self._load(tenant, await self._summaries(tenant, resource_id))

    async def last(self, tenant: str, resource_id: str) -> dict[str, Any]:
        """The most recently produced document (by context.timestamp)."""
        summaries = await self._summaries(tenant, resource_id)
        for summary in reversed(summaries):
            found = await self._load(tenant, [summary])
            if found:
                return found[0]
        raise DocumentNotFound(f"no UrbanDataset for resource_id {resource_id}")

    async def specific(self, tenant: str, resource_id: str, timestamp: Any) -> dict[str, Any]:
        found = await self.documents.get(tenant, resource_id, self._timestamp(timestamp))
        if found is None:
            raise DocumentNotFound(f"no UrbanDataset for resource_id {resource_id} with "
                                   f"timestamp {timestamp}")
        return found

    async def delete(self, tenant: str, resource_id: str, timestamp: Any) -> None:
        if not await self.documents.delete(tenant, resource_id, self._timestamp(timestamp)):
            raise DocumentNotFound(f"no UrbanDataset for resource_id {resource_id} with "
                                   f"timestamp {timestamp}")

    @staticmethod
    def _timestamp(value: Any) -> str:
        try:
            return timestamp_key(value)
        except ValueError:
            raise BadGatewayRequest("timestamp must be the context.timestamp of the "
                                    "UrbanDataset, e.g. 2026-11-21T00:05:00") from None

    async def search(self, tenant: str, resource_id: str, *, context: Filters,
                     lines: Filters | None = None) -> list[dict[str, Any]]:
        """The resource's documents that pass the ``context`` filters, oldest first; with
        ``lines`` filters, each holding only its matching lines (documents without any are
        left out)."""
        chosen = [s for s in await self._summaries(tenant, resource_id)
                  if context_matches(s.summary, context)]
        documents = await self._load(tenant, chosen)
        if lines is None or lines == Filters():
            return documents
        found = []
        for document in documents:
            kept = matching_lines(document["UrbanDataset"], lines)
            if kept:
                found.append(with_lines(document, kept))
        return found
