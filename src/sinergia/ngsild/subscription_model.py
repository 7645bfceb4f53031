"""The parsed form of an NGSI-LD subscription (see :mod:`sinergia.ngsild.subscription` for
parsing, patching, records and rendering): every name an expanded IRI, every filter ready to
evaluate."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from sinergia.ngsild import geo
from sinergia.ngsild.entity import parse_datetime
from sinergia.ngsild.qlang import QExpr, ScopeExpr, TypeExpr
from sinergia.ngsild.render import Format

ENTITY_CREATED: Final = "entityCreated"
ENTITY_UPDATED: Final = "entityUpdated"
ENTITY_DELETED: Final = "entityDeleted"
ATTRIBUTE_CREATED: Final = "attributeCreated"
ATTRIBUTE_UPDATED: Final = "attributeUpdated"
ATTRIBUTE_DELETED: Final = "attributeDeleted"
TRIGGERS: Final = (ENTITY_CREATED, ENTITY_UPDATED, ENTITY_DELETED,
                   ATTRIBUTE_CREATED, ATTRIBUTE_UPDATED, ATTRIBUTE_DELETED)
DEFAULT_TRIGGERS: Final = (ENTITY_CREATED, ATTRIBUTE_CREATED, ATTRIBUTE_UPDATED)

JSON: Final = "application/json"
JSON_LD: Final = "application/ld+json"
ACCEPTS: Final = (JSON, JSON_LD)
ENDPOINT_SCHEMES: Final = ("http", "https", "mqtt", "mqtts")
MQTT_SCHEMES: Final = frozenset({"mqtt", "mqtts"})
FORMATS: Final[dict[str, Format]] = {"normalized": "normalized", "concise": "concise",
                                     "keyValues": "keyValues", "simplified": "keyValues"}
MQTT_VERSIONS: Final = ("mqtt3.1.1", "mqtt5.0")
Status = Literal["active", "paused", "expired"]


def normalized_time(text: str) -> str:
    """An ISO 8601 time as UTC with milliseconds, the form stored times compare in."""
    return parse_datetime(text, "now", "now")


# --- the parsed subscription ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntitySelector:
    """One member of ``entities``: the type expression (names expanded) and optionally an
    id or an id pattern (matched with ``re.search``, as GET /entities does)."""

    type: TypeExpr
    id: str | None = None
    id_pattern: str | None = None
    id_regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class QFilter:
    """q as the client wrote it, the IRI of each name in it, and the resolved expression."""

    text: str
    terms: tuple[tuple[str, str], ...]
    expr: QExpr = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class GeoFilter:
    """geoQ: the georel text as given, the validated query and its ready predicate (a
    stored GeoJSON geometry → bool)."""

    georel: str
    query: geo.GeoQuery
    predicate: Callable[[dict[str, Any]], bool] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    text: str
    expr: ScopeExpr = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Endpoint:
    uri: str
    accept: str = JSON
    receiver_info: tuple[tuple[str, str], ...] = ()
    notifier_info: tuple[tuple[str, str], ...] = ()

    @property
    def scheme(self) -> str:
        return self.uri.split(":", 1)[0].lower()

    @property
    def is_mqtt(self) -> bool:
        return self.scheme in MQTT_SCHEMES

    @property
    def mqtt_qos(self) -> int:
        """``MQTT-QoS`` of notifierInfo (default 1: at least once, like HTTP delivery)."""
        return int(dict(self.notifier_info).get("MQTT-QoS", "1"))


@dataclass(frozen=True, slots=True)
class NotificationParams:
    endpoint: Endpoint
    attributes: tuple[str, ...] = ()   # IRIs; empty = every attribute
    format: Format = "normalized"
    show_changes: bool = False
    sys_attrs: bool = False


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    notification: NotificationParams
    entities: tuple[EntitySelector, ...] = ()
    watched_attributes: tuple[str, ...] = ()   # IRIs; empty = any attribute
    triggers: tuple[str, ...] = DEFAULT_TRIGGERS
    q: QFilter | None = None
    geo_q: GeoFilter | None = None
    scope_q: ScopeFilter | None = None
    lang: str | None = None
    dataset_ids: tuple[str, ...] = ()
    throttling: float | None = None      # seconds
    time_interval: float | None = None   # seconds; set = periodic subscription
    expires_at: str | None = None
    is_active: bool = True
    name: str | None = None
    description: str | None = None
    jsonld_context: str | None = None    # the ``jsonldContext`` member
    context: Any = None                  # @context of the request (None = core only)
    created_at: str = ""
    modified_at: str = ""

    @property
    def context_source(self) -> Any:
        """The @context notifications are compacted with: ``jsonldContext`` if given, else
        the one the subscription was created (or last patched) with."""
        return self.jsonld_context if self.jsonld_context is not None else self.context

    @property
    def is_periodic(self) -> bool:
        return self.time_interval is not None

    def status(self, now: str) -> Status:
        if self.expires_at is not None and self.expires_at <= normalized_time(now):
            return "expired"
        return "active" if self.is_active else "paused"

    def is_live(self, now: str) -> bool:
        """Active and not expired: it may notify now."""
        return self.status(now) == "active"


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    """What the broker counts about a subscription's deliveries."""

    times_sent: int = 0
    times_failed: int = 0
    last_notification: str | None = None
    last_success: str | None = None
    last_failure: str | None = None
    notification_status: Literal["ok", "failed"] | None = None   # None: nothing sent yet

    def after_success(self, at: str) -> SubscriptionStatus:
        return replace(self, times_sent=self.times_sent + 1, last_notification=at,
                       last_success=at, notification_status="ok")

    def after_failure(self, at: str) -> SubscriptionStatus:
        return replace(self, times_sent=self.times_sent + 1,
                       times_failed=self.times_failed + 1, last_notification=at,
                       last_failure=at, notification_status="failed")
