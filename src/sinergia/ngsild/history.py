"""What a change adds to the temporal history: one record per attribute instance that was
created, changed or deleted. Storage backends call :func:`history_instances` (or
:func:`history_records`, the same records with the ``instanceId`` beside the instance rather than
in it) inside the write transaction of every change, with the entity before and after it, so it
is cheap: unchanged
instances are skipped by :func:`sinergia.ngsild.updates.changed_instances`, which compares by
identity first, and nothing is deep-copied.

A record's ``instance`` is exactly what storage keeps and what
:func:`sinergia.ngsild.temporal.render_temporal` shows again: the entity's instance (sub-attributes
included, shared, not copied) plus ``instanceId``. Times:

* ``observed_at`` — the instance's ``observedAt``, if any;
* ``modified_at`` — when the change was recorded (the instance's ``modifiedAt``);
* ``created_at`` — set only on the record of a creation (``timeproperty=createdAt`` selects the
  creations, as in Stellio);
* deletions (of an attribute instance, an attribute or the whole entity) are recorded as a
  marker instance in the NGSI-LD ``deletedAt`` convention: the attribute's kind with the NGSI-LD
  Null as its value (``"urn:ngsi-ld:null"``, ``{"@none": "urn:ngsi-ld:null"}`` for a
  languageMap, ``["urn:ngsi-ld:null"]`` for lists), ``deletedAt`` = ``modifiedAt`` = the time of
  the deletion, its ``datasetId`` if it had one.

``numeric`` is the value of a Property whose value is a JSON number (not a boolean), as a float,
so storage can index and aggregate it without parsing JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.model import (
    LANGUAGE_PROPERTY,
    LIST_PROPERTY,
    LIST_RELATIONSHIP,
    NULL_URI,
    PROPERTY,
    VALUE_MEMBER,
    Entity,
    Instance,
)
from sinergia.ngsild.updates import changed_instances

try:  # time-ordered ids keep storage indexes append-only
    from uuid_utils import uuid7 as _new_uuid
except ImportError:  # pragma: no cover - uuid-utils is a dependency; uuid4 keeps ids unique
    from uuid import uuid4 as _new_uuid  # type: ignore[assignment]

INSTANCE_ID_PREFIX: Final = "urn:ngsi-ld:Instance:"
_SYSTEM: Final = frozenset({"createdAt", "modifiedAt", "deletedAt", "instanceId"})


class HistoryInstance(NamedTuple):
    """One history record (see the module doc). ``attr`` is the expanded attribute IRI.
    A named tuple, not a frozen dataclass: as immutable, and a batch of a thousand entities
    builds ten thousand of them, which a frozen dataclass's ``__init__`` makes 2x slower."""

    attr: str
    dataset_id: str | None
    instance_id: str
    observed_at: str | None
    modified_at: str
    deleted: bool
    instance: Instance
    numeric: float | None
    created_at: str | None = None

    def time(self, timeproperty: str) -> str | None:
        """The record's time for a ``timeproperty`` (observedAt falls back to modifiedAt),
        None when it has none (it is then outside every filter on that property)."""
        if timeproperty == "observedAt":
            return self.observed_at or self.modified_at
        if timeproperty == "modifiedAt":
            return self.modified_at
        if timeproperty == "createdAt":
            return self.created_at
        if timeproperty == "deletedAt":
            return self.modified_at if self.deleted else None
        raise ValueError(f"unknown timeproperty {timeproperty!r}")


def new_instance_id() -> str:
    """A fresh ``urn:ngsi-ld:Instance:<uuid>`` (UUIDv7: ordered by creation time)."""
    return INSTANCE_ID_PREFIX + str(_new_uuid())


def history_records(before: Entity | None, after: Entity | None, *,
                    now: str) -> list[HistoryInstance]:
    """The records a change from ``before`` to ``after`` adds to history (None = the entity
    does not exist on that side): new and changed instances (a change of a sub-attribute is a
    change of its attribute), and a deletion marker for each instance gone. *Bare* records:
    their ``instance`` does not hold the ``instanceId`` (what a backend that keeps the id in a
    column of its own stores), and is the entity's instance itself (shared, not copied) when
    that holds none, so a batch of thousands of instances costs no copy."""
    records: list[HistoryInstance] = []
    append = records.append
    for attr, old, new in changed_instances(before, after):
        if new is not None:
            append(_record(attr, new, now, created=old is None))
        elif old is not None:
            append(_deletion(attr, old, now))
    return records


def history_instances(before: Entity | None, after: Entity | None, *,
                      now: str) -> list[HistoryInstance]:
    """:func:`history_records` as :class:`HistoryInstance`."""
    return [with_id(record) for record in history_records(before, after, now=now)]


def with_id(record: HistoryInstance) -> HistoryInstance:
    """A bare record (see :func:`history_records`) with its id in its instance (a copy, which
    ends with the id)."""
    instance = dict(record.instance)
    instance["instanceId"] = record.instance_id
    attr, dataset_id, instance_id, observed_at, modified_at, deleted, _, numeric, created_at = (
        record)
    return HistoryInstance(attr, dataset_id, instance_id, observed_at, modified_at, deleted,
                           instance, numeric, created_at)


def without_id(record: HistoryInstance) -> HistoryInstance:
    """The bare record of ``record`` (its instance without the id)."""
    return record._replace(instance={k: v for k, v in record.instance.items()
                                     if k != "instanceId"})


def temporal_records(attrs: Mapping[str, list[Instance]], now: str) -> list[HistoryInstance]:
    """Records for instances a client adds to history directly (POST /temporal/entities and
    /temporal/entities/{id}/attrs): each is created now, at its own ``observedAt``."""
    records: list[HistoryInstance] = []
    for attr, instances in attrs.items():
        for instance in instances:
            stamped = {k: v for k, v in instance.items() if k not in _SYSTEM}
            stamped["createdAt"] = now
            stamped["modifiedAt"] = now
            records.append(with_id(_record(attr, stamped, now, created=True)))
    return records


def deletion_record(attr: str, old: Instance, now: str) -> HistoryInstance:
    """The marker recording that instance ``old`` of ``attr`` was deleted at ``now``."""
    return with_id(_deletion(attr, old, now))


def _deletion(attr: str, old: Instance, now: str) -> HistoryInstance:
    kind = old.get("type", PROPERTY)
    if kind not in VALUE_MEMBER:
        kind = PROPERTY
    marker: Instance = {"type": kind, VALUE_MEMBER[kind]: _null_value(kind)}
    dataset_id = old.get("datasetId")
    if dataset_id is not None:
        marker["datasetId"] = dataset_id
    marker["modifiedAt"] = now
    marker["deletedAt"] = now
    return HistoryInstance(attr, dataset_id, new_instance_id(), None, now, True, marker, None)


def patch_record(attr: str, old: Instance, new: Instance, now: str, *,
                 created_at: str | None) -> HistoryInstance:
    """PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}: ``new`` (a whole parsed
    instance) replaces the stored instance ``old``, which keeps its ``instanceId``,
    ``datasetId``, ``createdAt`` and, when ``new`` has none, its ``observedAt``; ``created_at``
    is the stored record's own (None unless it recorded a creation). A deletion marker cannot
    be modified, nor the datasetId changed (BadRequestData)."""
    if "deletedAt" in old:
        raise BadRequestData("a recorded deletion cannot be modified")
    dataset_id = old.get("datasetId")
    if new.get("datasetId", dataset_id) != dataset_id:
        raise BadRequestData("the datasetId of a recorded instance cannot be changed")
    instance = {k: v for k, v in new.items() if k not in _SYSTEM}
    if "observedAt" not in instance and "observedAt" in old:
        instance["observedAt"] = old["observedAt"]
    if dataset_id is not None:
        instance["datasetId"] = dataset_id
    if "createdAt" in old:
        instance["createdAt"] = old["createdAt"]
    instance["modifiedAt"] = now
    return with_id(_build(attr, instance, old.get("instanceId") or new_instance_id(), now,
                          created_at=created_at))


def _record(attr: str, new: Instance, now: str, *, created: bool) -> HistoryInstance:
    if "instanceId" in new:  # the id of a record is its own, never one the input carried
        new = {k: v for k, v in new.items() if k != "instanceId"}
    created_at = None
    if created:
        stamp = new.get("createdAt")
        created_at = stamp if isinstance(stamp, str) else now
    return _build(attr, new, new_instance_id(), now, created_at=created_at)


def _build(attr: str, instance: Instance, instance_id: str, now: str, *,
           created_at: str | None) -> HistoryInstance:
    observed = instance.get("observedAt")
    modified = instance.get("modifiedAt")
    # Once per changed instance of every write: tuple.__new__ skips the named tuple's own
    # __new__ (a Python function with keyword handling), half the cost of a record.
    return tuple.__new__(HistoryInstance, (
        attr, instance.get("datasetId"), instance_id,
        observed if isinstance(observed, str) and observed != NULL_URI else None,
        modified if isinstance(modified, str) else now, False, instance, numeric_value(instance),
        created_at))


def numeric_value(instance: Instance) -> float | None:
    """The value of a Property holding a JSON number, as a float; else None."""
    value = instance.get("value")
    if type(value) is float:  # the type first: most values are not numbers at all
        return value if instance.get("type", PROPERTY) == PROPERTY else None
    if type(value) is int and instance.get("type", PROPERTY) == PROPERTY:
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float: not aggregatable
            return None
    return None


def _null_value(kind: str) -> Any:
    if kind == LANGUAGE_PROPERTY:
        return {"@none": NULL_URI}
    if kind in (LIST_PROPERTY, LIST_RELATIONSHIP):
        return [NULL_URI]
    return NULL_URI
