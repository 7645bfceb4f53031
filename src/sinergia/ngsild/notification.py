"""Notifications, pure: what a subscription sends — headers and body — for a list of entities
(ETSI GS CIM 009 5.2.17 Notification, 5.2.14 NotificationParams, clause on MQTT binding).

The entities are rendered by :mod:`sinergia.ngsild.render` with the subscription's
``notification.attributes``, ``format``, ``sysAttrs``, ``lang`` and ``datasetId``; this module
only adds what is particular to notifications:

* ``showChanges``: each rendered instance of a changed attribute gets the previous value as
  ``previousValue`` / ``previousObject`` / ``previousLanguageMap`` / ``previousVocab`` /
  ``previousJson`` / ``previousValueList`` / ``previousObjectList`` (named after the previous
  instance's value member), in normalized and concise formats (keyValues has no room for it);
* an entity deleted (trigger ``entityDeleted``) is sent as ``id``, ``type`` and ``deletedAt``;
* ``accept: application/json`` → the @context goes in a ``Link`` header;
  ``application/ld+json`` → ``@context`` in the body;
* ``receiverInfo`` entries become headers; a non-default tenant is named by ``NGSILD-Tenant``;
* MQTT endpoints get ``{"metadata": {headers}, "body": notification}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

from sinergia.ngsild.context import Context
from sinergia.ngsild.model import CORE_CONTEXT_URL, VALUE_MEMBER, Entity, Instance
from sinergia.ngsild.render import RenderOptions, render_entity
from sinergia.ngsild.subscription import ENTITY_DELETED, JSON_LD, Subscription

CONTEXT_REL: Final = "http://www.w3.org/ns/json-ld#context"
TENANT_HEADER: Final = "NGSILD-Tenant"

Previous = dict[str, dict[str, list[Instance]]]   # entity id → attribute IRI → old instances


def context_url(ctx: Context) -> str:
    """The one URL a ``Link`` header can carry for ``ctx`` (the core context when the
    context is inline or made of several parts: give ``context_url`` to do better)."""
    source = ctx.source
    if isinstance(source, str):
        return source
    if isinstance(source, list) and len(source) == 1 and isinstance(source[0], str):
        return source[0]
    return CORE_CONTEXT_URL


def link_header(url: str) -> str:
    return f'<{url}>; rel="{CONTEXT_REL}"; type="{JSON_LD}"'


def previous_instances(before: Entity | None, attrs: Iterable[str]) -> dict[str, list[Instance]]:
    """The instances ``before`` had for ``attrs`` — one entry of the ``previous`` argument of
    :func:`build_notification` (attributes ``before`` did not have are left out)."""
    old = before.get("attrs", {}) if before is not None else {}
    return {attr: old[attr] for attr in attrs if attr in old}


def render_options(sub: Subscription) -> RenderOptions:
    params = sub.notification
    return RenderOptions(
        format=params.format,
        sys_attrs=params.sys_attrs,
        attrs=frozenset(params.attributes) if params.attributes else None,
        lang=sub.lang,
        dataset_ids=frozenset(sub.dataset_ids) if sub.dataset_ids else None,
    )


class RenderCache:
    """Entities rendered for notifications, by entity snapshot, options and context: the
    subscriptions a change notifies get the same snapshot object, and mostly ask for the
    same rendering of it, so it is rendered once for all of them. An entry keeps its
    snapshot and context alive, so their ids cannot be reused while it is cached; the
    oldest entries go first. Cached renderings are shared: never modify one."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: dict[tuple[int, RenderOptions, int],
                            tuple[Entity, Context, dict[str, Any]]] = {}

    def render(self, entity: Entity, ctx: Context, opts: RenderOptions) -> dict[str, Any]:
        key = (id(entity), opts, id(ctx))
        hit = self._entries.get(key)
        if hit is not None and hit[0] is entity and hit[1] is ctx:
            return hit[2]
        rendered = render_entity(entity, ctx, opts)
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (entity, ctx, rendered)
        return rendered


def build_notification(sub: Subscription, entities: list[Entity], previous: Previous | None,
                       ctx: Context, *, notification_id: str, now: str, tenant: str = "",
                       trigger: str | None = None,
                       context_url_override: str | None = None,
                       cache: RenderCache | None = None,
                       ) -> tuple[dict[str, str], bytes]:
    """Headers and body of one notification of ``sub`` about ``entities`` (internal form),
    names compacted with ``ctx`` (the context of ``sub.context_source``). ``previous``
    (entity id → attribute IRI → old instances) feeds ``showChanges``. For MQTT endpoints the
    body is the ``{"metadata", "body"}`` envelope and the headers are its metadata. With a
    ``cache``, entities already rendered alike for another notification are not again."""
    opts = render_options(sub)
    show_changes = sub.notification.show_changes and opts.format != "keyValues" and previous
    data: list[dict[str, Any]] = []
    for entity in entities:
        if trigger == ENTITY_DELETED:
            data.append(_deleted(entity, ctx, now))
            continue
        if show_changes and previous is not None and entity["id"] in previous:
            rendered = render_entity(entity, ctx, opts)   # its own: the previous values go in
            _add_previous(rendered, entity, previous[entity["id"]], ctx, opts)
        elif cache is not None:
            rendered = cache.render(entity, ctx, opts)
        else:
            rendered = render_entity(entity, ctx, opts)
        data.append(rendered)

    endpoint = sub.notification.endpoint
    headers = {"Content-Type": endpoint.accept}
    notification: dict[str, Any] = {}
    if endpoint.accept == JSON_LD:
        notification["@context"] = ctx.source if ctx.source is not None else CORE_CONTEXT_URL
    else:
        headers["Link"] = link_header(context_url_override or context_url(ctx))
    notification.update({"id": notification_id, "type": "Notification",
                         "subscriptionId": sub.id, "notifiedAt": now, "data": data})
    if tenant:
        headers[TENANT_HEADER] = tenant
    headers.update(endpoint.receiver_info)
    if endpoint.is_mqtt:
        return headers, orjson.dumps({"metadata": headers, "body": notification})
    return headers, orjson.dumps(notification)


def _deleted(entity: Entity, ctx: Context, now: str) -> dict[str, Any]:
    stub = render_entity({"id": entity["id"], "type": entity.get("type", [])}, ctx,
                         RenderOptions())
    stub["deletedAt"] = entity.get("deletedAt", now)
    return stub


def _add_previous(rendered: dict[str, Any], entity: Entity, old_attrs: dict[str, list[Instance]],
                  ctx: Context, opts: RenderOptions) -> None:
    """Give each rendered instance of a changed attribute its previous value member."""
    current_attrs = entity.get("attrs", {})
    for iri, old_instances in old_attrs.items():
        current = current_attrs.get(iri)
        if not current:
            continue   # deleted: nothing is rendered to attach the previous value to
        # Rendering the attribute alone tells under which name render_entity put it.
        alone = render_entity({"id": entity["id"], "attrs": {iri: current}}, ctx, opts)
        name = next((key for key in alone if key != "id"), None)
        if name is None or name not in rendered:
            continue   # not projected (notification.attributes, datasetId)
        if opts.dataset_ids is not None:
            current = [i for i in current if i.get("datasetId", "@none") in opts.dataset_ids]
        old_by_dataset = {i.get("datasetId"): i for i in old_instances}
        single = len(current) == 1
        items = [rendered[name]] if single else list(rendered[name])
        for index, instance in enumerate(current):
            old = old_by_dataset.get(instance.get("datasetId"))
            if old is None:
                continue
            item = items[index]
            if not isinstance(item, dict):
                item = {"value": item}   # a concise bare value, made an object to carry more
            member, value = _previous_member(iri, old, ctx, opts)
            item["previous" + member[0].upper() + member[1:]] = value
            items[index] = item
        rendered[name] = items[0] if single else items


def _previous_member(iri: str, old: Instance, ctx: Context,
                     opts: RenderOptions) -> tuple[str, Any]:
    """The value member of the old instance as normalized rendering shows it (compacted
    vocab, objectList objects, chosen language), and its name."""
    shown = render_entity({"id": "", "attrs": {iri: [old]}}, ctx,
                          RenderOptions(lang=opts.lang))
    instance = next(value for key, value in shown.items() if key != "id")
    member = VALUE_MEMBER[instance["type"]]
    return member, instance[member]
