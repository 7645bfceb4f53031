"""Output: internal entities rendered as clients asked — normalized, concise, keyValues or a
GeoJSON Feature — with names compacted by the request's @context.

Rules worth knowing:

* Every rendering re-parses (:func:`sinergia.ngsild.entity.parse_entity`) to the entity it
  came from, minus system members: concise drops ``type`` only where the concise input rules
  give it back. A Property renders as its bare value when it has no other member and the value
  would not be read as an attribute (a scalar, an object without attribute members, an array
  that is not a list of instances); a GeoProperty renders as its bare geometry when it has no
  other member, else as ``{"value": geometry, ...}``; a Property whose value is a geometry keeps
  ``"type": "Property"``. Multi-instance attributes render every instance as an object.
* An attribute IRI that compacts to a reserved member name (``id``, ``type``, ``value``,
  ``observedAt``...) keeps its full IRI, so it can never be mistaken for that member.
* ListRelationship ``objectList`` renders as ``[{"object": uri}, ...]`` (normalized and concise)
  and as ``[uri, ...]`` in keyValues.
* The result shares value objects (property values, language maps, geometries) with the stored
  entity: it is meant to be serialised, not mutated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

from sinergia.ngsild.context import Context
from sinergia.ngsild.entity import ATTRIBUTE_MARKERS, is_multi_instance, looks_like_geometry
from sinergia.ngsild.model import (
    ENTITY_MEMBERS,
    GEOPROPERTY,
    INSTANCE_MEMBERS,
    LANGUAGE_PROPERTY,
    LIST_RELATIONSHIP,
    LOCATION,
    PROPERTY,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
    Entity,
    Instance,
)

Format = Literal["normalized", "concise", "keyValues"]


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render. Attribute names in ``attrs``/``pick``/``omit`` are expanded IRIs,
    except the entity members ``id``, ``type``, ``scope`` which ``pick``/``omit`` name as is.
    ``lang``: a language tag, a comma list of tags in preference order, or ``*`` (all)."""

    format: Format = "normalized"
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None
    pick: frozenset[str] | None = None
    omit: frozenset[str] | None = None
    lang: str | None = None
    dataset_ids: frozenset[str] | None = None
    geometry_property: str = LOCATION


_MISSING: Final = object()
_COPIED: Final = frozenset({"observedAt", "unitCode", "datasetId", "instanceId"})
_SYSTEM: Final = frozenset({"createdAt", "modifiedAt"})
_ENTITY_RESERVED: Final = ENTITY_MEMBERS | {"attrs"}


@lru_cache(maxsize=256)
def _language_preferences(lang: str | None) -> tuple[str, ...] | None:
    """``lang`` → tags in preference order (lower case), or None for "keep the map" (absent or
    ``*``). Accept-Language style ``;q=`` weights are honoured."""
    if lang is None:
        return None
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(lang.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                weight = 1.0
        weighted.append((-weight, position, tag))
    if not weighted:
        return None
    return tuple(tag for _, _, tag in sorted(weighted))


def _choose_language(language_map: dict[str, Any], prefs: tuple[str, ...]) -> tuple[str, Any]:
    """The best (tag, text) of a languageMap: an exact tag, then a tag with the same primary
    language, then ``@none``, then the first one."""
    lowered = {tag.lower(): tag for tag in language_map}
    for pref in prefs:
        tag = lowered.get(pref)
        if tag is not None:
            return tag, language_map[tag]
    for pref in prefs:
        primary = pref.split("-", 1)[0]
        for low, tag in lowered.items():
            if low.split("-", 1)[0] == primary:
                return tag, language_map[tag]
    if "@none" in language_map:
        return "@none", language_map["@none"]
    tag = next(iter(language_map))
    return tag, language_map[tag]


def _is_plain(value: Any) -> bool:
    """True when ``value`` alone reads back as a Property with this value (concise input)."""
    if isinstance(value, dict):
        return ATTRIBUTE_MARKERS.isdisjoint(value)
    if isinstance(value, list):
        return not is_multi_instance(value)
    return True


# What an instance member becomes in the output (members not listed are dropped).
_COPY: Final = 1
_NAMES: Final = 2
_SUB_ATTRS: Final = 3
_MEMBER_ACTIONS: Final = {**dict.fromkeys(_COPIED, _COPY), "objectType": _NAMES,
                          "attrs": _SUB_ATTRS}
_MEMBER_ACTIONS_SYS: Final = {**_MEMBER_ACTIONS, **dict.fromkeys(_SYSTEM, _COPY)}


# Attribute names a renderer remembers (compacted, reserved names checked).
_NAMES_MEMO: Final = 4096


class _Renderer:
    __slots__ = ("actions", "attr_names", "compact", "concise", "dataset_ids", "key_values",
                 "langs", "sys_attrs")

    def __init__(self, ctx: Context, opts: RenderOptions) -> None:
        self.compact = ctx.compact
        self.concise = opts.format == "concise"
        self.key_values = opts.format == "keyValues"
        self.sys_attrs = opts.sys_attrs
        self.langs = _language_preferences(opts.lang)
        self.dataset_ids = opts.dataset_ids
        # one look-up per member instead of a test per kind of member
        self.actions = _MEMBER_ACTIONS_SYS if opts.sys_attrs else _MEMBER_ACTIONS
        self.attr_names: dict[str, str] = {}

    def name(self, iri: str, reserved: frozenset[str]) -> str:
        name = self.compact(iri)
        return iri if name in reserved else name

    def attr_name(self, iri: str) -> str:
        """The output name of an entity's attribute (renderers are shared: see
        :func:`_renderer`, so this is worked out once per context and attribute)."""
        name = self.attr_names.get(iri)
        if name is None:
            name = self.name(iri, _ENTITY_RESERVED)
            if len(self.attr_names) < _NAMES_MEMO:
                self.attr_names[iri] = name
        return name

    def names(self, iris: list[str] | str) -> Any:
        compact = self.compact
        if isinstance(iris, str):
            return compact(iris)
        return compact(iris[0]) if len(iris) == 1 else [compact(iri) for iri in iris]

    def entity(self, entity: Entity, opts: RenderOptions) -> dict[str, Any]:
        pick, omit, only = opts.pick, opts.omit, opts.attrs
        out: dict[str, Any] = {}

        def wanted(member: str) -> bool:
            return (pick is None or member in pick) and (omit is None or member not in omit)

        if wanted("id"):
            out["id"] = entity["id"]
        types = entity.get("type")
        if types and wanted("type"):
            out["type"] = self.names(types)
        scope = entity.get("scope")
        if scope and wanted("scope"):
            out["scope"] = scope[0] if len(scope) == 1 else scope
        if self.sys_attrs:
            for member in ("createdAt", "modifiedAt"):
                if member in entity and wanted(member):
                    out[member] = entity[member]
        attrs = entity.get("attrs", {})
        if (only is None and pick is None and omit is None and self.dataset_ids is None
                and not self.key_values):
            # Every attribute, as is: the commonest rendering, in one tight loop.
            attr_name, instance = self.attr_name, self.instance
            for iri, instances in attrs.items():
                if len(instances) == 1:
                    out[attr_name(iri)] = instance(instances[0], True)
                elif instances:
                    out[attr_name(iri)] = [instance(i, False) for i in instances]
            return out
        for iri, instances in attrs.items():
            if ((only is not None and iri not in only) or (pick is not None and iri not in pick)
                    or (omit is not None and iri in omit)):
                continue
            rendered = self.attribute(instances, self.dataset_ids)
            if rendered is not _MISSING:
                out[self.attr_name(iri)] = rendered
        return out

    def attribute(self, instances: list[Instance], dataset_ids: frozenset[str] | None) -> Any:
        if dataset_ids is not None:
            instances = [i for i in instances if i.get("datasetId", "@none") in dataset_ids]
        if not instances:
            return _MISSING
        if self.key_values:
            for instance in instances:
                if "datasetId" not in instance:
                    return self.simple_value(instance)
            return self.simple_value(instances[0])
        if len(instances) == 1:
            return self.instance(instances[0], True)
        return [self.instance(instance, False) for instance in instances]

    def simple_value(self, instance: Instance) -> Any:
        kind = instance["type"]
        value = instance[VALUE_MEMBER[kind]]
        if kind == LANGUAGE_PROPERTY:
            if self.langs is not None and isinstance(value, dict):
                return _choose_language(value, self.langs)[1]
        elif kind == VOCAB_PROPERTY:
            return self.vocab(value)
        return value

    def vocab(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.compact(iri) for iri in value]
        return self.compact(value) if isinstance(value, str) else value

    def instance(self, instance: Instance, bare_ok: bool) -> Any:
        kind = instance["type"]
        member = VALUE_MEMBER[kind]
        value = instance[member]
        out: dict[str, Any] = {}
        tag = None
        if kind == LANGUAGE_PROPERTY and self.langs is not None and isinstance(value, dict):
            # lang= turns a LanguageProperty into the Property a non-multilingual client expects
            kind, member = PROPERTY, "value"
            tag, value = _choose_language(value, self.langs)
        elif kind == VOCAB_PROPERTY:
            value = self.vocab(value)
        elif kind == LIST_RELATIONSHIP and isinstance(value, list):
            value = [{"object": target} for target in value]

        if not self.concise:
            out["type"] = kind
        elif kind == PROPERTY:
            if looks_like_geometry(value):
                out["type"] = kind
        elif kind == GEOPROPERTY and not looks_like_geometry(value):
            out["type"] = kind
        out[member] = value
        if tag is not None:
            out["lang"] = tag

        actions = self.actions
        for key, item in instance.items():
            action = actions.get(key)
            if action is None:
                continue
            if action == _COPY:
                out[key] = item
            elif action == _NAMES:
                out[key] = self.names(item)
            else:
                for iri, instances in item.items():
                    # datasetId selection is about the entity's attributes, not sub-attributes
                    rendered = self.attribute(instances, None)
                    if rendered is not _MISSING:
                        out[self.name(iri, INSTANCE_MEMBERS)] = rendered

        if self.concise and bare_ok and len(out) == 1:
            if kind == PROPERTY and _is_plain(value):
                return value
            if kind == GEOPROPERTY:
                return value
        return out


@lru_cache(maxsize=64)
def _renderer(ctx: Context, opts: RenderOptions) -> _Renderer:
    """One renderer per context and options, so what it memoises serves every entity."""
    return _Renderer(ctx, opts)


def render_entity(entity: Entity, ctx: Context, opts: RenderOptions) -> dict[str, Any]:
    """The entity as a client sees it (no ``@context`` member; the API adds it)."""
    return _renderer(ctx, opts).entity(entity, opts)


def _geometry(entity: Entity, opts: RenderOptions) -> Any:
    instances = entity.get("attrs", {}).get(opts.geometry_property)
    if not instances:
        return None
    chosen = next((i for i in instances if "datasetId" not in i), instances[0])
    if chosen.get("type") != GEOPROPERTY or not isinstance(chosen.get("value"), dict):
        return None
    return chosen["value"]


def render_feature(entity: Entity, ctx: Context, opts: RenderOptions) -> dict[str, Any]:
    """A GeoJSON Feature: ``id``, ``type: Feature``, ``geometry`` from
    ``opts.geometry_property`` (null when absent), ``properties`` = the rendered entity (with
    ``type`` = the entity type) minus nothing."""
    properties = _renderer(ctx, opts).entity(entity, opts)
    properties.pop("id", None)
    return {"id": entity["id"], "type": "Feature", "geometry": _geometry(entity, opts),
            "properties": properties}


def render_feature_collection(entities: list[Entity], ctx: Context,
                              opts: RenderOptions) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of :func:`render_feature` features, in order."""
    renderer = _renderer(ctx, opts)
    features = []
    for entity in entities:
        properties = renderer.entity(entity, opts)
        properties.pop("id", None)
        features.append({"id": entity["id"], "type": "Feature",
                         "geometry": _geometry(entity, opts), "properties": properties})
    return {"type": "FeatureCollection", "features": features}
