"""The NGSI-LD update rules (ETSI GS CIM 009 5.6.x) on the internal entity form."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.ngsild.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from sinergia.ngsild.model import NULL_URI, Entity, Instance
from sinergia.ngsild.updates import (
    NotUpdated,
    append_attrs,
    batch_update,
    changed_instances,
    create_entity,
    delete_attr,
    merge_entity,
    patch_attr,
    replace_attr,
    replace_entity,
    update_attrs,
    upsert_entity,
)

T0 = "2026-01-01T00:00:00.000Z"
T1 = "2026-01-02T00:00:00.000Z"
T2 = "2026-01-03T00:00:00.000Z"
V = "https://example.org/"
EID = "urn:ngsi-ld:Streetlight:MI-0001"
STREETLIGHT = V + "Streetlight"
TEMP = V + "temperature"
SPEED = V + "speed"
NAME = V + "name"
ADDRESS = V + "address"
REF = V + "refGroup"
PRECISION = V + "precision"
SOURCE = V + "source"
LOC = "https://uri.etsi.org/ngsi-ld/location"
DS1 = "urn:ngsi-ld:Dataset:one"
DS2 = "urn:ngsi-ld:Dataset:two"
SYSTEM = ("createdAt", "modifiedAt")


def prop(value: Any, **members: Any) -> Instance:
    return {"type": "Property", "value": value, **members}


def rel(target: str, **members: Any) -> Instance:
    return {"type": "Relationship", "object": target, **members}


def new_entity(attrs: dict[str, list[Instance]], **members: Any) -> Entity:
    return {"id": EID, "type": [STREETLIGHT], **members, "attrs": attrs}


def stored(attrs: dict[str, list[Instance]], **members: Any) -> Entity:
    return create_entity(None, new_entity(attrs, **members), T0)


def plain(instance: Instance | None) -> Instance | None:
    """An instance without its system members."""
    if instance is None:
        return None
    return {k: v for k, v in instance.items() if k not in SYSTEM}


def only(entity: Entity, attr: str, dataset_id: str | None = None) -> Instance:
    matches = [i for i in entity["attrs"][attr] if i.get("datasetId") == dataset_id]
    assert len(matches) == 1
    return matches[0]


def temperature_entity() -> Entity:
    """5.5.8's running example."""
    return stored({TEMP: [prop(25, unitCode="CEL", observedAt="2022-03-14T01:59:26.535Z")]})


# --------------------------------------------------------------------------- create (5.6.1)


def test_create_stamps_entity_and_every_instance() -> None:
    new = new_entity({TEMP: [prop(20)], SPEED: [prop(1), prop(2, datasetId=DS1)]},
                     scope=["/Milano"])
    before = copy.deepcopy(new)
    entity = create_entity(None, new, T0)
    assert new == before
    assert entity["createdAt"] == entity["modifiedAt"] == T0
    assert entity["id"] == EID and entity["type"] == [STREETLIGHT]
    assert entity["scope"] == ["/Milano"]
    for instances in entity["attrs"].values():
        for instance in instances:
            assert instance["createdAt"] == instance["modifiedAt"] == T0
    assert plain(only(entity, SPEED, DS1)) == prop(2, datasetId=DS1)


def test_create_ignores_client_timestamps() -> None:
    new = new_entity({TEMP: [prop(20, createdAt="1999-01-01T00:00:00Z")]},
                     createdAt="1999-01-01T00:00:00Z")
    entity = create_entity(None, new, T0)
    assert entity["createdAt"] == T0
    assert only(entity, TEMP)["createdAt"] == T0


@pytest.mark.parametrize("stamps", [{}, {"createdAt": "1999-01-01T00:00:00Z"},
                                     {"modifiedAt": "1999-01-01T00:00:00Z"},
                                     {"createdAt": "x", "modifiedAt": "y"}])
def test_create_stamps_alike_with_or_without_client_timestamps(stamps: dict[str, str]) -> None:
    """Instances without system members (all parsed input) take a quicker way to the same
    stamped instance, member order included."""
    entity = create_entity(None, new_entity({TEMP: [prop(20, unitCode="CEL", **stamps)]}), T0)
    assert list(only(entity, TEMP).items()) == [
        ("type", "Property"), ("value", 20), ("unitCode", "CEL"), ("createdAt", T0),
        ("modifiedAt", T0)]


def test_create_of_existing_entity_is_already_exists() -> None:
    with pytest.raises(AlreadyExists):
        create_entity(temperature_entity(), new_entity({}), T1)


@pytest.mark.parametrize("instance", [
    prop(NULL_URI),
    prop(None),
    rel(NULL_URI),
    {"type": "LanguageProperty", "languageMap": {"@none": NULL_URI}},
    {"type": "ListProperty", "valueList": [NULL_URI]},
    {"type": "JsonProperty", "json": NULL_URI},
    prop(1, attrs={SOURCE: [prop(NULL_URI)]}),
])
def test_create_rejects_ngsi_ld_null(instance: Instance) -> None:
    with pytest.raises(BadRequestData, match="NGSI-LD Null"):
        create_entity(None, new_entity({TEMP: [instance]}), T0)


@pytest.mark.parametrize(("instances", "message"), [
    ([{"type": "Property"}], "needs a 'value'"),
    ([{"type": "Relationship", "value": "urn:x"}], "needs a 'object'"),
    ([{"type": "Thing", "value": 1}], "unknown attribute type"),
    ([{"value": 1}], "unknown attribute type"),
    ([prop(1), prop(2)], "same datasetId"),
    ([prop(1, datasetId=DS1), prop(2, datasetId=DS1)], "same datasetId"),
    ([prop(1, datasetId=NULL_URI)], "datasetId cannot be NGSI-LD Null"),
    ([], "has no instance"),
    ([prop(1, attrs=[prop(2)])], "sub-attributes must be an object"),
])
def test_create_rejects_malformed_attributes(instances: list[Instance], message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        create_entity(None, new_entity({TEMP: instances}), T0)


def test_create_needs_an_id() -> None:
    with pytest.raises(BadRequestData, match="no id"):
        create_entity(None, {"type": [STREETLIGHT], "attrs": {}}, T0)


# --------------------------------------------------------------------------- replace entity


def test_replace_entity_replaces_everything_but_keeps_creation_times() -> None:
    current = stored({TEMP: [prop(20)], SPEED: [prop(5)]}, scope=["/Milano"])
    other_type = V + "Lamp"
    result = replace_entity(current, new_entity({TEMP: [prop(21)], NAME: [prop("x")]},
                                                type=[other_type]), T1)
    assert result["type"] == [other_type]
    assert "scope" not in result
    assert set(result["attrs"]) == {TEMP, NAME}
    assert result["createdAt"] == T0 and result["modifiedAt"] == T1
    assert only(result, TEMP)["createdAt"] == T0
    assert only(result, TEMP)["modifiedAt"] == T1
    assert only(result, NAME)["createdAt"] == T1


def test_replace_entity_shares_identical_instances() -> None:
    current = stored({TEMP: [prop(20)], SPEED: [prop(5)]})
    result = replace_entity(current, new_entity({TEMP: [prop(20)], SPEED: [prop(6)]}), T1)
    assert result["attrs"][TEMP][0] is current["attrs"][TEMP][0]
    assert only(result, SPEED)["modifiedAt"] == T1


def test_replace_entity_keeps_type_when_none_given_and_may_change_kind() -> None:
    current = stored({TEMP: [prop(20)]})
    result = replace_entity(current, {"id": EID, "attrs": {TEMP: [rel("urn:x")]}}, T1)
    assert result["type"] == [STREETLIGHT]
    assert plain(only(result, TEMP)) == rel("urn:x")


def test_replace_entity_errors() -> None:
    with pytest.raises(ResourceNotFound):
        replace_entity(None, new_entity({}), T1)
    with pytest.raises(BadRequestData, match="does not match"):
        replace_entity(temperature_entity(), {"id": "urn:other", "attrs": {}}, T1)
    with pytest.raises(BadRequestData, match="NGSI-LD Null"):
        replace_entity(temperature_entity(), new_entity({TEMP: [prop(NULL_URI)]}), T1)


# --------------------------------------------------------------------------- append (5.6.3)


def test_append_adds_and_overwrites_whole_instances() -> None:
    current = temperature_entity()
    result, not_updated = append_attrs(current, {TEMP: [prop(30)], SPEED: [prop(5)]}, T1)
    assert not_updated == []
    assert plain(only(result, TEMP)) == prop(30)   # unitCode and observedAt gone
    assert only(result, TEMP)["createdAt"] == T0
    assert only(result, TEMP)["modifiedAt"] == T1
    assert only(result, SPEED)["createdAt"] == T1
    assert result["createdAt"] == T0 and result["modifiedAt"] == T1


def test_append_matches_instances_by_dataset_id() -> None:
    current = stored({SPEED: [prop(1, datasetId=DS1)]})
    result, _ = append_attrs(current, {SPEED: [prop(2), prop(3, datasetId=DS2)]}, T1)
    assert [i.get("datasetId") for i in result["attrs"][SPEED]] == [None, DS1, DS2]
    assert result["attrs"][SPEED][1] is current["attrs"][SPEED][0]


def test_append_no_overwrite_keeps_and_reports() -> None:
    current = temperature_entity()
    result, not_updated = append_attrs(current, {TEMP: [prop(30)], SPEED: [prop(5)]}, T1,
                                       no_overwrite=True)
    assert result["attrs"][TEMP][0] is current["attrs"][TEMP][0]
    assert SPEED in result["attrs"]
    assert [n.attribute for n in not_updated] == [TEMP]
    assert isinstance(not_updated[0], NotUpdated) and "noOverwrite" in not_updated[0].reason


def test_append_may_change_kind() -> None:
    result, _ = append_attrs(temperature_entity(), {TEMP: [rel("urn:x")]}, T1)
    assert plain(only(result, TEMP)) == rel("urn:x")


def test_append_errors() -> None:
    with pytest.raises(ResourceNotFound):
        append_attrs(None, {TEMP: [prop(1)]}, T1)
    with pytest.raises(BadRequestData, match="NGSI-LD Null"):
        append_attrs(temperature_entity(), {TEMP: [prop(NULL_URI)]}, T1)


# --------------------------------------------------------------------------- update (5.6.2)


def test_update_replaces_the_whole_attribute() -> None:
    """5.5.8 EXAMPLE 2: unitCode, left out of the fragment, is removed."""
    fragment = prop(100, observedAt="2022-03-14T13:00:00.000Z")
    result, not_updated = update_attrs(temperature_entity(), {TEMP: [fragment]}, T1)
    assert not_updated == []
    assert plain(only(result, TEMP)) == fragment
    assert only(result, TEMP)["createdAt"] == T0
    assert only(result, TEMP)["modifiedAt"] == T1


def test_update_reports_what_does_not_exist_and_adds_nothing() -> None:
    current = temperature_entity()
    result, not_updated = update_attrs(
        current, {SPEED: [prop(5)], TEMP: [prop(1, datasetId=DS1)]}, T1)
    assert set(result["attrs"]) == {TEMP}
    assert result["attrs"][TEMP] == current["attrs"][TEMP]
    assert [n.attribute for n in not_updated] == [SPEED, TEMP]
    assert "does not exist" in not_updated[0].reason
    assert DS1 in not_updated[1].reason


def test_update_with_null_deletes_the_instance() -> None:
    """5.5.8 EXAMPLE 3."""
    current = stored({TEMP: [prop(1)], SPEED: [prop(1), prop(2, datasetId=DS1)]})
    result, not_updated = update_attrs(
        current, {TEMP: [prop(NULL_URI)], SPEED: [prop(NULL_URI, datasetId=DS1)]}, T1)
    assert not_updated == []
    assert TEMP not in result["attrs"]
    assert result["attrs"][SPEED] == [current["attrs"][SPEED][0]]


def test_update_with_null_for_a_missing_instance_is_reported() -> None:
    _, not_updated = update_attrs(temperature_entity(), {TEMP: [prop(None, datasetId=DS1)]}, T1)
    assert [n.attribute for n in not_updated] == [TEMP]


def test_update_drops_nulled_sub_attributes() -> None:
    result, _ = update_attrs(temperature_entity(),
                             {TEMP: [prop(3, attrs={SOURCE: [prop(NULL_URI)],
                                                    PRECISION: [prop(0.5)]})]}, T1)
    assert plain(only(result, TEMP)) == prop(3, attrs={PRECISION: [prop(0.5)]})


def test_update_errors() -> None:
    with pytest.raises(ResourceNotFound):
        update_attrs(None, {TEMP: [prop(1)]}, T1)
    with pytest.raises(BadRequestData, match="datasetId cannot be NGSI-LD Null"):
        update_attrs(temperature_entity(), {TEMP: [prop(1, datasetId=NULL_URI)]}, T1)
    with pytest.raises(BadRequestData, match="needs a 'value'"):
        update_attrs(temperature_entity(), {TEMP: [{"type": "Property", "unitCode": "C"}]}, T1)


# --------------------------------------------------------------------------- partial update


def test_patch_attr_overwrites_members_only() -> None:
    """5.5.8 EXAMPLE 1: unitCode, left out of the fragment, stays."""
    result = patch_attr(temperature_entity(), TEMP,
                        {"type": "Property", "value": 100,
                         "observedAt": "2022-03-14T13:00:00.000Z"}, T1)
    assert plain(only(result, TEMP)) == prop(100, unitCode="CEL",
                                             observedAt="2022-03-14T13:00:00.000Z")
    assert only(result, TEMP)["createdAt"] == T0
    assert only(result, TEMP)["modifiedAt"] == T1
    assert result["modifiedAt"] == T1


def test_patch_attr_replaces_a_json_value_whole() -> None:
    current = stored({ADDRESS: [prop({"street": "Via Roma", "city": "Milano"})]})
    result = patch_attr(current, ADDRESS, {"value": {"city": "Torino"}}, T1)
    assert only(result, ADDRESS)["value"] == {"city": "Torino"}


def test_patch_attr_targets_the_dataset_id() -> None:
    current = stored({SPEED: [prop(1), prop(2, datasetId=DS1)]})
    result = patch_attr(current, SPEED, {"value": 3, "datasetId": DS1}, T1)
    assert result["attrs"][SPEED][0] is current["attrs"][SPEED][0]
    assert only(result, SPEED, DS1)["value"] == 3


def test_patch_attr_sub_attributes_replaced_added_and_deleted() -> None:
    current = stored({TEMP: [prop(1, attrs={PRECISION: [prop(0.5, unitCode="C62")],
                                            SOURCE: [prop("meter")]})]})
    result = patch_attr(current, TEMP, {"attrs": {PRECISION: [prop(0.9)],
                                                  SOURCE: [prop(NULL_URI)],
                                                  NAME: [prop("n")]}}, T1)
    assert only(result, TEMP)["attrs"] == {PRECISION: [prop(0.9)], NAME: [prop("n")]}


def test_patch_attr_nulls_optional_members() -> None:
    result = patch_attr(temperature_entity(), TEMP,
                        {"unitCode": NULL_URI, "observedAt": NULL_URI}, T1)
    assert plain(only(result, TEMP)) == prop(25)


def test_patch_attr_without_change_keeps_the_instance() -> None:
    current = temperature_entity()
    result = patch_attr(current, TEMP, {"value": 25}, T1)
    assert result["attrs"][TEMP][0] is current["attrs"][TEMP][0]
    assert changed_instances(current, result) == []


@pytest.mark.parametrize(("fragment", "message"), [
    ({"type": "Relationship", "object": "urn:x"}, "cannot be changed"),
    ({"object": "urn:x"}, "belongs to another attribute type"),
    ({"value": NULL_URI}, "cannot be set to NGSI-LD Null"),
    ({"value": None}, "cannot be set to NGSI-LD Null"),
    ({"datasetId": NULL_URI}, "datasetId cannot be NGSI-LD Null"),
    ({"attrs": {SOURCE: [{"type": "Property"}]}}, "needs a 'value'"),
])
def test_patch_attr_bad_fragments(fragment: Instance, message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        patch_attr(temperature_entity(), TEMP, fragment, T1)


def test_patch_attr_not_found() -> None:
    with pytest.raises(ResourceNotFound):
        patch_attr(None, TEMP, {"value": 1}, T1)
    with pytest.raises(ResourceNotFound, match="no attribute"):
        patch_attr(temperature_entity(), SPEED, {"value": 1}, T1)
    with pytest.raises(ResourceNotFound, match=DS1):
        patch_attr(temperature_entity(), TEMP, {"value": 1, "datasetId": DS1}, T1)


# --------------------------------------------------------------------------- replace attribute


def test_replace_attr_replaces_the_instance_whole_and_may_change_kind() -> None:
    current = stored({TEMP: [prop(1, unitCode="CEL"), prop(2, datasetId=DS1)]})
    result = replace_attr(current, TEMP, [rel("urn:x")], T1)
    assert plain(result["attrs"][TEMP][0]) == rel("urn:x")
    assert result["attrs"][TEMP][0]["createdAt"] == T0
    assert result["attrs"][TEMP][1] is current["attrs"][TEMP][1]


def test_replace_attr_errors() -> None:
    with pytest.raises(ResourceNotFound):
        replace_attr(None, TEMP, [prop(1)], T1)
    with pytest.raises(ResourceNotFound, match="no attribute"):
        replace_attr(temperature_entity(), SPEED, [prop(1)], T1)
    with pytest.raises(ResourceNotFound, match=DS1):
        replace_attr(temperature_entity(), TEMP, [prop(1, datasetId=DS1)], T1)
    with pytest.raises(BadRequestData, match="NGSI-LD Null"):
        replace_attr(temperature_entity(), TEMP, [prop(NULL_URI)], T1)


# --------------------------------------------------------------------------- delete attribute


def test_delete_attr_default_dataset_and_all() -> None:
    current = stored({SPEED: [prop(1), prop(2, datasetId=DS1), prop(3, datasetId=DS2)],
                      TEMP: [prop(4)]})
    by_default = delete_attr(current, SPEED, T1)
    assert [i.get("datasetId") for i in by_default["attrs"][SPEED]] == [DS1, DS2]
    by_dataset = delete_attr(current, SPEED, T1, dataset_id=DS1)
    assert [i.get("datasetId") for i in by_dataset["attrs"][SPEED]] == [None, DS2]
    everything = delete_attr(current, SPEED, T1, delete_all=True, dataset_id=DS1)
    assert set(everything["attrs"]) == {TEMP}
    last = delete_attr(current, TEMP, T1)
    assert TEMP not in last["attrs"] and last["modifiedAt"] == T1


def test_delete_attr_not_found() -> None:
    current = stored({SPEED: [prop(2, datasetId=DS1)]})
    with pytest.raises(ResourceNotFound):
        delete_attr(None, SPEED, T1)
    with pytest.raises(ResourceNotFound, match="no attribute"):
        delete_attr(current, TEMP, T1)
    with pytest.raises(ResourceNotFound, match="default instance"):
        delete_attr(current, SPEED, T1)
    with pytest.raises(ResourceNotFound, match=DS2):
        delete_attr(current, SPEED, T1, dataset_id=DS2)


# --------------------------------------------------------------------------- merge (5.6.17)


def test_merge_updates_only_the_members_given() -> None:
    """The FIWARE merge-patch tutorial's Result 3: unitCode stays."""
    result = merge_entity(temperature_entity(), {"attrs": {TEMP: [
        prop(100, observedAt="2022-03-14T13:00:00.000Z")]}}, T1)
    assert plain(only(result, TEMP)) == prop(100, unitCode="CEL",
                                             observedAt="2022-03-14T13:00:00.000Z")
    assert only(result, TEMP)["createdAt"] == T0
    assert only(result, TEMP)["modifiedAt"] == T1


def test_merge_adds_updates_and_deletes_at_once() -> None:
    current = stored({TEMP: [prop(25)], REF: [rel("urn:g1")], NAME: [prop("n")]})
    result = merge_entity(current, {"attrs": {
        SPEED: [prop(80)], TEMP: [prop(NULL_URI)], REF: [rel(NULL_URI)], NAME: [prop("m")]}}, T1)
    assert set(result["attrs"]) == {NAME, SPEED}
    assert only(result, SPEED)["createdAt"] == T1
    assert only(result, NAME)["value"] == "m"


def test_merge_merges_json_object_values_key_by_key() -> None:
    """Scorpio #431 / 5.5.12 EXAMPLE 2: addressRegion removed, the rest merged."""
    address = {"streetAddress": "Tiger Street 4", "addressRegion": "Metropolis",
               "addressLocality": "Cat City", "postalCode": "42420"}
    current = stored({ADDRESS: [prop(address)]})
    result = merge_entity(current, {"attrs": {ADDRESS: [prop({
        "streetAddress": "Superman Street 4", "addressRegion": NULL_URI})]}}, T1)
    assert only(result, ADDRESS)["value"] == {
        "streetAddress": "Superman Street 4", "addressLocality": "Cat City",
        "postalCode": "42420"}


def test_merge_merges_nested_json_and_json_properties() -> None:
    current = stored({ADDRESS: [{"type": "JsonProperty", "json": {"a": {"b": 1, "c": 2}, "d": 3}}]})
    result = merge_entity(current, {"attrs": {ADDRESS: [
        {"type": "JsonProperty", "json": {"a": {"b": None, "e": [1]}}}]}}, T1)
    assert only(result, ADDRESS)["json"] == {"a": {"c": 2, "e": [1]}, "d": 3}


def test_merge_replaces_non_object_values_whole() -> None:
    current = stored({ADDRESS: [prop({"k": 1})],
                      LOC: [{"type": "GeoProperty",
                             "value": {"type": "Point", "coordinates": [9.1, 45.4]}}]})
    line = {"type": "LineString", "coordinates": [[9.1, 45.4], [9.2, 45.5]]}
    result = merge_entity(current, {"attrs": {ADDRESS: [prop([1, 2])],
                                              LOC: [{"type": "GeoProperty", "value": line}]}}, T1)
    assert only(result, ADDRESS)["value"] == [1, 2]
    assert only(result, LOC)["value"] == line


def test_merge_language_maps() -> None:
    current = stored({NAME: [{"type": "LanguageProperty",
                              "languageMap": {"it": "Roma", "en": "Rome", "el": "Ρώμη"}}]})
    result = merge_entity(current, {"attrs": {NAME: [
        {"type": "LanguageProperty", "languageMap": {"en": "Rome!", "el": NULL_URI}}]}}, T1)
    assert only(result, NAME)["languageMap"] == {"it": "Roma", "en": "Rome!"}
    gone = merge_entity(current, {"attrs": {NAME: [
        {"type": "LanguageProperty", "languageMap": {"@none": NULL_URI}}]}}, T1)
    assert NAME not in gone["attrs"]


def test_merge_sub_attributes_recursively() -> None:
    current = stored({TEMP: [prop(7, attrs={PRECISION: [prop(0.9, unitCode="C62")],
                                            SOURCE: [prop("meter")]})]})
    result = merge_entity(current, {"attrs": {TEMP: [{
        "attrs": {PRECISION: [{"value": 0.95}], SOURCE: [prop(NULL_URI)],
                  NAME: [prop("new", attrs={SOURCE: [prop(NULL_URI)]})]}}]}}, T1)
    assert plain(only(result, TEMP)) == prop(7, attrs={
        PRECISION: [prop(0.95, unitCode="C62")], NAME: [prop("new")]})


def test_merge_nulls_optional_members_and_dataset_instances() -> None:
    current = stored({SPEED: [prop(1, observedAt=T0), prop(2, datasetId=DS1)]})
    result = merge_entity(current, {"attrs": {SPEED: [
        {"observedAt": NULL_URI}, prop(NULL_URI, datasetId=DS1)]}}, T1)
    assert [plain(i) for i in result["attrs"][SPEED]] == [prop(1)]


def test_merge_adds_a_new_instance_minus_its_nulls() -> None:
    current = stored({SPEED: [prop(1)]})
    result = merge_entity(current, {"attrs": {SPEED: [
        {"value": {"a": 1, "b": NULL_URI}, "unitCode": NULL_URI, "datasetId": DS1}]}}, T1)
    assert plain(only(result, SPEED, DS1)) == prop({"a": 1}, datasetId=DS1)
    assert result["attrs"][SPEED][0] is current["attrs"][SPEED][0]


def test_merge_types_are_added_and_scope_replaced_or_removed() -> None:
    current = stored({}, scope=["/Milano"])
    lamp = V + "Lamp"
    result = merge_entity(current, {"type": [lamp, STREETLIGHT], "scope": ["/Torino"]}, T1)
    assert result["type"] == [STREETLIGHT, lamp]
    assert result["scope"] == ["/Torino"]
    assert "scope" not in merge_entity(current, {"scope": NULL_URI}, T1)


def test_merge_with_a_null_for_something_missing_changes_nothing() -> None:
    current = temperature_entity()
    result = merge_entity(current, {"attrs": {SPEED: [prop(NULL_URI)]}}, T1)
    assert result["attrs"] == current["attrs"]


@pytest.mark.parametrize(("patch", "message"), [
    ({"attrs": {TEMP: [rel("urn:x")]}}, "cannot be changed"),
    ({"attrs": {TEMP: [{"languageMap": {"en": "x"}}]}}, "belongs to another attribute type"),
    ({"attrs": {SPEED: [{"unitCode": "C62"}]}}, "needs a 'value'"),
    ({"attrs": {TEMP: [prop(1, datasetId=NULL_URI)]}}, "datasetId cannot be NGSI-LD Null"),
    ({"attrs": {TEMP: [{"type": "Nonsense"}]}}, "unknown attribute type"),
    ({"id": "urn:other"}, "does not match"),
])
def test_merge_bad_patches(patch: Entity, message: str) -> None:
    with pytest.raises(BadRequestData, match=message):
        merge_entity(temperature_entity(), patch, T1)


def test_merge_of_missing_entity() -> None:
    with pytest.raises(ResourceNotFound):
        merge_entity(None, {"attrs": {}}, T1)


# --------------------------------------------------------------------------- batch (5.6.8/9)


def test_upsert_creates_when_missing() -> None:
    new = new_entity({TEMP: [prop(1)]})
    assert upsert_entity(None, new, T0, replace=True) == create_entity(None, new, T0)
    assert upsert_entity(None, new, T0, replace=False) == create_entity(None, new, T0)


def test_upsert_replace_replaces_the_entity() -> None:
    current = stored({TEMP: [prop(1)], SPEED: [prop(2)]})
    lamp = V + "Lamp"
    result = upsert_entity(current, new_entity({TEMP: [prop(3)]}, type=[lamp]), T1,
                           replace=True)
    assert set(result["attrs"]) == {TEMP} and result["type"] == [lamp]
    assert only(result, TEMP)["createdAt"] == T0 and result["createdAt"] == T0


def test_upsert_update_appends_and_adds_types() -> None:
    current = stored({TEMP: [prop(1, unitCode="CEL")], SPEED: [prop(2)]})
    lamp = V + "Lamp"
    result = upsert_entity(current, new_entity({TEMP: [prop(3)]}, type=[lamp]), T1,
                           replace=False)
    assert set(result["attrs"]) == {TEMP, SPEED}
    assert plain(only(result, TEMP)) == prop(3)
    assert result["type"] == [STREETLIGHT, lamp]
    with pytest.raises(BadRequestData, match="NGSI-LD Null"):
        upsert_entity(current, new_entity({TEMP: [prop(NULL_URI)]}), T1, replace=False)


def test_batch_update() -> None:
    current = stored({TEMP: [prop(1)]}, scope=["/Milano"])
    result = batch_update(current, new_entity({TEMP: [prop(2)], SPEED: [prop(3)]},
                                              scope=["/Milano/Centro"]), T1)
    assert only(result, TEMP)["value"] == 2 and only(result, SPEED)["value"] == 3
    assert result["scope"] == ["/Milano", "/Milano/Centro"]
    kept = batch_update(current, new_entity({TEMP: [prop(2)], SPEED: [prop(3)]}), T1,
                        no_overwrite=True)
    assert kept["attrs"][TEMP][0] is current["attrs"][TEMP][0]
    assert SPEED in kept["attrs"]
    with pytest.raises(ResourceNotFound):
        batch_update(None, new_entity({}), T1)
    with pytest.raises(BadRequestData, match="does not match"):
        batch_update(current, {"id": "urn:other", "attrs": {}}, T1)


# --------------------------------------------------------------------------- changed_instances


def test_changed_instances_lists_created_changed_and_deleted() -> None:
    before = stored({TEMP: [prop(1)], SPEED: [prop(1), prop(2, datasetId=DS1)], NAME: [prop("n")]})
    after = merge_entity(before, {"attrs": {
        TEMP: [prop(2)], SPEED: [prop(NULL_URI, datasetId=DS1), prop(3, datasetId=DS2)],
        NAME: [prop(NULL_URI)], REF: [rel("urn:x")]}}, T1)
    changes = changed_instances(before, after)
    summary = [(attr, plain(old), plain(new)) for attr, old, new in changes]
    assert summary == [
        (TEMP, prop(1), prop(2)),
        (SPEED, None, prop(3, datasetId=DS2)),
        (SPEED, prop(2, datasetId=DS1), None),
        (REF, None, rel("urn:x")),
        (NAME, prop("n"), None),
    ]


def test_changed_instances_edge_cases() -> None:
    entity = stored({TEMP: [prop(1)], SPEED: [prop(2, datasetId=DS1)]})
    assert changed_instances(entity, entity) == []
    assert changed_instances(copy.deepcopy(entity), entity) == []
    assert changed_instances(None, None) == []
    created = changed_instances(None, entity)
    assert [(a, o, n) for a, o, n in created] == [
        (TEMP, None, entity["attrs"][TEMP][0]), (SPEED, None, entity["attrs"][SPEED][0])]
    deleted = changed_instances(entity, None)
    assert [(a, o, n) for a, o, n in deleted] == [
        (TEMP, entity["attrs"][TEMP][0], None), (SPEED, entity["attrs"][SPEED][0], None)]


def test_changed_instances_tells_true_from_one() -> None:
    before = stored({TEMP: [prop(1)]})
    after = append_attrs(before, {TEMP: [prop(True)]}, T1)[0]
    assert len(changed_instances(before, after)) == 1
    assert only(after, TEMP)["modifiedAt"] == T1


# --------------------------------------------------------------------------- properties

ATTR_NAMES = [TEMP, SPEED, NAME]
DATASETS = [None, DS1, DS2]

json_leaf = st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from(["x", "y"]))
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=2)
    | st.dictionaries(st.sampled_from(["k", "l", "m"]), inner, max_size=2),
    max_leaves=5,
)
value_members = st.one_of(
    st.builds(lambda v: {"type": "Property", "value": v}, json_values),
    st.builds(lambda t: {"type": "Relationship", "object": t},
              st.sampled_from(["urn:a", "urn:b"])),
    st.builds(lambda m: {"type": "LanguageProperty", "languageMap": m},
              st.dictionaries(st.sampled_from(["it", "en"]), st.sampled_from(["a", "b"]),
                              min_size=1)),
    st.builds(lambda v: {"type": "JsonProperty", "json": v}, json_values),
)
sub_attrs = st.dictionaries(st.sampled_from([SOURCE, PRECISION]),
                            st.builds(lambda v: [{"type": "Property", "value": v}], json_leaf),
                            max_size=2)


@st.composite
def instances(draw: st.DrawFn, dataset_id: str | None) -> Instance:
    instance = dict(draw(value_members))
    if draw(st.booleans()):
        instance["observedAt"] = draw(st.sampled_from([T0, T1]))
    subs = draw(sub_attrs)
    if subs:
        instance["attrs"] = subs
    if dataset_id is not None:
        instance["datasetId"] = dataset_id
    return instance


@st.composite
def attributes(draw: st.DrawFn) -> dict[str, list[Instance]]:
    names = draw(st.lists(st.sampled_from(ATTR_NAMES), unique=True, max_size=3))
    result = {}
    for name in names:
        keys = draw(st.lists(st.sampled_from(DATASETS), min_size=1, max_size=2, unique=True))
        result[name] = [draw(instances(key)) for key in keys]
    return result


@st.composite
def entities(draw: st.DrawFn) -> Entity:
    entity = new_entity(draw(attributes()))
    if draw(st.booleans()):
        entity["scope"] = ["/Milano"]
    return entity


@st.composite
def fragments(draw: st.DrawFn) -> dict[str, list[Instance]]:
    """Update/merge bodies: whole instances, partial ones and NGSI-LD Nulls."""
    attrs = draw(attributes())
    for insts in attrs.values():
        for position, inst in enumerate(insts):
            choice = draw(st.sampled_from(["whole", "null", "partial"]))
            if choice == "null":
                member = next(k for k in ("value", "object", "languageMap", "json") if k in inst)
                insts[position] = {**inst, member: NULL_URI}
            elif choice == "partial":
                insts[position] = {k: v for k, v in inst.items()
                                   if k in ("datasetId", "observedAt", "attrs")}
    return attrs


@st.composite
def operations(draw: st.DrawFn, current: Entity) -> tuple[str, Any]:
    name = draw(st.sampled_from(["append", "append_keep", "update", "merge", "replace",
                                 "upsert_replace", "upsert_update", "batch_update",
                                 "patch_attr", "replace_attr", "delete_attr"]))
    if name in ("append", "append_keep", "update", "merge"):
        return name, draw(fragments())
    if name in ("replace", "upsert_replace", "upsert_update", "batch_update"):
        return name, draw(entities())
    existing = sorted(by_key(current), key=repr)
    if existing and draw(st.integers(0, 4)):   # mostly aim at an instance that exists
        attr, key = draw(st.sampled_from(existing))
    else:
        attr, key = draw(st.sampled_from(ATTR_NAMES)), draw(st.sampled_from(DATASETS))
    if name == "delete_attr":
        return name, (attr, key, draw(st.booleans()))
    fragment = draw(instances(key))
    target = by_key(current).get((attr, key))
    if name == "patch_attr" and target is not None and draw(st.integers(0, 4)):
        # a fragment of the target's own kind: some members, maybe its type
        fragment = {k: v for k, v in fragment.items() if k in ("datasetId", "observedAt", "attrs")}
        if draw(st.booleans()):
            fragment["type"] = target["type"]
        if target["type"] in ("Property", "JsonProperty") and draw(st.booleans()):
            fragment["value" if target["type"] == "Property" else "json"] = draw(json_values)
    return name, (attr, fragment)


def apply(name: str, args: Any, current: Entity, now: str) -> Entity:
    if name in ("append", "append_keep"):
        return append_attrs(current, args, now, no_overwrite=name == "append_keep")[0]
    if name == "update":
        return update_attrs(current, args, now)[0]
    if name == "merge":
        return merge_entity(current, {"attrs": args}, now)
    if name == "replace":
        return replace_entity(current, args, now)
    if name in ("upsert_replace", "upsert_update"):
        return upsert_entity(current, args, now, replace=name == "upsert_replace")
    if name == "batch_update":
        return batch_update(current, args, now)
    if name == "patch_attr":
        return patch_attr(current, args[0], args[1], now)
    if name == "replace_attr":
        return replace_attr(current, args[0], [args[1]], now)
    attr, key, everything = args
    return delete_attr(current, attr, now, dataset_id=key, delete_all=everything)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Entity, str, Any]:
    current = create_entity(None, draw(entities()), T0)
    name, args = draw(operations(current))
    return current, name, args


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON documents (``True`` is not ``1``)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def by_key(entity: Entity) -> dict[tuple[str, str | None], Instance]:
    return {(attr, inst.get("datasetId")): inst
            for attr, insts in entity["attrs"].items() for inst in insts}


@settings(max_examples=200)
@given(scenarios())
def test_rules_are_pure_and_stamp_only_what_changed(scenario: tuple[Entity, str, Any]) -> None:
    current, name, args = scenario
    current_before, args_before = copy.deepcopy(current), copy.deepcopy(args)
    try:
        result = apply(name, args, current, T1)
    except NgsiLdError:
        assert current == current_before and args == args_before
        return
    assert current == current_before and args == args_before
    assert result["createdAt"] == T0 and result["modifiedAt"] == T1
    old, new = by_key(current), by_key(result)
    for key, after in new.items():
        before = old.get(key)
        if before is None:
            assert after["createdAt"] == after["modifiedAt"] == T1
            continue
        assert after["createdAt"] == before["createdAt"]
        if same_json(plain(after), plain(before)):
            assert after is before
            assert after["modifiedAt"] == T0
        else:
            assert after["modifiedAt"] == T1
    for insts in result["attrs"].values():
        assert insts, "an attribute without instances must be dropped"
        keys = [i.get("datasetId") for i in insts]
        assert len(set(keys)) == len(keys)
        assert None not in keys[1:], "the default instance comes first"


@given(scenarios())
def test_changed_instances_replays_the_change(scenario: tuple[Entity, str, Any]) -> None:
    current, name, args = scenario
    try:
        result = apply(name, args, current, T1)
    except NgsiLdError:
        return
    replayed = by_key(current)
    for attr, old, new in changed_instances(current, result):
        assert old is not None or new is not None
        key = (attr, (new if new is not None else old or {}).get("datasetId"))
        if new is None:
            del replayed[key]
        else:
            assert replayed.get(key) is old
            replayed[key] = new
    assert replayed == by_key(result)
    for _attr, old, new in changed_instances(current, result):
        if old is not None and new is not None:
            assert new["modifiedAt"] == T1


@given(entities(), st.one_of(st.none(), entities()))
def test_upsert_replace_then_get_is_the_entity_plus_timestamps(
        new: Entity, other: Entity | None) -> None:
    current = None if other is None else create_entity(None, other, T0)
    result = upsert_entity(current, new, T1, replace=True)
    assert {k: v for k, v in result.items() if k not in SYSTEM and k != "attrs"} == {
        k: v for k, v in new.items() if k != "attrs"}
    # Same instances per datasetId; the stored order puts the default instance first.
    assert {k: plain(i) for k, i in by_key(result).items()} == by_key(new)
    assert list(result["attrs"]) == list(new["attrs"])


@given(entities())
def test_merge_with_an_empty_patch_changes_only_modified_at(new: Entity) -> None:
    current = create_entity(None, new, T0)
    for patch in ({}, {"attrs": {}}):
        result = merge_entity(current, patch, T1)
        assert result["modifiedAt"] == T1
        assert {k: v for k, v in result.items() if k != "modifiedAt"} == {
            k: v for k, v in current.items() if k != "modifiedAt"}
        assert changed_instances(current, result) == []


@given(entities())
def test_changed_instances_of_same_and_of_creation(new: Entity) -> None:
    entity = create_entity(None, new, T0)
    assert changed_instances(entity, entity) == []
    assert changed_instances(copy.deepcopy(entity), entity) == []
    created = changed_instances(None, entity)
    assert [(a, n) for a, o, n in created] == [
        (a, i) for a, insts in entity["attrs"].items() for i in insts]
    assert all(o is None for _, o, _ in created)
