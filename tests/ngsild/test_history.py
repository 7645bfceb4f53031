"""What each change adds to the temporal history."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.entity import parse_attributes, parse_entity
from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.history import (
    HistoryInstance,
    deletion_record,
    history_instances,
    new_instance_id,
    numeric_value,
    patch_record,
    temporal_records,
)
from sinergia.ngsild.model import DEFAULT_VOCAB, NULL_URI
from sinergia.ngsild.updates import (
    append_attrs,
    create_entity,
    delete_attr,
    merge_entity,
    update_attrs,
)

CTX = ContextResolver(allow_remote=False).core
V = DEFAULT_VOCAB
T1, T2, T3 = "2026-11-21T10:00:00.000Z", "2026-11-21T11:00:00.000Z", "2026-11-21T12:00:00.000Z"
INSTANCE_ID = re.compile(r"urn:ngsi-ld:Instance:[0-9a-f-]{36}")


def created(**attrs: Any) -> dict[str, Any]:
    body = {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", **attrs}
    return create_entity(None, parse_entity(body, CTX), T1)


def by_attr(records: list[HistoryInstance]) -> dict[str, list[HistoryInstance]]:
    out: dict[str, list[HistoryInstance]] = {}
    for record in records:
        out.setdefault(record.attr.removeprefix(V), []).append(record)
    return out


def test_creation_records_every_instance():
    entity = created(
        power={"type": "Property", "value": 12, "observedAt": "2026-11-21T09:59:00Z",
               "unitCode": "WTT", "reliability": {"value": 0.9}},
        state="on",
        group={"type": "Relationship", "object": "urn:ngsi-ld:Group:1"},
        dim=[{"type": "Property", "value": 0.5},
             {"type": "Property", "value": 0.7, "datasetId": "urn:ngsi-ld:Dataset:b"}],
    )
    records = by_attr(history_instances(None, entity, now=T1))
    assert sorted(records) == ["dim", "group", "power", "state"]
    (power,) = records["power"]
    assert INSTANCE_ID.fullmatch(power.instance_id)
    assert power.instance["instanceId"] == power.instance_id
    assert power.observed_at == "2026-11-21T09:59:00.000Z"
    assert power.time("observedAt") == "2026-11-21T09:59:00.000Z"
    assert (power.modified_at, power.created_at, power.deleted) == (T1, T1, False)
    assert power.numeric == 12.0
    assert power.dataset_id is None
    # the instance is the entity's, sub-attributes shared, plus instanceId
    stored = entity["attrs"][V + "power"][0]
    assert {k: v for k, v in power.instance.items() if k != "instanceId"} == stored
    assert power.instance["attrs"] is stored["attrs"]
    assert records["state"][0].numeric is None
    assert records["state"][0].time("observedAt") == T1  # no observedAt: modifiedAt
    assert records["group"][0].numeric is None
    assert [r.dataset_id for r in records["dim"]] == [None, "urn:ngsi-ld:Dataset:b"]
    assert len({r.instance_id for records_ in records.values() for r in records_}) == 5


def test_only_changed_instances_are_recorded():
    before = created(power={"value": 12}, state="on",
                     dim=[{"value": 0.5}, {"value": 0.7, "datasetId": "urn:ngsi-ld:Dataset:b"}])
    fragment = parse_attributes({"power": {"value": 12}, "state": "off",
                                 "dim": {"value": 0.8, "datasetId": "urn:ngsi-ld:Dataset:b"}},
                                CTX)
    after, _ = update_attrs(before, fragment, T2)
    records = by_attr(history_instances(before, after, now=T2))
    assert sorted(records) == ["dim", "state"]  # power rewritten with the same value
    assert records["state"][0].instance["value"] == "off"
    assert records["state"][0].created_at is None  # a change, not a creation
    assert records["state"][0].modified_at == T2
    assert records["state"][0].instance["createdAt"] == T1
    assert records["dim"][0].dataset_id == "urn:ngsi-ld:Dataset:b"
    assert records["dim"][0].numeric == 0.8
    assert history_instances(after, after, now=T3) == []


def test_a_sub_attribute_change_records_its_attribute():
    before = created(power={"value": 12, "reliability": {"value": 0.9}})
    patch = parse_entity({"id": "urn:ngsi-ld:Streetlight:1",
                          "power": {"value": 12, "reliability": {"value": 0.5}}}, CTX,
                         require_type=False)
    after = merge_entity(before, patch, T2)
    (record,) = history_instances(before, after, now=T2)
    assert record.attr == V + "power"
    assert record.instance["value"] == 12
    assert record.instance["attrs"][V + "reliability"][0]["value"] == 0.5


def test_a_new_observation_with_the_same_value_is_a_change():
    before = created(power={"value": 12, "observedAt": T1})
    fragment = parse_attributes({"power": {"value": 12, "observedAt": T2}}, CTX)
    after, _ = append_attrs(before, fragment, T2)
    (record,) = history_instances(before, after, now=T2)
    assert record.observed_at == T2


@pytest.mark.parametrize(("attribute", "null"), [
    ({"type": "Property", "value": 1}, NULL_URI),
    ({"type": "Relationship", "object": "urn:ngsi-ld:X:1"}, NULL_URI),
    ({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [9.1, 45.4]}}, NULL_URI),
    ({"type": "LanguageProperty", "languageMap": {"it": "via", "en": "street"}},
     {"@none": NULL_URI}),
    ({"type": "VocabProperty", "vocab": "Street"}, NULL_URI),
    ({"type": "JsonProperty", "json": {"a": 1}}, NULL_URI),
    ({"type": "ListProperty", "valueList": [1, 2]}, [NULL_URI]),
    ({"type": "ListRelationship", "objectList": ["urn:ngsi-ld:X:1"]}, [NULL_URI]),
])
def test_deleting_an_attribute_records_a_marker(attribute: dict[str, Any], null: Any):
    before = created(thing=attribute)
    after = delete_attr(before, V + "thing", T2)
    (marker,) = history_instances(before, after, now=T2)
    kind = attribute["type"]
    member = next(k for k in attribute if k != "type")
    assert marker.deleted
    assert marker.instance == {"type": kind, member: null, "modifiedAt": T2, "deletedAt": T2,
                               "instanceId": marker.instance_id}
    assert (marker.observed_at, marker.created_at, marker.numeric) == (None, None, None)
    assert marker.time("deletedAt") == marker.time("modifiedAt") == T2
    assert marker.time("observedAt") == T2
    assert marker.time("createdAt") is None


def test_deleting_one_dataset_keeps_its_id_in_the_marker():
    before = created(dim=[{"value": 0.5}, {"value": 0.7, "datasetId": "urn:ngsi-ld:Dataset:b"}])
    after = delete_attr(before, V + "dim", T2, dataset_id="urn:ngsi-ld:Dataset:b")
    (marker,) = history_instances(before, after, now=T2)
    assert marker.dataset_id == marker.instance["datasetId"] == "urn:ngsi-ld:Dataset:b"


def test_deleting_the_entity_records_a_marker_per_instance():
    before = created(power={"value": 12}, state="on",
                     dim=[{"value": 0.5}, {"value": 0.7, "datasetId": "urn:ngsi-ld:Dataset:b"}])
    records = history_instances(before, None, now=T3)
    assert len(records) == 4
    assert all(r.deleted and r.modified_at == T3 for r in records)


def test_records_of_instances_sent_to_the_temporal_api():
    attrs = {V + "power": [{"type": "Property", "value": 3, "observedAt": T1,
                            "createdAt": "2000-01-01T00:00:00.000Z", "instanceId": "x"},
                           {"type": "Property", "value": 4, "observedAt": T2}]}
    records = temporal_records(attrs, T3)
    assert [r.observed_at for r in records] == [T1, T2]
    assert all(r.created_at == r.modified_at == T3 for r in records)
    assert records[0].instance["createdAt"] == T3
    assert records[0].instance_id != "x"
    assert records[0].instance["instanceId"] == records[0].instance_id
    assert "instanceId" not in attrs[V + "power"][1]  # the input is not changed


def test_patching_a_recorded_instance():
    (old,) = temporal_records({V + "power": [
        {"type": "Property", "value": 3, "observedAt": T1, "unitCode": "WTT",
         "datasetId": "urn:ngsi-ld:Dataset:a"}]}, T2)
    record = patch_record(old.attr, old.instance, {"type": "Property", "value": 5}, T3,
                          created_at=old.created_at)
    assert record.instance == {"type": "Property", "value": 5, "observedAt": T1,
                               "datasetId": "urn:ngsi-ld:Dataset:a", "createdAt": T2,
                               "modifiedAt": T3, "instanceId": old.instance_id}
    assert (record.instance_id, record.created_at, record.modified_at) == (
        old.instance_id, T2, T3)
    assert record.numeric == 5.0


def test_patching_refuses_markers_and_other_datasets():
    marker = deletion_record(V + "power", {"type": "Property", "value": 1}, T2)
    with pytest.raises(BadRequestData, match="deletion"):
        patch_record(marker.attr, marker.instance, {"type": "Property", "value": 2}, T3,
                     created_at=None)
    (old,) = temporal_records({V + "power": [{"type": "Property", "value": 3,
                                              "observedAt": T1}]}, T2)
    with pytest.raises(BadRequestData, match="datasetId"):
        patch_record(old.attr, old.instance,
                     {"type": "Property", "value": 2, "datasetId": "urn:ngsi-ld:Dataset:z"},
                     T3, created_at=old.created_at)


@pytest.mark.parametrize(("instance", "expected"), [
    ({"type": "Property", "value": 3}, 3.0),
    ({"type": "Property", "value": -2.5}, -2.5),
    ({"type": "Property", "value": True}, None),
    ({"type": "Property", "value": "3"}, None),
    ({"type": "Property", "value": [3]}, None),
    ({"type": "Property", "value": 10**400}, None),
    ({"type": "JsonProperty", "json": 3}, None),
    ({"type": "Relationship", "object": "urn:x:1"}, None),
])
def test_numeric_values(instance: dict[str, Any], expected: float | None):
    assert numeric_value(instance) == expected


def test_instance_ids_are_unique_and_time_ordered():
    ids = [new_instance_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert ids == sorted(ids)


def test_unknown_time_property():
    (record,) = temporal_records({V + "p": [{"type": "Property", "value": 1,
                                             "observedAt": T1}]}, T2)
    with pytest.raises(ValueError, match="timeproperty"):
        record.time("observationTime")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]),
                          st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["x", "y"]))),
                max_size=12))
def test_history_replays_to_the_current_state(steps: list[tuple[str, Any]]):
    """Applying each step's records to a replay table (latest instance per attribute, deletion
    removes it) always gives back the entity's current attributes."""
    entity = created(a=0)
    replay = {r.attr: r.instance for r in history_instances(None, entity, now=T1)}
    for minute, (name, value) in enumerate(steps):
        now = f"2026-11-21T12:{minute:02d}:00.000Z"
        if value is None:
            if V + name not in entity["attrs"]:
                continue
            after = delete_attr(entity, V + name, now)
        else:
            after, _ = append_attrs(entity, parse_attributes({name: value}, CTX), now)
        for record in history_instances(entity, after, now=now):
            if record.deleted:
                replay.pop(record.attr)
            else:
                replay[record.attr] = record.instance
        entity = after
    current = {iri: {k: v for k, v in instances[0].items()}
               for iri, instances in entity["attrs"].items()}
    assert {iri: {k: v for k, v in inst.items() if k != "instanceId"}
            for iri, inst in replay.items()} == current
