"""Input: NGSI-LD entities and attribute fragments as clients send them (normalized or concise),
validated and turned into the internal form of :mod:`sinergia.ngsild.model`.

Concise input is read by these rules (ETSI GS CIM 009, 4.5.x "concise representation"):

* a non-object, non-array value is a Property with that value;
* an object whose ``type`` is an attribute kind is normalized input;
* an object that is a GeoJSON geometry (geometry ``type`` plus ``coordinates``, or
  ``geometries`` for a GeometryCollection) is a GeoProperty with that value;
* an object without ``type`` is typed by its value member (``value`` → Property, or
  GeoProperty when the value is a GeoJSON geometry; ``object`` → Relationship; ``languageMap``,
  ``vocab``, ``json``, ``valueList``, ``objectList`` → their kinds);
* an object with none of the members that mark an attribute (``type``, a value member,
  ``datasetId``, ``observedAt``, ``unitCode``, ``objectType``) is a Property whose value is
  the object (lenient keyValues input); one that has some of them but no value member is an
  error, because it is almost certainly a mistyped attribute;
* an array whose elements are all objects marking an attribute is a multi-instance attribute;
  any other array (including ``[]``) is a Property whose value is the array.

``observedAt`` is normalised to UTC with milliseconds (``2026-11-21T18:00:00.000Z``) so that
stored times sort as strings and match the broker's own ``createdAt``/``modifiedAt``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from sinergia.ngsild import geojson
from sinergia.ngsild.context import Context
from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.model import (
    ATTRIBUTE_KINDS,
    ENTITY_MEMBERS,
    GEO_ATTRIBUTES,
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

MAX_DEPTH: Final = 16          # sub-attribute nesting; real models use 1 or 2 levels
MAX_NAME_LENGTH: Final = 2048  # ids, names, URIs: far above any real one, cheap to check

GEOJSON_GEOMETRY_TYPES: Final = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
     "GeometryCollection"}
)

# Members whose presence says "this object is an attribute, not a plain JSON value".
ATTRIBUTE_MARKERS: Final = frozenset(
    {"type", "datasetId", "observedAt", "unitCode", "objectType", *VALUE_MEMBER.values()}
)
_KIND_BY_MEMBER: Final = {member: kind for kind, member in VALUE_MEMBER.items()
                          if kind != GEOPROPERTY}
_VALUE_MEMBERS: Final = frozenset(VALUE_MEMBER.values())
# Client-sent members the broker owns: silently dropped.
_SYSTEM_MEMBERS: Final = frozenset({"createdAt", "modifiedAt", "instanceId", "lang"})
# Optional members a merge-patch may delete by giving ``urn:ngsi-ld:null``.
_NULLABLE_MEMBERS: Final = frozenset({"observedAt", "unitCode", "objectType"})
_ENTITY_SKIPPED: Final = frozenset({"id", "type", "scope", "@context", "createdAt",
                                    "modifiedAt"})

# NGSI-LD forbids these in names (4.6.2): whitespace, control characters and <>"'=;()
_BAD_NAME_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f<>\"'=;()]")
# Absolute URI (RFC 3987, loosely): a scheme, a colon, then no spaces or unsafe characters.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f-\x9f<>\"{}|\\^`]+")
_SCOPE = re.compile(r"(?:/[^/\s\x00-\x1f\x7f-\x9f<>\"'=;()#+]+)+")
_LANG_TAG = re.compile(r"@none|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


# --- small validators -------------------------------------------------------------------------

def _bad(where: str, problem: str) -> BadRequestData:
    return BadRequestData(f"{where}: {problem}" if where else problem)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_uri(value: Any) -> bool:
    """True when ``value`` is a string holding an absolute URI (``scheme:rest``)."""
    return (isinstance(value, str) and len(value) <= MAX_NAME_LENGTH
            and _URI.fullmatch(value) is not None)


def check_name(name: Any, where: str, what: str = "name") -> str:
    """A valid NGSI-LD name (attribute, type, vocab term) or BadRequestData."""
    if not isinstance(name, str) or not name:
        raise _bad(where, f"{what} must be a non-empty string, not {_describe(name)}")
    if len(name) > MAX_NAME_LENGTH:
        raise _bad(where, f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if _BAD_NAME_CHAR.search(name):
        raise _bad(where, f"{what} {name!r} contains a forbidden character "
                          "(whitespace, control characters or <>\"'=;())")
    return name


def _check_uri(value: Any, where: str, what: str) -> str:
    if not is_uri(value):
        raise _bad(where, f"{what} must be an absolute URI, not {_describe(value)}")
    return str(value)


def parse_datetime(value: Any, where: str, what: str = "observedAt") -> str:
    """An ISO 8601 date-time, as UTC with milliseconds (``…T…:…:….mmmZ``). A time without
    offset is taken as UTC, as NGSI-LD times are."""
    if isinstance(value, str):
        known = _normalised_times.get(value)
        if known is not None:
            return known
    normalised = _parse_datetime(value, where, what)
    if len(_normalised_times) >= _NORMALISED_TIMES_MAX:
        _normalised_times.clear()
    _normalised_times[value] = normalised
    return normalised


# Date-times already normalised: the entities of a batch mostly share their observedAt.
_normalised_times: dict[str, str] = {}
_NORMALISED_TIMES_MAX: Final = 4096


def _parse_datetime(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or len(value) < 13 or value[10] not in "Tt":
        raise _bad(where, f"{what} must be an ISO 8601 date-time, not {_describe(value)}")
    text = value.upper()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(where, f"{what} must be an ISO 8601 date-time, not {_describe(value)}"
                   ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _bad(where, f"{what} is out of range: {_describe(value)}") from None
    return parsed.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def looks_like_geometry(value: Any) -> bool:
    """True for an object shaped like a GeoJSON geometry (not necessarily a valid one)."""
    if not isinstance(value, dict):
        return False
    kind = value.get("type")
    if kind == "GeometryCollection":
        return "geometries" in value
    return isinstance(kind, str) and kind in GEOJSON_GEOMETRY_TYPES and "coordinates" in value


def looks_like_attribute(value: Any) -> bool:
    """True for an object that carries a member marking an attribute (see module doc)."""
    return isinstance(value, dict) and not ATTRIBUTE_MARKERS.isdisjoint(value)


def is_multi_instance(value: Any) -> bool:
    """True for a non-empty array read as the instances of one attribute."""
    return (isinstance(value, list) and bool(value)
            and all(looks_like_attribute(item) for item in value))


def _expanded_names(value: Any, ctx: Context, where: str, what: str) -> list[str]:
    """A term or a non-empty list of terms → expanded IRIs, duplicates dropped, order kept."""
    names = value if isinstance(value, list) else [value]
    if not names:
        raise _bad(where, f"{what} must be a name or a non-empty list of names")
    out: list[str] = []
    for name in names:
        iri = ctx.expand(check_name(name, where, what))
        if iri not in out:
            out.append(iri)
    return out


# --- entity and fragments ---------------------------------------------------------------------

def parse_entity(body: Any, ctx: Context, *, require_type: bool = True) -> Entity:
    """A whole entity (POST /entities, batch, PUT). Validates ``id`` (absolute URI), ``type``
    (term or list of terms; required unless ``require_type`` is False), ``scope`` and every
    attribute; expands names with ``ctx``. System members (createdAt/modifiedAt) given by the
    client are ignored: the update rules stamp them. Raises BadRequestData saying what and
    where."""
    if not isinstance(body, dict):
        raise BadRequestData(f"an entity must be a JSON object, not {type(body).__name__}")
    if "id" not in body:
        raise BadRequestData("the entity has no 'id'")
    entity: Entity = {"id": _check_uri(body["id"], "entity", "'id'")}
    where = f"entity {entity['id']!r}"
    if "type" in body:
        entity["type"] = _expanded_names(body["type"], ctx, where, "type")
    elif require_type:
        raise _bad(where, "no 'type'")
    if "scope" in body:
        entity["scope"] = parse_scope(body["scope"], where)
    entity["attrs"] = _parse_members(body, ctx)
    return entity


def parse_scope(value: Any, where: str = "entity") -> list[str]:
    """``scope``: a scope string (``/Milano/Municipio1``) or a non-empty list of them →
    a list without duplicates."""
    scopes = value if isinstance(value, list) else [value]
    if not scopes:
        raise _bad(where, "scope must be a scope or a non-empty list of scopes")
    out: list[str] = []
    for scope in scopes:
        if (not isinstance(scope, str) or len(scope) > MAX_NAME_LENGTH
                or _SCOPE.fullmatch(scope) is None):
            raise _bad(where, f"invalid scope {_describe(scope)} "
                              "(expected levels like '/Milano/Municipio1')")
        if scope not in out:
            out.append(scope)
    return out


def parse_attributes(body: Any, ctx: Context, *, allow_entity_members: bool = False) -> Attrs:
    """An attribute fragment (append / update / merge bodies): ``{name: attribute, ...}``.
    ``@context`` is ignored; ``id``/``type``/``scope`` are rejected unless
    ``allow_entity_members`` (then they are skipped: the caller reads them)."""
    if not isinstance(body, dict):
        raise BadRequestData(f"attributes must be a JSON object, not {type(body).__name__}")
    if not allow_entity_members:
        for member in ("id", "type", "scope"):
            if member in body:
                raise BadRequestData(f"'{member}' is not an attribute and cannot be set here")
    return _parse_members(body, ctx)


def _parse_members(body: dict[str, Any], ctx: Context) -> Attrs:
    attrs: Attrs = {}
    for name, value in body.items():
        if name in _ENTITY_SKIPPED:
            continue
        iri = _attribute_iri(name, ctx, "")
        if iri in attrs:
            raise _bad(f"attribute {name!r}", f"the name expands to {iri!r}, "
                                               "which another attribute of this body also uses")
        attrs[iri] = _parse_attr(name, iri, value, ctx, 0)
    return attrs


def _attribute_iri(name: str, ctx: Context, parent: str) -> str:
    known = _valid_names.get((name, ctx))
    if known is not None:
        return known
    where = f"attribute '{parent}{name}'"
    check_name(name, where, "attribute name")
    iri = ctx.expand(name) if name[0] != "@" else name
    if iri[0] == "@":  # "@id", or a term such as "id" that the core context maps to "@id"
        raise _bad(where, "JSON-LD keywords cannot be attribute names")
    if len(_valid_names) >= _VALID_NAMES_MAX:
        _valid_names.clear()
    _valid_names[name, ctx] = iri
    return iri


# (name, context) → IRI of attribute names already checked: a batch repeats the same few
# names thousands of times. Keyed by the Context object itself (it hashes by identity and the
# key keeps it alive), so one context's expansion is never served for another.
_valid_names: dict[tuple[str, Context], str] = {}
_VALID_NAMES_MAX: Final = 4096


def parse_attribute(name: str, value: Any, ctx: Context) -> list[Instance]:
    """One attribute (normalized or concise; one instance or an array of instances with
    distinct datasetIds) → its instances."""
    if name in ENTITY_MEMBERS:
        raise BadRequestData(f"{name!r} is not an attribute")
    return _parse_attr(name, _attribute_iri(name, ctx, ""), value, ctx, 0)


# --- one attribute ----------------------------------------------------------------------------

def _parse_attr(path: str, iri: str, value: Any, ctx: Context, depth: int) -> list[Instance]:
    if depth > MAX_DEPTH:
        raise _bad(f"attribute '{path}'", f"sub-attributes nest deeper than {MAX_DEPTH} levels")
    if type(value) is dict and len(value) == 2 and iri not in GEO_ATTRIBUTES:
        simple = _simple_instance(value)
        if simple is not None:
            return [simple]
    if is_multi_instance(value):
        instances = [_parse_instance(f"{path}[{i}]", iri, item, ctx, depth)
                     for i, item in enumerate(value)]
        return _order_instances(path, instances)
    return [_parse_instance(path, iri, value, ctx, depth)]


def _simple_instance(value: dict[str, Any]) -> Instance | None:
    """The instance of the commonest shapes, ``{"type": "Property", "value": v}`` and
    ``{"type": "Relationship", "object": uri}``, read without the general walk (a batch holds
    thousands); None for anything else, which the general walk reads (and rejects if bad)."""
    kind = value.get("type")
    if kind == PROPERTY:
        member = value.get("value")
        if member is not None:
            return {"type": PROPERTY, "value": member}
    elif kind == RELATIONSHIP:
        member = value.get("object")
        if type(member) is str and is_uri(member):
            return {"type": RELATIONSHIP, "object": member}
    return None


def _order_instances(path: str, instances: list[Instance]) -> list[Instance]:
    """Distinct datasetIds, the default instance (no datasetId) first."""
    seen: set[str | None] = set()
    default: list[Instance] = []
    others: list[Instance] = []
    for instance in instances:
        dataset_id = instance.get("datasetId")
        if dataset_id in seen:
            which = "default instance" if dataset_id is None else f"datasetId {dataset_id!r}"
            raise _bad(f"attribute '{path}'", f"more than one instance with the {which}")
        seen.add(dataset_id)
        (default if dataset_id is None else others).append(instance)
    return default + others


def _parse_instance(path: str, iri: str, value: Any, ctx: Context, depth: int) -> Instance:
    where = f"attribute '{path}'"
    if value is None:
        raise _bad(where, "null is not a valid attribute value")
    if not isinstance(value, dict):
        instance: Instance = {"type": PROPERTY, "value": value}
        _check_geo_attribute(where, iri, instance)
        return instance

    kind = value.get("type")
    if kind is None:
        return _parse_typeless(path, iri, value, ctx, depth)
    if not isinstance(kind, str) or kind not in ATTRIBUTE_KINDS:
        if looks_like_geometry(value):
            instance = {"type": GEOPROPERTY, "value": geojson.validate_geometry(value, where=where)}
            return instance
        raise _bad(where, f"unknown attribute type {_describe(kind)} (expected one of "
                          f"{', '.join(sorted(ATTRIBUTE_KINDS))})")
    return _parse_members_of(path, iri, kind, value, ctx=ctx, depth=depth)


def _parse_typeless(path: str, iri: str, value: dict[str, Any], ctx: Context,
                    depth: int) -> Instance:
    where = f"attribute '{path}'"
    members = [member for member in _VALUE_MEMBERS if member in value]
    if len(members) > 1:
        raise _bad(where, f"ambiguous: has both {' and '.join(sorted(members))}; "
                          "say which with 'type'")
    if members:
        member = members[0]
        kind = _KIND_BY_MEMBER[member]
        if member == "value" and looks_like_geometry(value["value"]):
            kind = GEOPROPERTY
        return _parse_members_of(path, iri, kind, value, ctx=ctx, depth=depth)
    if not ATTRIBUTE_MARKERS.isdisjoint(value):
        raise _bad(where, "cannot tell the attribute type: give 'type' or a value member "
                          "('value', 'object', 'languageMap', 'vocab', 'json', 'valueList' "
                          "or 'objectList')")
    instance: Instance = {"type": PROPERTY, "value": value}
    _check_geo_attribute(where, iri, instance)
    return instance


def _check_geo_attribute(where: str, iri: str, instance: Instance) -> None:
    if (iri in GEO_ATTRIBUTES and instance["type"] != GEOPROPERTY
            and instance.get(VALUE_MEMBER[instance["type"]]) != NULL_URI):
        raise _bad(where, "must be a GeoProperty with a GeoJSON geometry value")


def _parse_members_of(path: str, iri: str, kind: str, body: dict[str, Any], *, ctx: Context,
                      depth: int) -> Instance:
    where = f"attribute '{path}'"
    member = VALUE_MEMBER[kind]
    if member not in body:
        raise _bad(where, f"{kind} needs a '{member}'")
    instance: Instance = {"type": kind, member: _parse_value(kind, body[member], ctx, where)}
    if len(body) == (2 if "type" in body else 1):  # the commonest shape: nothing else to read
        _check_geo_attribute(where, iri, instance)
        return instance
    subattrs: Attrs = {}
    for key, item in body.items():
        if key in ("type", member) or key in _SYSTEM_MEMBERS:
            continue
        if key in _VALUE_MEMBERS:
            raise _bad(where, f"a {kind} cannot have '{key}'")
        if item == NULL_URI and key in _NULLABLE_MEMBERS:
            instance[key] = item  # merge-patch: delete this member
        elif key == "observedAt":
            instance["observedAt"] = parse_datetime(item, where)
        elif key == "unitCode":
            if kind == JSON_PROPERTY:  # 4.5.24.2: raw JSON is unitless
                raise _bad(where, "a JsonProperty cannot have a unitCode")
            if not isinstance(item, str) or not item:
                raise _bad(where, f"unitCode must be a non-empty string, not {_describe(item)}")
            instance["unitCode"] = item
        elif key == "datasetId":
            instance["datasetId"] = _check_uri(item, where, "datasetId")
        elif key == "objectType":
            if kind not in (RELATIONSHIP, LIST_RELATIONSHIP):
                raise _bad(where, f"objectType is for relationships, not a {kind}")
            instance["objectType"] = _expanded_names(item, ctx, where, "objectType")
        elif key == "attrs":
            raise _bad(where, "'attrs' is a reserved member name")
        elif key == "@context":
            continue
        else:
            sub_iri = _attribute_iri(key, ctx, f"{path}.")
            if sub_iri in subattrs:
                raise _bad(where, f"sub-attribute {key!r} expands to {sub_iri!r}, "
                                       "which another sub-attribute also uses")
            subattrs[sub_iri] = _parse_attr(f"{path}.{key}", sub_iri, item, ctx, depth + 1)
    if subattrs:
        instance["attrs"] = subattrs
    _check_geo_attribute(where, iri, instance)
    return instance


def _parse_value(kind: str, value: Any, ctx: Context, where: str) -> Any:
    """The value member of a ``kind`` attribute, validated; ``urn:ngsi-ld:null`` passes as is
    (merge-patch reads it as "delete")."""
    if value is None:
        raise _bad(where, f"the {VALUE_MEMBER[kind]} of a {kind} cannot be null")
    if value == NULL_URI:
        return value
    if kind == JSON_PROPERTY and not isinstance(value, dict | list):
        # ETSI GS CIM 009 4.5.24.2: a raw JSON object (or array), never a bare scalar
        raise _bad(where, f"json must be a JSON object or array, not {_describe(value)}")
    if kind in (PROPERTY, JSON_PROPERTY):
        return value
    if kind == RELATIONSHIP:
        if isinstance(value, list):
            if not value:
                raise _bad(where, "object must be a URI or a non-empty list of URIs")
            for item in value:
                _check_uri(item, where, "each object")
            return value
        return _check_uri(value, where, "object")
    if kind == GEOPROPERTY:
        if not isinstance(value, dict):
            raise _bad(where, f"a GeoProperty value must be a GeoJSON geometry, "
                              f"not {_describe(value)}")
        return geojson.validate_geometry(value, where=where)
    if kind == LANGUAGE_PROPERTY:
        return _parse_language_map(value, where)
    if kind == VOCAB_PROPERTY:
        if isinstance(value, list):
            if not value:
                raise _bad(where, "vocab must be a term or a non-empty list of terms")
            return [ctx.expand(check_name(term, where, "vocab term")) for term in value]
        return ctx.expand(check_name(value, where, "vocab term"))
    if kind == LIST_PROPERTY:
        if not isinstance(value, list):
            raise _bad(where, f"valueList must be an array, not {_describe(value)}")
        return value
    # LIST_RELATIONSHIP
    if not isinstance(value, list):
        raise _bad(where, f"objectList must be an array, not {_describe(value)}")
    objects: list[str] = []
    for item in value:
        target = item.get("object") if isinstance(item, dict) and len(item) == 1 else item
        objects.append(_check_uri(target, where, "each objectList entry (URI or "
                                                 "{\"object\": URI})"))
    return objects


def _parse_language_map(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise _bad(where, f"languageMap must be a non-empty object of language tag → string, "
                          f"not {_describe(value)}")
    for tag, text in value.items():
        if not isinstance(tag, str) or _LANG_TAG.fullmatch(tag) is None:
            raise _bad(where, f"languageMap key {_describe(tag)} is not a BCP 47 language tag "
                              "or '@none'")
        if isinstance(text, str):
            continue
        if (not isinstance(text, list) or not text
                or not all(isinstance(item, str) for item in text)):
            raise _bad(where, f"languageMap[{tag!r}] must be a string or a list of strings")
    return value
