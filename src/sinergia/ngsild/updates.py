"""The NGSI-LD update rules, as pure functions on the internal form: create, replace, append,
update, partial update, merge-patch, attribute replace/delete, upsert. The broker wraps them in
store edits; every backend therefore applies exactly the same rules.

Every function receives the current stored entity (or None) and ``now`` (an ISO timestamp),
returns a NEW entity (never mutates its inputs), keeps ``createdAt`` of what already existed,
sets ``modifiedAt = now`` on the entity and on every instance it creates or changes (and
``createdAt = now`` on new ones), and raises the typed errors of ``sinergia.ngsild.errors``.

Conventions shared by every rule (ETSI GS CIM 009 v1.8/v1.9):

* Instances are matched by ``datasetId`` (absent = the default instance); the default instance
  is kept first in its attribute's list.
* Unchanged instances are shared, by identity, between the old and the new entity. An instance
  rewritten with exactly the same content (system members aside) counts as unchanged: it keeps
  its ``modifiedAt`` and :func:`changed_instances` does not report it. The entity's own
  ``modifiedAt`` always becomes ``now``.
* Instance timestamps are kept on top-level attribute instances only; sub-attributes carry none.
* NGSI-LD Null (``urn:ngsi-ld:null`` as the value member; ``{"@none": "urn:ngsi-ld:null"}`` as a
  languageMap; ``["urn:ngsi-ld:null"]`` as a list; a JSON null alike) means "delete" only where
  the standard gives it that meaning: update attributes (5.5.8/5.6.2: the instance is deleted),
  partial attribute update (5.6.4: sub-attributes and optional members are deleted, the value
  itself may not be nulled) and merge-patch (5.5.12/5.6.17: attributes, instances,
  sub-attributes, optional members, keys of JSON-object values and languageMap entries). In
  create, replace, append, upsert and batch update it is rejected with BadRequestData
  (4.5.18), as Stellio does. A ``datasetId`` can never be nulled (BadRequestData).
* The kind of an attribute (Property, Relationship, ...) may change where the attribute is
  replaced as a whole (create, replace, append, update, upsert, batch update); partial attribute
  update and merge-patch refuse a kind change with BadRequestData (5.6.4.4), as Orion-LD does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from sinergia.ngsild.errors import AlreadyExists, BadRequestData, ResourceNotFound
from sinergia.ngsild.model import (
    ATTRIBUTE_KINDS,
    GEOPROPERTY,
    JSON_PROPERTY,
    LANGUAGE_PROPERTY,
    LIST_PROPERTY,
    LIST_RELATIONSHIP,
    NULL_URI,
    PROPERTY,
    RELATIONSHIP,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
    Attrs,
    Entity,
    Instance,
)

_CANONICAL = orjson.OPT_SORT_KEYS


@dataclass(frozen=True, slots=True)
class NotUpdated:
    """One attribute an append/update could not apply (the 207 ``notUpdated`` list)."""

    attribute: str   # expanded IRI
    reason: str


_SYSTEM = frozenset({"createdAt", "modifiedAt"})
_VALUE_MEMBERS = frozenset(VALUE_MEMBER.values())
# The kinds whose NGSI-LD Null has a shape of its own besides the null URI (4.5.18).
_NULL_SHAPED_KINDS = frozenset({LANGUAGE_PROPERTY, LIST_PROPERTY, LIST_RELATIONSHIP})
# Value members merged key by key in a merge-patch when both sides are JSON objects (5.5.12
# EXAMPLE 2, 4.5.18). A GeoJSON geometry, a relationship target or a list is replaced whole.
_MERGED_VALUE_KINDS = frozenset({PROPERTY, JSON_PROPERTY, LANGUAGE_PROPERTY})
# The value member that identifies the kind of a fragment that does not say its type.
_KIND_OF_MEMBER = {
    "object": RELATIONSHIP, "languageMap": LANGUAGE_PROPERTY, "vocab": VOCAB_PROPERTY,
    "json": JSON_PROPERTY, "valueList": LIST_PROPERTY, "objectList": LIST_RELATIONSHIP,
}


# --------------------------------------------------------------------------- public rules


def create_entity(current: Entity | None, new: Entity, now: str) -> Entity:
    """409 AlreadyExists when ``current`` exists."""
    if current is not None:
        raise AlreadyExists(f"entity {current.get('id')} already exists")
    _check_id(new)
    attrs = _created_attrs(_attrs_of(new), now)
    entity = _entity_members(new)
    entity["createdAt"] = now
    entity["modifiedAt"] = now
    entity["attrs"] = attrs
    return entity


def replace_entity(current: Entity | None, new: Entity, now: str) -> Entity:
    """PUT /entities/{id}: all attributes replaced; id must match; 404 if missing."""
    entity = _existing(current)
    _check_same_id(entity, new)
    attrs = _attrs_of(new)
    _check_complete_attrs(attrs, "replace")
    result = _entity_members(new)
    result["id"] = entity["id"]
    if not result.get("type"):
        result["type"] = entity.get("type", [])
    result["createdAt"] = entity.get("createdAt", now)
    result["modifiedAt"] = now
    old_attrs = _attrs_of(entity)
    result["attrs"] = {
        name: [_overwrite(_find(old_attrs.get(name, ()), _key(i)), i, now)
               for i in _default_first(insts)]
        for name, insts in attrs.items()
    }
    return result


def append_attrs(current: Entity | None, attrs: Attrs, now: str, *,
                 no_overwrite: bool = False) -> tuple[Entity, list[NotUpdated]]:
    """POST /entities/{id}/attrs: add or overwrite (per datasetId); with ``no_overwrite``
    existing instances are kept and reported.

    NGSI-LD Null is rejected (BadRequestData): append adds or overwrites, it never deletes.
    """
    entity = _existing(current)
    _check_complete_attrs(attrs, "append")
    new_attrs, not_updated = _append(_attrs_of(entity), attrs, now, no_overwrite)
    return _with_attrs(entity, new_attrs, now), not_updated


def update_attrs(current: Entity | None, attrs: Attrs,
                 now: str) -> tuple[Entity, list[NotUpdated]]:
    """PATCH /entities/{id}/attrs: replace only instances that exist (same datasetId); the
    others are reported as not updated.

    Each matching instance is replaced whole (5.5.8 EXAMPLE 2: sub-attributes left out of the
    fragment are gone). An instance whose value is NGSI-LD Null deletes the matching instance
    (5.5.8 EXAMPLE 3); the attribute goes when its last instance does. Sub-attributes nulled
    inside a replacement are simply left out.
    """
    entity = _existing(current)
    for name, insts in attrs.items():
        _check_instance_list(name, insts)
        for inst in insts:
            if not isinstance(inst, dict):
                raise BadRequestData(f"attribute {name}: an attribute instance must be an object")
            _check_dataset_id(name, inst)
            if not _is_null_instance(inst):
                _check_complete(name, _drop_null_subattrs(inst), "update")
    old_attrs = _attrs_of(entity)
    new_attrs = dict(old_attrs)
    not_updated: list[NotUpdated] = []
    for name, insts in attrs.items():
        if name not in old_attrs:
            not_updated.append(NotUpdated(name, "the attribute does not exist"))
            continue
        target = list(new_attrs[name])
        for inst in insts:
            key = _key(inst)
            index = _index(target, key)
            if index is None:
                not_updated.append(NotUpdated(name, f"no instance with {_describe(key)}"))
            elif _is_null_instance(inst):
                del target[index]
            else:
                target[index] = _overwrite(target[index], _drop_null_subattrs(inst), now)
        _set_instances(new_attrs, name, target)
    return _with_attrs(entity, new_attrs, now), not_updated


def patch_attr(current: Entity | None, attr: str, fragment: Instance, now: str) -> Entity:
    """PATCH /entities/{id}/attrs/{attr}: merge the given members into the existing instance
    with the fragment's datasetId (404 if none); sub-attributes merged; type may not change
    kind incompatibly.

    Members given replace the stored ones (a value is replaced whole, never merged into);
    members left out stay (5.5.8 EXAMPLE 1). A sub-attribute given replaces the stored one of
    the same datasetId; one whose value is NGSI-LD Null is deleted, and so is an optional member
    (``observedAt``, ``unitCode``, ``objectType``) set to NGSI-LD Null. Nulling the value itself
    or changing the kind is BadRequestData.
    """
    entity = _existing(current)
    old_attrs = _attrs_of(entity)
    if attr not in old_attrs:
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {attr}")
    _check_fragment(attr, fragment)
    key = _key(fragment)
    instances = old_attrs[attr]
    index = _index(instances, key)
    if index is None:
        raise ResourceNotFound(f"attribute {attr} of entity {entity['id']} has no instance "
                               f"with {_describe(key)}")
    old = instances[index]
    kind = _kind_of(old)
    _check_same_kind(attr, kind, fragment)
    member = VALUE_MEMBER[kind]
    if member in fragment and _is_null_value(kind, fragment[member]):
        raise BadRequestData(f"the value of attribute {attr} cannot be set to NGSI-LD Null by a "
                             "partial update; delete the attribute instead")
    content = _without_system(old)
    for name, value in fragment.items():
        if name in _SYSTEM or name in ("type", "datasetId"):
            continue
        if name == "attrs":
            subs = _replace_subattrs(content.get("attrs", {}), value, attr)
            _set_or_drop(content, "attrs", subs)
        elif name != member and _is_null_marker(value):
            content.pop(name, None)
        else:
            content[name] = value
    new_instances = list(instances)
    new_instances[index] = _overwrite(old, content, now)
    new_attrs = dict(old_attrs)
    new_attrs[attr] = new_instances
    return _with_attrs(entity, new_attrs, now)


def replace_attr(current: Entity | None, attr: str, instances: list[Instance],
                 now: str) -> Entity:
    """PUT /entities/{id}/attrs/{attr}: replace the instance(s) (same datasetId); 404 if the
    attribute does not exist.

    Every given instance must replace an existing one (404 otherwise); the kind may change.
    NGSI-LD Null is rejected (BadRequestData).
    """
    entity = _existing(current)
    old_attrs = _attrs_of(entity)
    if attr not in old_attrs:
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {attr}")
    _check_complete_attrs({attr: instances}, "replace")
    target = list(old_attrs[attr])
    for inst in instances:
        index = _index(target, _key(inst))
        if index is None:
            raise ResourceNotFound(f"attribute {attr} of entity {entity['id']} has no instance "
                                   f"with {_describe(_key(inst))}")
        target[index] = _overwrite(target[index], inst, now)
    new_attrs = dict(old_attrs)
    new_attrs[attr] = target
    return _with_attrs(entity, new_attrs, now)


def delete_attr(current: Entity | None, attr: str, now: str, *,
                dataset_id: str | None = None, delete_all: bool = False) -> Entity:
    """DELETE /entities/{id}/attrs/{attr}: the default instance, the one with ``dataset_id``,
    or all of them; 404 when nothing matches. ``delete_all`` wins over ``dataset_id``."""
    entity = _existing(current)
    old_attrs = _attrs_of(entity)
    if attr not in old_attrs:
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {attr}")
    new_attrs = dict(old_attrs)
    if delete_all:
        del new_attrs[attr]
    else:
        target = list(old_attrs[attr])
        index = _index(target, dataset_id)
        if index is None:
            raise ResourceNotFound(f"attribute {attr} of entity {entity['id']} has no instance "
                                   f"with {_describe(dataset_id)}")
        del target[index]
        _set_instances(new_attrs, attr, target)
    return _with_attrs(entity, new_attrs, now)


def merge_entity(current: Entity | None, patch: Entity, now: str) -> Entity:
    """PATCH /entities/{id} (merge-patch, batch merge): attributes and sub-attributes merged
    recursively; a value of ``urn:ngsi-ld:null`` deletes the attribute/sub-attribute/instance;
    types in the patch are added; scope replaced when given.

    Details (5.5.12, 5.6.17): a new attribute or instance is added as given (it must then be
    complete); an existing instance gets the members given, optional members set to NGSI-LD
    Null are removed, a JSON-object ``value``/``json`` and a ``languageMap`` are merged key by
    key (RFC 7396, NGSI-LD Null or JSON null removing a key), any other value is replaced.
    ``scope`` set to NGSI-LD Null is removed.
    """
    entity = _existing(current)
    _check_same_id(entity, patch)
    attrs = _attrs_of(patch)
    _check_fragment_attrs(attrs)
    result = dict(entity)
    if patch.get("type"):
        result["type"] = _union(entity.get("type", []), patch["type"])
    if "scope" in patch:
        scope = patch["scope"]
        if _is_null_marker(scope) or scope == [NULL_URI]:
            result.pop("scope", None)
        else:
            result["scope"] = scope
    old_attrs = _attrs_of(entity)
    new_attrs = dict(old_attrs)
    for name, insts in attrs.items():
        merged = _merge_instances(new_attrs.get(name, []), insts, name, now)
        _set_instances(new_attrs, name, merged)
    result["attrs"] = new_attrs
    result["modifiedAt"] = now
    return result


def upsert_entity(current: Entity | None, new: Entity, now: str, *, replace: bool) -> Entity:
    """Batch upsert: create when missing; else ``replace`` (options=replace, the default:
    the whole entity replaced) or update (options=update: attributes appended/overwritten,
    others kept)."""
    if current is None:
        return create_entity(None, new, now)
    if replace:
        return replace_entity(current, new, now)
    return batch_update(current, new, now)


def batch_update(current: Entity | None, new: Entity, now: str, *,
                 no_overwrite: bool = False) -> Entity:
    """Batch update: like append_attrs on an existing entity (404 when missing).

    Types in ``new`` are added to the entity's; scopes likewise. NGSI-LD Null is rejected as
    in append. Instances kept because of ``no_overwrite`` are silently left as they are.
    """
    entity = _existing(current)
    _check_same_id(entity, new)
    attrs = _attrs_of(new)
    _check_complete_attrs(attrs, "update")
    new_attrs, _ = _append(_attrs_of(entity), attrs, now, no_overwrite)
    result = _with_attrs(entity, new_attrs, now)
    if new.get("type"):
        result["type"] = _union(entity.get("type", []), new["type"])
    if new.get("scope"):
        result["scope"] = _union(entity.get("scope", []), new["scope"])
    return result


def changed_instances(before: Entity | None, after: Entity | None,
                      ) -> list[tuple[str, Instance | None, Instance | None]]:
    """Every ``(attribute IRI, old instance, new instance)`` that differs between two versions
    of an entity: old None = created, new None = deleted. Instances are matched by datasetId.
    Attributes come in ``after``'s order, then the ones only ``before`` had; identity is checked
    before equality, so versions produced by these rules compare in time proportional to what
    changed."""
    if before is after:
        return []
    old_attrs = _attrs_of(before) if before is not None else {}
    new_attrs = _attrs_of(after) if after is not None else {}
    if old_attrs is new_attrs:
        return []
    changes: list[tuple[str, Instance | None, Instance | None]] = []
    for name, new_insts in new_attrs.items():
        old_insts = old_attrs.get(name)
        if not old_insts:  # a new attribute (the common case on create): all created
            changes.extend((name, None, inst) for inst in new_insts)
        elif old_insts is new_insts:
            continue
        elif (len(old_insts) == 1 and len(new_insts) == 1
              and _key(old_insts[0]) == _key(new_insts[0])):
            # One instance before and after (the common case on update), matched at once.
            old, new = old_insts[0], new_insts[0]
            if old is not new and not _same_json(old, new):
                changes.append((name, old, new))
        else:
            changes.extend(_instance_changes(name, old_insts, new_insts))
    for name, old_insts in old_attrs.items():
        if name not in new_attrs:
            changes.extend((name, inst, None) for inst in old_insts)
    return changes


# --------------------------------------------------------------------------- entity helpers


def _existing(current: Entity | None) -> Entity:
    if current is None:
        raise ResourceNotFound("the entity does not exist")
    return current


def _attrs_of(entity: Entity) -> Attrs:
    attrs = entity.get("attrs")
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise BadRequestData("the attributes of an entity must be an object")
    return attrs


def _check_id(entity: Entity) -> None:
    if not isinstance(entity.get("id"), str) or not entity["id"]:
        raise BadRequestData("the entity has no id")


def _check_same_id(current: Entity, new: Entity) -> None:
    if "id" in new and new["id"] != current["id"]:
        raise BadRequestData(f"the entity id {new['id']!r} does not match the target entity "
                             f"{current['id']!r}")


def _entity_members(entity: Entity) -> Entity:
    """The non-attribute, non-system members of ``entity`` (id, type, scope, ...)."""
    return {k: v for k, v in entity.items() if k not in _SYSTEM and k not in ("attrs", "@context")}


def _with_attrs(entity: Entity, attrs: Attrs, now: str) -> Entity:
    result = dict(entity)
    result["attrs"] = attrs
    result["modifiedAt"] = now
    return result


def _union(old: Any, new: Any) -> list[Any]:
    """Ordered union of two string-or-list members (types, scopes)."""
    result = list(_as_list(old))
    result.extend(item for item in _as_list(new) if item not in result)
    return result


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _set_instances(attrs: Attrs, name: str, instances: list[Instance]) -> None:
    """Store ``instances`` under ``name``, dropping the attribute when none is left."""
    if instances:
        attrs[name] = instances
    else:
        attrs.pop(name, None)


def _set_or_drop(instance: Instance, member: str, value: dict[str, Any]) -> None:
    if value:
        instance[member] = value
    else:
        instance.pop(member, None)


# --------------------------------------------------------------------------- instance helpers


def _key(instance: Instance) -> str | None:
    dataset_id: str | None = instance.get("datasetId")
    return dataset_id


def _describe(key: str | None) -> str:
    return "no datasetId (the default instance)" if key is None else f"datasetId {key}"


def _index(instances: list[Instance], key: str | None) -> int | None:
    for position, instance in enumerate(instances):
        if _key(instance) == key:
            return position
    return None


def _find(instances: Iterable[Instance], key: str | None) -> Instance | None:
    for instance in instances:
        if _key(instance) == key:
            return instance
    return None


def _default_first(instances: list[Instance]) -> list[Instance]:
    """The same instances, the default one (if any) moved to the front."""
    if len(instances) < 2:
        return list(instances)
    return sorted(instances, key=lambda instance: _key(instance) is not None)


def _place(instances: list[Instance], instance: Instance) -> None:
    """Add a new instance: the default one goes first, others last."""
    if _key(instance) is None:
        instances.insert(0, instance)
    else:
        instances.append(instance)


def _kind_of(instance: Instance) -> str:
    kind = instance.get("type", PROPERTY)
    return kind if isinstance(kind, str) and kind in ATTRIBUTE_KINDS else PROPERTY


def _without_system(instance: Instance) -> Instance:
    # A copy then two pops: the same members in the same order as filtering, in C.
    copy = dict(instance)
    copy.pop("createdAt", None)
    copy.pop("modifiedAt", None)
    return copy


def _stamp_new(instance: Instance, now: str) -> Instance:
    if "createdAt" not in instance and "modifiedAt" not in instance:
        # Parsed input never carries them: one copy (dict.copy, the cheapest), the stamps
        # appended as below.
        stamped = instance.copy()
        stamped["createdAt"] = now
        stamped["modifiedAt"] = now
        return stamped
    stamped = _without_system(instance)
    stamped["createdAt"] = now
    stamped["modifiedAt"] = now
    return stamped


def _overwrite(old: Instance | None, new: Instance, now: str) -> Instance:
    """``new`` taking the place of ``old``: ``old`` itself when the content is the same,
    else ``new`` stamped, keeping ``old``'s createdAt."""
    if old is None:
        return _stamp_new(new, now)
    content = _without_system(new)
    if _same_json(content, _without_system(old)):
        return old
    content["createdAt"] = old.get("createdAt", now)
    content["modifiedAt"] = now
    return content


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality: unlike ``==``, ``True`` is not ``1`` and ``1`` is not ``1.0``. Compared
    as canonical JSON text (keys sorted), which orjson writes faster than Python can walk
    the values; that text keeps exactly those distinctions. ``==`` (in C) is coarser, so
    values it finds different are different JSON too: the texts are written only for values
    it finds equal, and a changed instance (its modifiedAt differs) costs no text at all."""
    if a is b:
        return True
    if a != b:
        return False
    try:
        return orjson.dumps(a, option=_CANONICAL) == orjson.dumps(b, option=_CANONICAL)
    except TypeError:  # not JSON at all (a caller's bug): compare as Python values
        return bool(a == b)


def _instance_changes(name: str, old_insts: list[Instance], new_insts: list[Instance],
                      ) -> Iterator[tuple[str, Instance | None, Instance | None]]:
    old_by_key = {_key(i): i for i in old_insts}
    seen: set[str | None] = set()
    for inst in new_insts:
        key = _key(inst)
        seen.add(key)
        old = old_by_key.get(key)
        if old is None:
            yield name, None, inst
        elif old is not inst and not _same_json(old, inst):
            yield name, old, inst
    for key, old in old_by_key.items():
        if key not in seen:
            yield name, old, None


# --------------------------------------------------------------------------- NGSI-LD Null


def _is_null_marker(value: Any) -> bool:
    return value is None or value == NULL_URI


def _is_null_value(kind: str, value: Any) -> bool:
    """Whether ``value`` is the NGSI-LD Null of an attribute of this kind (4.5.18)."""
    if _is_null_marker(value):
        return True
    if kind == LANGUAGE_PROPERTY:
        return isinstance(value, dict) and value == {"@none": NULL_URI}
    if kind in (LIST_PROPERTY, LIST_RELATIONSHIP) and isinstance(value, list) and len(value) == 1:
        item = value[0]
        return _is_null_marker(item) or (isinstance(item, dict) and item.get("object") == NULL_URI)
    return False


def _is_null_instance(instance: Instance) -> bool:
    kind = _infer_kind(instance)
    member = VALUE_MEMBER[kind]
    return member in instance and _is_null_value(kind, instance[member])


def _drop_null_subattrs(instance: Instance) -> Instance:
    """``instance`` without the sub-attributes it nulls. Malformed shapes are left for the
    validation that follows to reject."""
    subs = instance.get("attrs")
    if not subs or not isinstance(subs, dict):
        return instance
    kept: dict[str, list[Instance]] = {}
    for name, insts in subs.items():
        if not isinstance(insts, list) or not all(isinstance(i, dict) for i in insts):
            kept[name] = insts
            continue
        alive = [_drop_null_subattrs(i) for i in insts if not _is_null_instance(i)]
        if alive:
            kept[name] = alive
    result = dict(instance)
    _set_or_drop(result, "attrs", kept)
    return result


# --------------------------------------------------------------------------- validation


def _created_attrs(attrs: Attrs, now: str) -> Attrs:
    """The attributes of a created entity: checked as :func:`_check_complete_attrs` does and
    stamped, the default instance first; in one pass (a batch creates thousands)."""
    created: Attrs = {}
    for name, insts in attrs.items():
        _check_instance_list(name, insts)
        if len(insts) == 1:
            _check_complete(name, insts[0], "create")
            created[name] = [_stamp_new(insts[0], now)]
            continue
        for inst in insts:
            _check_complete(name, inst, "create")
        created[name] = [_stamp_new(inst, now) for inst in _default_first(insts)]
    return created


def _check_complete_attrs(attrs: Attrs, operation: str) -> None:
    """Every instance is whole (kind + value member) and nowhere NGSI-LD Null."""
    for name, insts in attrs.items():
        _check_instance_list(name, insts)
        for inst in insts:
            _check_complete(name, inst, operation)


def _check_complete(name: str, instance: Instance, operation: str) -> None:
    if not isinstance(instance, dict):
        raise BadRequestData(f"attribute {name}: an attribute instance must be an object")
    kind = instance.get("type")
    if kind not in ATTRIBUTE_KINDS:
        raise BadRequestData(f"attribute {name}: unknown attribute type {kind!r}")
    member = VALUE_MEMBER[kind]
    if member not in instance:
        raise BadRequestData(f"attribute {name}: a {kind} needs a {member!r} member")
    value = instance[member]
    # The NGSI-LD Null itself first: only some kinds have other null shapes to look for.
    if value is None or value == NULL_URI or (kind in _NULL_SHAPED_KINDS
                                              and _is_null_value(kind, value)):
        raise BadRequestData(f"attribute {name}: NGSI-LD Null is not allowed in {operation}")
    _check_dataset_id(name, instance)
    if "attrs" not in instance:  # the common case: no sub-attributes to look into
        return
    for sub_name, subs in _subattrs(name, instance).items():
        _check_instance_list(f"{name}.{sub_name}", subs)
        for sub in subs:
            _check_complete(f"{name}.{sub_name}", sub, operation)


def _check_fragment_attrs(attrs: Attrs) -> None:
    """Merge fragments: objects, a known kind if one is given, no nulled datasetId."""
    for name, insts in attrs.items():
        _check_instance_list(name, insts)
        for inst in insts:
            _check_fragment(name, inst)


def _check_fragment(name: str, instance: Instance) -> None:
    if not isinstance(instance, dict):
        raise BadRequestData(f"attribute {name}: an attribute instance must be an object")
    kind = instance.get("type")
    if kind is not None and kind not in ATTRIBUTE_KINDS:
        raise BadRequestData(f"attribute {name}: unknown attribute type {kind!r}")
    _check_dataset_id(name, instance)
    for sub_name, subs in _subattrs(name, instance).items():
        _check_instance_list(f"{name}.{sub_name}", subs)
        for sub in subs:
            _check_fragment(f"{name}.{sub_name}", sub)


def _subattrs(name: str, instance: Instance) -> dict[str, list[Instance]]:
    subs = instance.get("attrs", {})
    if not isinstance(subs, dict):
        raise BadRequestData(f"attribute {name}: sub-attributes must be an object")
    return subs


def _check_instance_list(name: str, instances: Any) -> None:
    if not isinstance(instances, list) or not instances:
        raise BadRequestData(f"attribute {name} has no instance")
    if len(instances) == 1:
        return  # one instance cannot share its datasetId
    keys = [_key(i) for i in instances if isinstance(i, dict)]
    if len(set(keys)) != len(keys):
        raise BadRequestData(f"attribute {name}: two instances have the same datasetId")


def _check_dataset_id(name: str, instance: Instance) -> None:
    if "datasetId" in instance and _is_null_marker(instance["datasetId"]):
        raise BadRequestData(f"attribute {name}: a datasetId cannot be NGSI-LD Null")


def _infer_kind(fragment: Instance) -> str:
    """The kind a fragment declares, or the one its value member implies."""
    kind = fragment.get("type")
    if isinstance(kind, str) and kind in ATTRIBUTE_KINDS:
        return kind
    for member, implied in _KIND_OF_MEMBER.items():
        if member in fragment:
            return implied
    return PROPERTY


def _check_same_kind(name: str, kind: str, fragment: Instance) -> None:
    declared = fragment.get("type")
    if declared is not None and declared != kind:
        raise BadRequestData(f"attribute {name} is a {kind}; its type cannot be changed to "
                             f"{declared} by a partial update or a merge")
    foreign = (_VALUE_MEMBERS - {VALUE_MEMBER[kind]}) & fragment.keys()
    # "value" belongs to Property and GeoProperty alike, so it is foreign to neither.
    if kind in (GEOPROPERTY, PROPERTY):
        foreign -= {"value"}
    if foreign:
        raise BadRequestData(f"attribute {name} is a {kind}; member {sorted(foreign)[0]!r} "
                             "belongs to another attribute type")


# --------------------------------------------------------------------------- append


def _append(old_attrs: Attrs, attrs: Attrs, now: str,
            no_overwrite: bool) -> tuple[Attrs, list[NotUpdated]]:
    new_attrs = dict(old_attrs)
    not_updated: list[NotUpdated] = []
    for name, insts in attrs.items():
        target = list(new_attrs.get(name, []))
        for inst in insts:
            key = _key(inst)
            index = _index(target, key)
            if index is None:
                _place(target, _stamp_new(inst, now))
            elif no_overwrite:
                not_updated.append(NotUpdated(
                    name, f"an instance with {_describe(key)} exists and noOverwrite was asked"))
            else:
                target[index] = _overwrite(target[index], inst, now)
        new_attrs[name] = target
    return new_attrs, not_updated


# --------------------------------------------------------------------------- partial update


def _replace_subattrs(old: dict[str, list[Instance]], given: Any,
                      attr: str) -> dict[str, list[Instance]]:
    """5.5.8 at the sub-attribute level: each given sub-attribute instance replaces the stored
    one of the same datasetId (or is added); NGSI-LD Null deletes it."""
    result = dict(old)
    for name, insts in given.items():
        _check_instance_list(f"{attr}.{name}", insts)
        target = list(result.get(name, []))
        for inst in insts:
            _check_fragment(f"{attr}.{name}", inst)
            index = _index(target, _key(inst))
            if _is_null_instance(inst):
                if index is not None:
                    del target[index]
                continue
            _check_complete(f"{attr}.{name}", _drop_null_subattrs(inst), "partial update")
            if index is None:
                _place(target, _drop_null_subattrs(inst))
            else:
                target[index] = _drop_null_subattrs(inst)
        _set_instances(result, name, target)
    return result


# --------------------------------------------------------------------------- merge-patch


def _merge_instances(old: list[Instance], fragments: list[Instance], attr: str,
                     now: str | None) -> list[Instance]:
    """Merge fragments into one attribute's instances. ``now`` is None for sub-attributes,
    which carry no timestamps."""
    target = list(old)
    for fragment in fragments:
        index = _index(target, _key(fragment))
        if _is_null_instance(fragment):
            if index is not None:
                del target[index]
            continue
        if index is None:
            added = _strip_nulls(fragment, attr)
            _place(target, _stamp_new(added, now) if now is not None else added)
            continue
        previous = target[index]
        merged = _merge_instance(previous, fragment, attr)
        if now is None:
            target[index] = merged
        else:
            target[index] = _overwrite(previous, merged, now)
    return target


def _merge_instance(old: Instance, fragment: Instance, attr: str) -> Instance:
    kind = _kind_of(old)
    _check_same_kind(attr, kind, fragment)
    member = VALUE_MEMBER[kind]
    result = _without_system(old)
    for name, value in fragment.items():
        if name in _SYSTEM or name in ("type", "datasetId"):
            continue
        if name == "attrs":
            subs = dict(result.get("attrs", {}))
            for sub_name, sub_insts in value.items():
                merged = _merge_instances(subs.get(sub_name, []), sub_insts,
                                          f"{attr}.{sub_name}", None)
                _set_instances(subs, sub_name, merged)
            _set_or_drop(result, "attrs", subs)
        elif name == member:
            if kind in _MERGED_VALUE_KINDS:
                result[name] = _merge_json(result.get(name), value)
            else:
                result[name] = value
        elif _is_null_marker(value):
            result.pop(name, None)
        else:
            result[name] = value
    return result


def _merge_json(target: Any, patch: Any) -> Any:
    """RFC 7396 merge of JSON values, NGSI-LD Null and JSON null both removing a key."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if _is_null_marker(value):
            result.pop(key, None)
        else:
            result[key] = _merge_json(result.get(key), value)
    return result


def _strip_nulls(fragment: Instance, attr: str) -> Instance:
    """A merge fragment that adds a new instance: as given, minus what it nulls."""
    kind = _infer_kind(fragment)
    instance: Instance = {"type": kind}
    for name, value in fragment.items():
        if name in _SYSTEM or name == "type":
            continue
        if name == "attrs":
            subs: dict[str, list[Instance]] = {}
            for sub_name, sub_insts in value.items():
                alive = [_strip_nulls(i, f"{attr}.{sub_name}") for i in sub_insts
                         if not _is_null_instance(i)]
                if alive:
                    subs[sub_name] = alive
            _set_or_drop(instance, "attrs", subs)
        elif name == VALUE_MEMBER[kind] and kind in _MERGED_VALUE_KINDS:
            instance[name] = _merge_json(None, value) if isinstance(value, dict) else value
        elif not _is_null_marker(value):
            instance[name] = value
    _check_complete(attr, instance, "merge")
    return instance
