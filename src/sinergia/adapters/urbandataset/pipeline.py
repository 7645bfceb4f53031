"""UrbanDataset ↔ the broker: an import's histories written through a :class:`BrokerClient`, and
a period's history read back for export. The command line and the SCPS gateway both go through
here, so a document pushed to the gateway and the same file imported by hand end up the same.

Writes use the temporal API (``add_history``): every line's values are recorded with their own
``observedAt``, and each entity's current state becomes its latest values. Instances the
broker already holds (same entity, attribute, time and value — a document imported twice, or
producers whose documents overlap) are left out, so re-importing never duplicates history.

The entities name their types and attributes with the Sinergia UrbanDataset @context. It is
sent inline (only the terms the entities use), never as its URL: no broker has to fetch it.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from sinergia.adapters.broker_client import BatchReport, BrokerClient, QueryRefused
from sinergia.adapters.urbandataset.export import export_document
from sinergia.adapters.urbandataset.mapping import context_terms, mapping_for, spec_base_name
from sinergia.adapters.urbandataset.report import ImportResult
from sinergia.adapters.urbandataset.timezone import parse_utc
from sinergia.ngsild.model import CORE_CONTEXT_URL

__all__ = [
    "WriteReport",
    "export_history",
    "read_history",
    "spec_ids_for_type",
    "type_for_spec",
    "ud_context",
    "write_import",
]

_MEMBERS: Final = frozenset({"id", "type", "scope", "@context", "createdAt", "modifiedAt"})
WRITE_CHUNK: Final = 200  # entities per add_history call (the progress bar moves per chunk)

Progress = Callable[[int, int], None]  # (entities written so far, entities in all)


@functools.cache
def _terms() -> dict[str, str]:
    return context_terms()


def ud_context(terms: Iterable[str] | None = None) -> list[Any]:
    """The Sinergia UrbanDataset @context, inline, followed by the core context: all of it, or
    only the definitions of ``terms`` (the others are left to the core context)."""
    known = _terms()
    chosen = dict(known) if terms is None else {t: known[t] for t in terms if t in known}
    return [chosen, CORE_CONTEXT_URL] if chosen else [CORE_CONTEXT_URL]


def _used_terms(entities: Iterable[Mapping[str, Any]]) -> set[str]:
    used: set[str] = set()
    for entity in entities:
        kind = entity.get("type")
        used.update(kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else [])
        used.update(name for name in entity if name not in _MEMBERS)
    return used


@dataclass(slots=True)
class WriteReport:
    """What writing one import did: the broker's per-entity report, how many instances were
    written and how many were left out because the broker already had them."""

    broker: BatchReport = field(default_factory=BatchReport)
    instances: int = 0
    already_recorded: int = 0

    @property
    def ok(self) -> bool:
        return self.broker.ok


def _instant(text: Any) -> datetime | None:
    try:
        return parse_utc(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _fingerprint(instance: Mapping[str, Any]) -> tuple[datetime | None, bytes]:
    value = instance.get("value", instance.get("object"))
    return _instant(instance.get("observedAt")), orjson.dumps(value,
                                                              option=orjson.OPT_SORT_KEYS)


def _window(entities: Sequence[Mapping[str, Any]]) -> tuple[datetime, datetime] | None:
    # The attributes of a line share its time: parse each distinct text once.
    texts = {instance.get("observedAt") for entity in entities
             for name, instances in entity.items()
             if name not in _MEMBERS and isinstance(instances, list)
             for instance in instances if isinstance(instance, dict)}
    times = [moment for text in texts if (moment := _instant(text)) is not None]
    if not times:
        return None
    return min(times), max(times) + timedelta(milliseconds=1)


async def _recorded(result: ImportResult, broker: BrokerClient, tenant: str,
                    context: list[Any]) -> dict[tuple[str, str], set[Any]]:
    """(entity id, attribute) → fingerprints of the instances the broker already holds in the
    document's period, for the document's entities."""
    window = _window(result.entities)
    if window is None:
        return {}
    try:
        known = await broker.temporal_query(result.entity_type, *window, tenant=tenant,
                                            context=context)
    except QueryRefused:
        return {}  # e.g. a tenant that does not exist yet: nothing is recorded
    wanted = {str(entity["id"]) for entity in result.entities}
    recorded: dict[tuple[str, str], set[Any]] = {}
    for entity in known:
        entity_id = str(entity.get("id"))
        if entity_id not in wanted:
            continue
        for name, instances in entity.items():
            if name in _MEMBERS or not isinstance(instances, list):
                continue
            recorded[(entity_id, name)] = {_fingerprint(i) for i in instances
                                           if isinstance(i, dict)}
    return recorded


def _unrecorded(entities: Sequence[Mapping[str, Any]],
                recorded: dict[tuple[str, str], set[Any]]
                ) -> tuple[list[dict[str, Any]], int, int]:
    """The entities with only the instances not recorded yet; how many instances are kept
    and how many were left out."""
    kept_entities: list[dict[str, Any]] = []
    kept = left_out = 0
    for entity in entities:
        entity_id = str(entity["id"])
        out: dict[str, Any] = {k: v for k, v in entity.items() if k in _MEMBERS}
        for name, instances in entity.items():
            if name in _MEMBERS:
                continue
            seen = recorded.get((entity_id, name), set())
            new = [i for i in instances if _fingerprint(i) not in seen] if seen else instances
            left_out += len(instances) - len(new)
            if new:
                out[name] = new
                kept += len(new)
        if any(name not in _MEMBERS for name in out):
            kept_entities.append(out)
    return kept_entities, kept, left_out


async def write_import(result: ImportResult, broker: BrokerClient, *, tenant: str = "",
                       on_progress: Progress | None = None,
                       chunk_size: int = WRITE_CHUNK) -> WriteReport:
    """Write an import's entities' histories (and so their current state) to the broker,
    leaving out instances it already holds. Raises BrokerUnavailable when the broker cannot be
    reached; a refused entity is a failure in the report."""
    context = ud_context(_used_terms(result.entities))
    recorded = await _recorded(result, broker, tenant, context)
    entities, instances, left_out = _unrecorded(result.entities, recorded)
    report = WriteReport(instances=instances, already_recorded=left_out)
    written = 0
    for start in range(0, len(entities), max(1, chunk_size)):
        chunk = [{k: v for k, v in entity.items() if k != "@context"}
                 for entity in entities[start:start + chunk_size]]
        report.broker.add(await broker.add_history(chunk, tenant=tenant, context=context))
        written += len(chunk)
        if on_progress is not None:
            on_progress(written, len(entities))
    return report


# -- reading back -------------------------------------------------------------------------------


@functools.cache
def _spec_bases() -> tuple[str, ...]:
    folder = importlib.resources.files("sinergia").joinpath("data/urbandataset/templates")
    suffix = "-Template.json"
    return tuple(sorted({spec_base_name(entry.name[:-len(suffix)])
                         for entry in folder.iterdir() if entry.name.endswith(suffix)}))


def spec_ids_for_type(entity_type: str) -> list[str]:
    """The UrbanDataset specifications (``CounterReading-2.0``…) whose lines become entities of
    ``entity_type``: one for a type named after its specification, several for a Smart Data
    Model type several specifications share (e.g. ``WeatherObserved``). Any other type is
    taken for a specification of its own name, as importing one without a template names it."""
    found = [f"{base}-2.0" for base in _spec_bases()
             if mapping_for(base).entity_type == entity_type]
    return found or [f"{entity_type}-2.0"]


def type_for_spec(spec_id: str) -> str:
    """The entity type the lines of a specification become."""
    return mapping_for(spec_base_name(spec_id)).entity_type


async def read_history(broker: BrokerClient, entity_type: str, start: datetime, end: datetime,
                       *, tenant: str = "") -> list[dict[str, Any]]:
    """Every instance of the type's entities observed in ``[start, end)``, as temporal
    entities named with the UrbanDataset @context (what ``export_document`` reads)."""
    return await broker.temporal_query(entity_type, start, end, tenant=tenant,
                                       context=ud_context())


async def export_history(broker: BrokerClient, *, entity_type: str, spec_id: str,
                         start: datetime, end: datetime, producer_id: str,
                         time_zone: str = "UTC+1", tenant: str = "",
                         **options: Any) -> dict[str, Any]:
    """The UrbanDataset 2.0 document of a type's history in ``[start, end)``. Raises
    EmptyExport when nothing was observed then, QueryRefused/BrokerUnavailable from the
    broker; ``options`` go to :func:`export_document` (``timestamp``, ``coordinates``…)."""
    entities = await read_history(broker, entity_type, start, end, tenant=tenant)
    return export_document(entities, spec_id=spec_id, producer_id=producer_id,
                           period=(start, end), time_zone=time_zone, **options)
