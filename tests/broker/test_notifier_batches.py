"""How the notifier groups claimed outbox messages into notifications."""

from __future__ import annotations

from collections import deque
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.broker.subscriptions import batches, take_batch
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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.booleans()), max_size=40),
       st.integers(1, 5))
def test_taking_batches_from_a_backlog_matches_grouping_it(
        messages: list[tuple[str, bool]], max_entities: int) -> None:
    """A subscription's backlog is sent with take_batch one notification at a time: every
    message once, each notification a group that batches() could have made of it, and in
    the order of the backlog when nothing forces a split (deletions, a repeated entity)."""
    items = [item(n, "s", f"urn:e:{name}", "entityDeleted" if deleted else "attributeUpdated")
             for n, (name, deleted) in enumerate(messages)]
    backlog = deque(items)
    taken = []
    while backlog:
        window = list(backlog)[:max_entities]
        group = take_batch(backlog, max_entities)
        assert group and group == batches(window, max_entities)[0]
        assert batches(group, max_entities) == [group]
        taken.append(group)
    assert sorted(i.id for group in taken for i in group) == list(range(len(items)))
    if not any(deleted for _, deleted in messages):
        assert [i.id for group in taken for i in group] == list(range(len(items)))
