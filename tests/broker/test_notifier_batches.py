"""How the notifier groups claimed outbox messages into notifications."""

from __future__ import annotations

from typing import Any

from sinergia.broker.subscriptions import batches
from sinergia.storage.base import OutboxItem


def item(n: int, sub: str, entity: str, trigger: str = "attributeUpdated",
         tenant: str = "") -> OutboxItem:
    payload: dict[str, Any] = {"trigger": trigger, "entities": [{"id": entity}]}
    return OutboxItem(n, tenant, sub, payload, 0)


def ids(groups: list[list[OutboxItem]]) -> list[list[int]]:
    return [[i.id for i in group] for group in groups]


def test_messages_of_one_subscription_share_a_notification() -> None:
    claimed = [item(1, "s1", "e1"), item(2, "s2", "e1"), item(3, "s1", "e2")]
    assert ids(batches(claimed, 100)) == [[1, 3], [2]]


def test_tenants_triggers_and_size_split_groups() -> None:
    claimed = [item(1, "s", "e1"), item(2, "s", "e2", tenant="t"),
               item(3, "s", "e3", trigger="entityDeleted"), item(4, "s", "e4"),
               item(5, "s", "e5")]
    assert ids(batches(claimed, 2)) == [[1, 4], [5], [2], [3]]


def test_an_entity_appears_once_per_notification() -> None:
    claimed = [item(1, "s", "e1"), item(2, "s", "e1"), item(3, "s", "e2")]
    assert ids(batches(claimed, 100)) == [[1], [2, 3]]
