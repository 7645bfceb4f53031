"""NGSI-LD subscriptions, pure: parse and validate (POST), patch (PATCH), store (record) and
render (GET) — ETSI GS CIM 009 5.2.12 Subscription, 5.2.14 NotificationParams, 5.2.15
Endpoint, 5.8 subscription operations.

A :class:`Subscription` (defined in :mod:`sinergia.ngsild.subscription_model`, re-exported
here) holds every name as an expanded IRI and its filters already parsed (q, geoQ with a
compiled predicate, scopeQ, type expressions, idPattern regexes), so matching never parses
anything. Its record (:func:`to_record`) is plain JSON that needs no @context to
be read back (:func:`from_record`): q is kept as written with the IRI of every name in it,
because the q grammar cannot hold IRIs.

Choices where the standard leaves room (as Orion-LD and Stellio do, unless noted):

* every member is checked and an unknown member is an error (a misspelt ``watchedAttribute``
  would otherwise silently subscribe to everything); members the broker keeps (``status``,
  ``timesSent``…) are ignored so a GET result can be sent back as is;
* ``notificationTrigger`` defaults to entityCreated, attributeCreated, attributeUpdated;
* a periodic subscription (``timeInterval``) cannot also have ``watchedAttributes``,
  ``throttling`` or ``notificationTrigger``: those only make sense for changes;
* PATCH replaces the members it gives, merges ``notification`` and its ``endpoint`` one
  member at a time, and deletes optional members given as ``null`` or ``urn:ngsi-ld:null``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import shapely

from sinergia.ngsild import geo
from sinergia.ngsild.context import Context
from sinergia.ngsild.entity import check_name, is_uri, parse_datetime
from sinergia.ngsild.errors import BadRequestData, InvalidRequest, NgsiLdError
from sinergia.ngsild.model import LOCATION, NULL_URI, now_iso
from sinergia.ngsild.qlang import (
    RESERVED_MEMBERS,
    Comparison,
    QExpr,
    TypeAnd,
    TypeExpr,
    TypeOr,
    format_q,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    q_strings,
    resolve_q,
    resolve_types,
)
from sinergia.ngsild.subscription_model import (
    ACCEPTS,
    ATTRIBUTE_CREATED,
    ATTRIBUTE_DELETED,
    ATTRIBUTE_UPDATED,
    DEFAULT_TRIGGERS,
    ENDPOINT_SCHEMES,
    ENTITY_CREATED,
    ENTITY_DELETED,
    ENTITY_UPDATED,
    FORMATS,
    JSON,
    JSON_LD,
    MQTT_SCHEMES,
    MQTT_VERSIONS,
    TRIGGERS,
    Endpoint,
    EntitySelector,
    GeoFilter,
    NotificationParams,
    QFilter,
    ScopeFilter,
    Status,
    Subscription,
    SubscriptionStatus,
    normalized_time,
)

__all__ = [
    "ACCEPTS", "ATTRIBUTE_CREATED", "ATTRIBUTE_DELETED", "ATTRIBUTE_UPDATED", "DEFAULT_TRIGGERS",
    "ENDPOINT_SCHEMES", "ENTITY_CREATED", "ENTITY_DELETED", "ENTITY_UPDATED", "FORMATS", "JSON",
    "JSON_LD", "MAX_TEXT", "MQTT_SCHEMES", "MQTT_VERSIONS", "TRIGGERS", "Endpoint",
    "EntitySelector", "GeoFilter", "NotificationParams", "QFilter", "ScopeFilter", "Status",
    "Subscription", "SubscriptionStatus", "apply_patch", "check_endpoint_uri",
    "format_type_expr", "from_record", "new_subscription_id", "parse_subscription",
    "render_subscription", "to_record",
]

RECORD_VERSION: Final = 1
MAX_TEXT: Final = 4096

# Members the broker keeps: accepted on input (a GET result can be POSTed back) and ignored.
_SYSTEM_MEMBERS: Final = frozenset({"@context", "status", "createdAt", "modifiedAt"})
_NOTIFICATION_SYSTEM: Final = frozenset({"status", "timesSent", "timesFailed",
                                         "lastNotification", "lastSuccess", "lastFailure",
                                         "lastErrorReason"})
# Members of the standard that Sinergia does not implement: a clear error, not silence.
_UNSUPPORTED: Final = frozenset({"csf", "temporalQ", "join", "joinLevel", "localOnly",
                                 "expandValues", "pick", "omit", "timeout", "cooldown"})
# Headers a receiverInfo entry may not set: the notifier owns them.
_RESERVED_HEADERS: Final = frozenset({"content-type", "content-length", "host", "link",
                                      "transfer-encoding", "connection"})
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE: Final = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
_LANG_PART: Final = re.compile(
    r"\s*(\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)\s*(?:;\s*q\s*=\s*[01](?:\.\d{0,3})?\s*)?")


# --- small validators -------------------------------------------------------------------------


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequestData(f"{where} must be a JSON object, not {_describe(value)}")
    return value


def _check_members(body: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    for member in body:
        if member in known:
            continue
        if member in _UNSUPPORTED:
            raise BadRequestData(f"{where}: '{member}' is not supported by this broker")
        shown = sorted(known - _SYSTEM_MEMBERS - _NOTIFICATION_SYSTEM)
        raise BadRequestData(f"{where}: unknown member {_describe(member)} "
                             f"(known: {', '.join(shown)})")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{where} must be a non-empty string, not {_describe(value)}")
    if len(value) > MAX_TEXT:
        raise BadRequestData(f"{where} is longer than {MAX_TEXT} characters")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequestData(f"{where} must be true or false, not {_describe(value)}")
    return value


def _seconds(value: Any, where: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequestData(f"{where} must be a number of seconds, not {_describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        limit = "zero or more" if allow_zero else "more than zero"
        raise BadRequestData(f"{where} must be a finite number of seconds, {limit}, "
                             f"not {_describe(value)}")
    # As given (5 stays 5 in what GET shows), unless too big for a 64-bit JSON integer.
    return value if isinstance(value, float) or abs(value) < 2**53 else number


def _uri(value: Any, where: str) -> str:
    if not is_uri(value):
        raise BadRequestData(f"{where} must be an absolute URI, not {_describe(value)}")
    return str(value)


def _names(value: Any, ctx: Context, where: str) -> tuple[str, ...]:
    """A non-empty list of attribute names → IRIs, duplicates dropped."""
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{where} must be a non-empty array of attribute names, "
                             f"not {_describe(value)}")
    return tuple(dict.fromkeys(ctx.expand(check_name(name, where, "attribute name"))
                               for name in value))


def _is_null(value: Any) -> bool:
    return value is None or value == NULL_URI


# --- member parsers: each returns the Subscription fields it sets ------------------------------


def _parse_entities(value: Any, ctx: Context) -> tuple[EntitySelector, ...]:
    if not isinstance(value, list) or not value:
        raise BadRequestData("entities must be a non-empty array of entity selectors "
                             f"({{\"type\": …, \"id\"/\"idPattern\": …}}), not {_describe(value)}")
    return tuple(_parse_selector(item, ctx, f"entities[{i}]") for i, item in enumerate(value))


def _parse_selector(value: Any, ctx: Context, where: str) -> EntitySelector:
    body = _object(value, where)
    _check_members(body, frozenset({"id", "idPattern", "type"}), where)
    if "type" not in body:
        raise BadRequestData(f"{where}: 'type' is required")
    type_text = body["type"]
    if not isinstance(type_text, str):
        raise BadRequestData(f"{where}.type must be a type name or expression, "
                             f"not {_describe(type_text)}")
    try:
        type_expr = resolve_types(parse_type_expr(type_text), ctx.expand)
    except NgsiLdError as exc:
        raise type(exc)(f"{where}.{exc.detail}") from None
    entity_id = _uri(body["id"], f"{where}.id") if "id" in body else None
    pattern = None
    regex = None
    if "idPattern" in body:
        if entity_id is not None:
            raise BadRequestData(f"{where}: give either 'id' or 'idPattern', not both")
        pattern = _text(body["idPattern"], f"{where}.idPattern")
        regex = _compile_pattern(pattern, where)
    return EntitySelector(type_expr, entity_id, pattern, regex)


def _compile_pattern(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise BadRequestData(f"{where}.idPattern is not a valid regular expression: "
                             f"{exc}") from None


def _parse_triggers(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise BadRequestData("notificationTrigger must be a non-empty array of trigger names")
    for item in value:
        if item not in TRIGGERS:
            raise BadRequestData(f"notificationTrigger: unknown trigger {_describe(item)} "
                                 f"(known: {', '.join(TRIGGERS)})")
    return tuple(dict.fromkeys(value))


def _q_names(expr: QExpr) -> Iterator[str]:
    if isinstance(expr, Comparison):
        yield expr.path.attr
        yield from (s for s in expr.path.subs if s not in RESERVED_MEMBERS)
    else:
        for term in expr.terms:
            yield from _q_names(term)


def _parse_q(value: Any, ctx: Context) -> QFilter:
    text = _text(value, "q")
    parsed = parse_q(text)
    # The IRIs of the names and of the strings compared (the vocab of a VocabProperty is
    # compared as an IRI), kept with the subscription: it is evaluated without its @context.
    words = dict.fromkeys([*_q_names(parsed), *q_strings(parsed)])
    terms = tuple((word, ctx.expand(word)) for word in words)
    iris = dict(terms)
    return QFilter(text, terms, resolve_q(parsed, iris.__getitem__, iris.__getitem__))


def _geo_filter(georel: str, query: geo.GeoQuery) -> GeoFilter:
    try:
        predicate = geo.make_predicate(query)
    except (ValueError, TypeError, shapely.errors.ShapelyError) as exc:
        raise BadRequestData(f"geoQ: the geometry cannot be used: {exc}") from None
    return GeoFilter(georel.strip(), query, predicate)


def _parse_geoq(value: Any, ctx: Context) -> GeoFilter:
    body = _object(value, "geoQ")
    _check_members(body, frozenset({"georel", "geometry", "coordinates", "geoproperty"}),
                   "geoQ")
    query = geo.parse_geoq_object(body, ctx.expand)
    return _geo_filter(body["georel"], query)


def _parse_scope(value: Any) -> ScopeFilter:
    text = _text(value, "scopeQ")
    return ScopeFilter(text, parse_scope_q(text))


def _parse_lang(value: Any) -> str:
    text = _text(value, "lang")
    if not all(_LANG_PART.fullmatch(part) for part in text.split(",")):
        raise BadRequestData(f"lang must be a language tag, a comma list of tags or '*', "
                             f"not {_describe(text)}")
    return text


def _parse_dataset_ids(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise BadRequestData("datasetId must be a URI or a non-empty array of URIs")
    return tuple(dict.fromkeys(item if item == "@none" else _uri(item, "datasetId")
                               for item in items))


def _parse_expires(value: Any, now: str) -> str:
    expires = parse_datetime(value, "expiresAt", "expiresAt")
    if expires <= normalized_time(now):
        raise BadRequestData(f"expiresAt {value!r} is not in the future")
    return expires


def _parse_notification(value: Any, ctx: Context,
                        base: NotificationParams | None = None) -> NotificationParams:
    """``notification`` (create), or a fragment merged into ``base`` (PATCH)."""
    body = _object(value, "notification")
    known = frozenset({"attributes", "format", "showChanges", "sysAttrs", "endpoint"})
    _check_members(body, known | _NOTIFICATION_SYSTEM, "notification")
    changes: dict[str, Any] = {}
    for member, item in body.items():
        if member in _NOTIFICATION_SYSTEM:
            continue
        if base is not None and _is_null(item):
            if member == "endpoint":
                raise BadRequestData("notification.endpoint cannot be deleted")
            changes[_NOTIFICATION_FIELDS[member]] = _NOTIFICATION_DEFAULTS[member]
        elif member == "attributes":
            # [] is what GET shows for "every attribute", so it is accepted back.
            changes["attributes"] = () if item == [] else _names(item, ctx,
                                                                 "notification.attributes")
        elif member == "format":
            if not isinstance(item, str) or item not in FORMATS:
                raise BadRequestData(f"notification.format must be normalized, concise or "
                                     f"keyValues, not {_describe(item)}")
            changes["format"] = FORMATS[item]
        elif member == "showChanges":
            changes["show_changes"] = _bool(item, "notification.showChanges")
        elif member == "sysAttrs":
            changes["sys_attrs"] = _bool(item, "notification.sysAttrs")
        else:
            changes["endpoint"] = _parse_endpoint(item, base.endpoint if base else None)
    if base is not None:
        return replace(base, **changes)
    if "endpoint" not in changes:
        raise BadRequestData("notification.endpoint is required")
    return NotificationParams(**changes)


_NOTIFICATION_FIELDS: Final = {"attributes": "attributes", "format": "format",
                               "showChanges": "show_changes", "sysAttrs": "sys_attrs"}
_NOTIFICATION_DEFAULTS: Final[dict[str, Any]] = {"attributes": (), "format": "normalized",
                                                 "showChanges": False, "sysAttrs": False}


def _parse_endpoint(value: Any, base: Endpoint | None) -> Endpoint:
    where = "notification.endpoint"
    body = _object(value, where)
    _check_members(body, frozenset({"uri", "accept", "receiverInfo", "notifierInfo"}), where)
    changes: dict[str, Any] = {}
    for member, item in body.items():
        if base is not None and _is_null(item):
            if member == "uri":
                raise BadRequestData(f"{where}.uri cannot be deleted")
            changes[member] = JSON if member == "accept" else ()
        elif member == "uri":
            changes[member] = check_endpoint_uri(item)
        elif member == "accept":
            if item not in ACCEPTS:
                raise BadRequestData(f"{where}.accept must be application/json or "
                                     f"application/ld+json, not {_describe(item)}")
            changes[member] = item
        elif member == "receiverInfo":
            changes[member] = _key_values(item, f"{where}.receiverInfo", _check_header)
        else:
            changes[member] = _key_values(item, f"{where}.notifierInfo", _check_notifier_info)
    renamed = {"uri": "uri", "accept": "accept", "receiverInfo": "receiver_info",
               "notifierInfo": "notifier_info"}
    fields_ = {renamed[k]: v for k, v in changes.items()}
    if base is not None:
        return replace(base, **fields_)
    if "uri" not in fields_:
        raise BadRequestData(f"{where}.uri is required")
    return Endpoint(**fields_)


def check_endpoint_uri(value: Any) -> str:
    """An http(s) URL, or ``mqtt(s)://[user:password@]host[:port]/topic``."""
    where = "notification.endpoint.uri"
    uri = _uri(value, where)
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise BadRequestData(f"{where} {uri!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ENDPOINT_SCHEMES:
        raise BadRequestData(f"{where} must be an http, https, mqtt or mqtts URL, "
                             f"not {_describe(uri)}")
    if not parts.hostname:
        raise BadRequestData(f"{where} {uri!r} names no host")
    if port == 0:
        raise BadRequestData(f"{where} {uri!r} names port 0")
    if scheme in MQTT_SCHEMES:
        topic = unquote(parts.path[1:])
        if not topic:
            raise BadRequestData(f"{where} {uri!r} names no topic "
                                 "(mqtt://host:port/some/topic)")
        if "+" in topic or "#" in uri or "\x00" in topic:
            raise BadRequestData(f"{where}: the MQTT topic of {uri!r} may not contain "
                                 "wildcards (+ or #)")
    return uri


def _key_values(value: Any, where: str,
                check: Callable[[str, str, str], None]) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise BadRequestData(f"{where} must be an array of {{\"key\", \"value\"}} objects")
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(value):
        entry = _object(item, f"{where}[{i}]")
        if set(entry) != {"key", "value"}:
            raise BadRequestData(f"{where}[{i}] must have exactly 'key' and 'value'")
        key, text = entry["key"], entry["value"]
        if not isinstance(key, str) or not isinstance(text, str):
            raise BadRequestData(f"{where}[{i}]: key and value must be strings")
        check(key, text, f"{where}[{i}]")
        pairs.append((key, text))
    return tuple(pairs)


def _check_header(key: str, value: str, where: str) -> None:
    if _HEADER_NAME.fullmatch(key) is None:
        raise BadRequestData(f"{where}: {key!r} is not a valid header name")
    if key.lower() in _RESERVED_HEADERS:
        raise BadRequestData(f"{where}: the header {key!r} is set by the broker")
    if len(value) > MAX_TEXT or _HEADER_VALUE.fullmatch(value) is None:
        raise BadRequestData(f"{where}: the value of {key!r} is not a valid header value")


def _check_notifier_info(key: str, value: str, where: str) -> None:
    if key == "MQTT-QoS":
        if value not in ("0", "1", "2"):
            raise BadRequestData(f"{where}: MQTT-QoS must be \"0\", \"1\" or \"2\"")
    elif key == "MQTT-Version":
        if value not in MQTT_VERSIONS:
            raise BadRequestData(f"{where}: MQTT-Version must be one of "
                                 f"{', '.join(MQTT_VERSIONS)}")
    else:
        raise BadRequestData(f"{where}: unknown notifierInfo key {key!r} "
                             "(known: MQTT-QoS, MQTT-Version)")


# --- the member table ---------------------------------------------------------------------------

_Parser = Callable[[Any, Context, str], dict[str, Any]]

_MEMBERS: Final[dict[str, _Parser]] = {
    "subscriptionName": lambda v, c, n: {"name": _text(v, "subscriptionName")},
    "description": lambda v, c, n: {"description": _text(v, "description")},
    "entities": lambda v, c, n: {"entities": _parse_entities(v, c)},
    "watchedAttributes": lambda v, c, n: {"watched_attributes": _names(v, c,
                                                                       "watchedAttributes")},
    "notificationTrigger": lambda v, c, n: {"triggers": _parse_triggers(v)},
    "q": lambda v, c, n: {"q": _parse_q(v, c)},
    "geoQ": lambda v, c, n: {"geo_q": _parse_geoq(v, c)},
    "scopeQ": lambda v, c, n: {"scope_q": _parse_scope(v)},
    "lang": lambda v, c, n: {"lang": _parse_lang(v)},
    "datasetId": lambda v, c, n: {"dataset_ids": _parse_dataset_ids(v)},
    "throttling": lambda v, c, n: {"throttling": _seconds(v, "throttling", allow_zero=True)},
    "timeInterval": lambda v, c, n: {"time_interval": _seconds(v, "timeInterval",
                                                               allow_zero=False)},
    "expiresAt": lambda v, c, n: {"expires_at": _parse_expires(v, n)},
    "isActive": lambda v, c, n: {"is_active": _bool(v, "isActive")},
    "jsonldContext": lambda v, c, n: {"jsonld_context": _uri(v, "jsonldContext")},
}
# What a null in PATCH resets each optional member to.
_RESETS: Final[dict[str, dict[str, Any]]] = {
    "subscriptionName": {"name": None}, "description": {"description": None},
    "entities": {"entities": ()}, "watchedAttributes": {"watched_attributes": ()},
    "notificationTrigger": {"triggers": DEFAULT_TRIGGERS}, "q": {"q": None},
    "geoQ": {"geo_q": None}, "scopeQ": {"scope_q": None}, "lang": {"lang": None},
    "datasetId": {"dataset_ids": ()}, "throttling": {"throttling": None},
    "timeInterval": {"time_interval": None}, "expiresAt": {"expires_at": None},
    "isActive": {"is_active": True}, "jsonldContext": {"jsonld_context": None},
}
_TOP_MEMBERS: Final = frozenset({"id", "type", "notification", *_MEMBERS, *_SYSTEM_MEMBERS})


def _check_whole(sub: Subscription) -> Subscription:
    """The rules that tie members together."""
    if not sub.entities and not sub.watched_attributes:
        raise BadRequestData("a subscription needs 'entities' or 'watchedAttributes' (or both)")
    if sub.time_interval is not None:
        clashes = [name for name, present in (("watchedAttributes", sub.watched_attributes),
                                              ("throttling", sub.throttling is not None),
                                              ("notificationTrigger",
                                               sub.triggers != DEFAULT_TRIGGERS)) if present]
        if clashes:
            raise BadRequestData(f"timeInterval (a periodic subscription) cannot be combined "
                                 f"with {' or '.join(clashes)}, which are about changes")
    return sub


# --- public API ---------------------------------------------------------------------------------


def new_subscription_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"


def parse_subscription(body: Any, ctx: Context, *, now: str) -> Subscription:
    """Validate a POST /subscriptions body and expand its names with ``ctx``. A missing
    ``id`` is generated. Raises BadRequestData (InvalidRequest when not an object)."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"a subscription must be a JSON object, not {type(body).__name__}")
    _check_members(body, _TOP_MEMBERS, "subscription")
    sub_id = _uri(body["id"], "id") if "id" in body else new_subscription_id()
    if "type" in body and body["type"] != "Subscription":
        raise BadRequestData(f"type must be 'Subscription', not {_describe(body['type'])}")
    if "notification" not in body:
        raise BadRequestData("'notification' is required")
    fields_: dict[str, Any] = {}
    for member, value in body.items():
        parser = _MEMBERS.get(member)
        if parser is not None:
            fields_.update(parser(value, ctx, now))
    notification = _parse_notification(body["notification"], ctx)
    stamp = normalized_time(now)
    return _check_whole(Subscription(sub_id, notification, context=ctx.source,
                                     created_at=stamp, modified_at=stamp, **fields_))


def apply_patch(sub: Subscription, patch: Any, ctx: Context, now: str) -> Subscription:
    """PATCH /subscriptions/{id}: the members given replace the stored ones (``notification``
    and its ``endpoint`` are merged member by member); ``null`` or ``urn:ngsi-ld:null``
    deletes an optional member. A request with its own @context makes it the subscription's
    context. Raises like :func:`parse_subscription`; ``sub`` is never changed."""
    if not isinstance(patch, dict):
        raise InvalidRequest(f"a subscription fragment must be a JSON object, "
                             f"not {type(patch).__name__}")
    _check_members(patch, _TOP_MEMBERS, "subscription")
    if "id" in patch and patch["id"] != sub.id:
        raise BadRequestData("the id of a subscription cannot be changed")
    if "type" in patch and patch["type"] != "Subscription":
        raise BadRequestData(f"type must be 'Subscription', not {_describe(patch['type'])}")
    changes: dict[str, Any] = {}
    for member, value in patch.items():
        if member == "notification":
            if _is_null(value):
                raise BadRequestData("notification cannot be deleted")
            changes["notification"] = _parse_notification(value, ctx, sub.notification)
        elif member in _MEMBERS:
            changes.update(_RESETS[member] if _is_null(value)
                           else _MEMBERS[member](value, ctx, now))
    if ctx.source is not None:
        changes["context"] = ctx.source
    return _check_whole(replace(sub, modified_at=normalized_time(now), **changes))


# --- record (storage) ---------------------------------------------------------------------------


def format_type_expr(expr: TypeExpr, name: Callable[[str], str] = str) -> str:
    """Text that :func:`~sinergia.ngsild.qlang.parse_type_expr` reads back as ``expr``
    (with ``name`` applied to every type)."""
    if isinstance(expr, str):
        return name(expr)
    sep = ";" if isinstance(expr, TypeAnd) else "|"
    return sep.join(f"({format_type_expr(t, name)})" if isinstance(t, TypeAnd | TypeOr)
                    else format_type_expr(t, name) for t in expr.terms)


def _pairs(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in pairs]


def _geo_body(flt: GeoFilter, geoproperty: str) -> dict[str, Any]:
    query = flt.query
    return {"georel": flt.georel, "geometry": query.geometry["type"],
            "coordinates": query.geometry["coordinates"], "geoproperty": geoproperty}


def to_record(sub: Subscription) -> dict[str, Any]:
    """Plain JSON with expanded names; :func:`from_record` reads it back without a context."""
    notification = sub.notification
    endpoint = notification.endpoint
    record: dict[str, Any] = {
        "version": RECORD_VERSION, "id": sub.id, "type": "Subscription",
        "notificationTrigger": list(sub.triggers), "isActive": sub.is_active,
        "createdAt": sub.created_at, "modifiedAt": sub.modified_at,
        "notification": {
            "format": notification.format, "showChanges": notification.show_changes,
            "sysAttrs": notification.sys_attrs,
            "endpoint": {"uri": endpoint.uri, "accept": endpoint.accept},
        },
    }
    if notification.attributes:
        record["notification"]["attributes"] = list(notification.attributes)
    if endpoint.receiver_info:
        record["notification"]["endpoint"]["receiverInfo"] = _pairs(endpoint.receiver_info)
    if endpoint.notifier_info:
        record["notification"]["endpoint"]["notifierInfo"] = _pairs(endpoint.notifier_info)
    if sub.entities:
        record["entities"] = [_selector_body(s, str) for s in sub.entities]
    if sub.watched_attributes:
        record["watchedAttributes"] = list(sub.watched_attributes)
    if sub.q is not None:
        record["q"] = sub.q.text
        record["qTerms"] = dict(sub.q.terms)
    if sub.geo_q is not None:
        record["geoQ"] = _geo_body(sub.geo_q, sub.geo_q.query.geoproperty)
    if sub.scope_q is not None:
        record["scopeQ"] = sub.scope_q.text
    if sub.dataset_ids:
        record["datasetId"] = list(sub.dataset_ids)
    optional = {"subscriptionName": sub.name, "description": sub.description,
                "lang": sub.lang, "throttling": sub.throttling,
                "timeInterval": sub.time_interval, "expiresAt": sub.expires_at,
                "jsonldContext": sub.jsonld_context, "context": sub.context}
    record.update({k: v for k, v in optional.items() if v is not None})
    return record


def _selector_body(selector: EntitySelector, name: Callable[[str], str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if selector.id is not None:
        body["id"] = selector.id
    if selector.id_pattern is not None:
        body["idPattern"] = selector.id_pattern
    body["type"] = format_type_expr(selector.type, name)
    return body


def from_record(record: Mapping[str, Any]) -> Subscription:
    """The subscription :func:`to_record` stored (trusted input: errors are not dressed up)."""
    notification = record["notification"]
    endpoint = notification["endpoint"]
    q = None
    if "q" in record:
        iris = dict(record["qTerms"])
        # Records written before strings were kept there compare vocabs with the raw string.
        q = QFilter(record["q"], tuple(iris.items()), resolve_q(
            parse_q(record["q"]), iris.__getitem__, lambda word: iris.get(word, word)))
    geo_q = None
    if "geoQ" in record:
        raw = record["geoQ"]
        geo_q = _geo_filter(raw["georel"], geo.parse_geoq_object(raw, str))
    return Subscription(
        id=record["id"],
        notification=NotificationParams(
            endpoint=Endpoint(
                endpoint["uri"], endpoint.get("accept", JSON),
                tuple((p["key"], p["value"]) for p in endpoint.get("receiverInfo", ())),
                tuple((p["key"], p["value"]) for p in endpoint.get("notifierInfo", ()))),
            attributes=tuple(notification.get("attributes", ())),
            format=FORMATS[notification.get("format", "normalized")],
            show_changes=notification.get("showChanges", False),
            sys_attrs=notification.get("sysAttrs", False)),
        entities=tuple(_selector_from(s) for s in record.get("entities", ())),
        watched_attributes=tuple(record.get("watchedAttributes", ())),
        triggers=tuple(record.get("notificationTrigger", DEFAULT_TRIGGERS)),
        q=q, geo_q=geo_q,
        scope_q=(ScopeFilter(record["scopeQ"], parse_scope_q(record["scopeQ"]))
                 if "scopeQ" in record else None),
        lang=record.get("lang"),
        dataset_ids=tuple(record.get("datasetId", ())),
        throttling=record.get("throttling"),
        time_interval=record.get("timeInterval"),
        expires_at=record.get("expiresAt"),
        is_active=record.get("isActive", True),
        name=record.get("subscriptionName"),
        description=record.get("description"),
        jsonld_context=record.get("jsonldContext"),
        context=record.get("context"),
        created_at=record.get("createdAt", ""),
        modified_at=record.get("modifiedAt", ""),
    )


def _selector_from(body: Mapping[str, Any]) -> EntitySelector:
    pattern = body.get("idPattern")
    return EntitySelector(parse_type_expr(body["type"]), body.get("id"), pattern,
                          re.compile(pattern) if pattern is not None else None)


# --- rendering (GET) ----------------------------------------------------------------------------


def _compact_q(flt: QFilter, ctx: Context) -> str:
    parsed = parse_q(flt.text)
    attributes = set(_q_names(parsed))   # terms also holds compared strings: shown as written
    names = {term: ctx.compact(iri) for term, iri in flt.terms if term in attributes}
    if all(term == name for term, name in names.items()):
        return flt.text   # as the client wrote it, spacing and all
    return format_q(resolve_q(parsed, names.__getitem__))


def render_subscription(sub: Subscription, status: SubscriptionStatus, ctx: Context, *,
                        now: str | None = None, sys_attrs: bool = False) -> dict[str, Any]:
    """The subscription as GET shows it, names compacted with ``ctx``, with the delivery
    counters and ``status`` (expired, else paused when not isActive, else active)."""
    compact = ctx.compact
    notification = sub.notification
    endpoint = notification.endpoint
    out: dict[str, Any] = {"id": sub.id, "type": "Subscription"}
    if sub.name is not None:
        out["subscriptionName"] = sub.name
    if sub.description is not None:
        out["description"] = sub.description
    if sub.entities:
        out["entities"] = [_selector_body(s, compact) for s in sub.entities]
    if sub.watched_attributes:
        out["watchedAttributes"] = [compact(a) for a in sub.watched_attributes]
    if sub.time_interval is not None:
        out["timeInterval"] = sub.time_interval
    else:
        out["notificationTrigger"] = list(sub.triggers)
    if sub.q is not None:
        out["q"] = _compact_q(sub.q, ctx)
    if sub.geo_q is not None:
        body = _geo_body(sub.geo_q, compact(sub.geo_q.query.geoproperty))
        if sub.geo_q.query.geoproperty == LOCATION:
            del body["geoproperty"]
        out["geoQ"] = body
    if sub.scope_q is not None:
        out["scopeQ"] = sub.scope_q.text
    if sub.lang is not None:
        out["lang"] = sub.lang
    if sub.dataset_ids:
        out["datasetId"] = list(sub.dataset_ids)
    if sub.throttling is not None:
        out["throttling"] = sub.throttling
    if sub.expires_at is not None:
        out["expiresAt"] = sub.expires_at
    if sub.jsonld_context is not None:
        out["jsonldContext"] = sub.jsonld_context
    out["isActive"] = sub.is_active
    out["status"] = sub.status(now if now is not None else now_iso())
    rendered_endpoint: dict[str, Any] = {"uri": endpoint.uri, "accept": endpoint.accept}
    if endpoint.receiver_info:
        rendered_endpoint["receiverInfo"] = _pairs(endpoint.receiver_info)
    if endpoint.notifier_info:
        rendered_endpoint["notifierInfo"] = _pairs(endpoint.notifier_info)
    rendered: dict[str, Any] = {}
    if notification.attributes:
        rendered["attributes"] = [compact(a) for a in notification.attributes]
    rendered.update({"format": notification.format, "showChanges": notification.show_changes,
                     "sysAttrs": notification.sys_attrs, "endpoint": rendered_endpoint})
    if status.notification_status is not None:
        rendered["status"] = status.notification_status
    rendered["timesSent"] = status.times_sent
    rendered["timesFailed"] = status.times_failed
    for key, value in (("lastNotification", status.last_notification),
                       ("lastSuccess", status.last_success),
                       ("lastFailure", status.last_failure)):
        if value is not None:
            rendered[key] = value
    out["notification"] = rendered
    if sys_attrs:
        out["createdAt"] = sub.created_at
        out["modifiedAt"] = sub.modified_at
    return out
