"""The temporal API's pure part: time filters, temporal entities in and out, pagination."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.errors import BadRequestData, NgsiLdError
from sinergia.ngsild.history import deletion_record, temporal_records
from sinergia.ngsild.model import DEFAULT_VOCAB, NGSI_LD, NULL_URI
from sinergia.ngsild.temporal import (
    MAX_LAST_N,
    AggregatedSeries,
    InstanceWindow,
    Page,
    TemporalEntity,
    TimeFilter,
    content_range,
    current_attrs,
    cut_page,
    instance_time,
    instance_window,
    iso_to_ms,
    kept_instances,
    ms_to_iso,
    next_page_filter,
    parse_temporal_attrs,
    parse_temporal_entity,
    parse_temporal_q,
    parse_time_filter,
    render_temporal,
    series_times,
    temporal_format,
)

CTX = ContextResolver(allow_remote=False).core
V = DEFAULT_VOCAB
T1, T2, T3 = "2026-11-21T10:00:00.000Z", "2026-11-21T11:00:00.000Z", "2026-11-21T12:00:00.000Z"
NOW = "2026-11-22T00:00:00.000Z"


# --- times ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ms"), [
    ("1970-01-01T00:00:00.000Z", 0),
    ("1969-12-31T23:59:59.999Z", -1),
    ("2026-11-21T10:00:00.123Z", 1_795_255_200_123),
    ("0001-01-01T00:00:00.000Z", -62_135_596_800_000),
    ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
])
def test_epoch_milliseconds(text: str, ms: int):
    assert iso_to_ms(text) == ms
    assert ms_to_iso(ms) == text


def test_times_beyond_the_calendar_are_clamped():
    assert ms_to_iso(10**15) == "9999-12-31T23:59:59.999Z"
    assert ms_to_iso(-10**15) == "0001-01-01T00:00:00.000Z"


@given(st.integers(-62_135_596_800_000, 253_402_300_799_999))
def test_epoch_round_trip(ms: int):
    assert iso_to_ms(ms_to_iso(ms)) == ms


# --- time filters -----------------------------------------------------------------------------

def test_between_is_half_open():
    tf = parse_time_filter({"timerel": "between", "timeAt": "2026-11-21T10:00:00Z",
                            "endTimeAt": "2026-11-21T12:00:00+01:00"})
    assert (tf.time_at, tf.end_time_at) == (T1, T2)
    assert (tf.start_ms, tf.end_ms) == (iso_to_ms(T1), iso_to_ms(T2))
    assert tf.contains(iso_to_ms(T1))
    assert not tf.contains(iso_to_ms(T2))
    assert tf.to_params() == {"timerel": "between", "timeAt": T1, "endTimeAt": T2}


def test_before_and_after():
    before = parse_time_filter({"timerel": "before", "timeAt": T2})
    after = parse_time_filter({"timerel": "after", "timeAt": T2, "timeproperty": "modifiedAt",
                               "lastN": "5"})
    assert (before.start_ms, before.end_ms) == (None, iso_to_ms(T2))
    assert (after.start_ms, after.end_ms) == (iso_to_ms(T2), None)
    assert not before.contains(iso_to_ms(T2))
    assert after.contains(iso_to_ms(T2))
    assert (after.timeproperty, after.last_n) == ("modifiedAt", 5)
    assert after.to_params() == {"timerel": "after", "timeAt": T2,
                                 "timeproperty": "modifiedAt", "lastN": "5"}


def test_nothing_asked_is_the_whole_history():
    tf = parse_time_filter({})
    assert tf == TimeFilter()
    assert (tf.start_ms, tf.end_ms) == (None, None)
    assert tf.contains(0)


def test_last_n_alone_and_huge_last_n():
    assert parse_time_filter({"lastN": "3"}).last_n == 3
    assert parse_time_filter({"lastN": "9" * 30}).last_n == MAX_LAST_N


@pytest.mark.parametrize(("params", "match"), [
    ({"timerel": "between", "timeAt": T1}, "endTimeAt"),
    ({"timerel": "between", "timeAt": T2, "endTimeAt": T1}, "later"),
    ({"timerel": "between", "timeAt": T1, "endTimeAt": T1}, "later"),
    ({"timerel": "before", "timeAt": T1, "endTimeAt": T2}, "only used with"),
    ({"timerel": "during", "timeAt": T1}, "timerel"),
    ({"timerel": "Before", "timeAt": T1}, "timerel"),
    ({"timerel": "after"}, "needs timeAt"),
    ({"timeAt": T1}, "needs timerel"),
    ({"timerel": "after", "timeAt": "yesterday"}, "timeAt"),
    ({"timerel": "after", "timeAt": "2026-11-21"}, "timeAt"),
    ({"timerel": "after", "timeAt": "2026-13-21T10:00:00Z"}, "timeAt"),
    ({"timerel": "after", "timeAt": "\uff12\uff10\uff12\uff16-11-21T10:00:00Z"}, "timeAt"),
    ({"lastN": "0"}, "lastN"),
    ({"lastN": "-3"}, "lastN"),
    ({"lastN": "+3"}, "lastN"),
    ({"lastN": " 3"}, "lastN"),
    ({"lastN": "3.0"}, "lastN"),
    ({"lastN": "three"}, "lastN"),
    ({"timeproperty": "observationTime"}, "timeproperty"),
])
def test_bad_time_filters(params: dict[str, str], match: str):
    with pytest.raises(BadRequestData, match=match):
        parse_time_filter(params)


def test_a_query_may_be_required_to_say_when():
    with pytest.raises(BadRequestData, match="timerel"):
        parse_time_filter({}, require_timerel=True)
    assert parse_time_filter({"lastN": "1"}, require_timerel=True).last_n == 1


_PARAM_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["before", "after", "between", "observedAt", "deletedAt", "0", "7", T1, T2,
                     "2026-11-21T10:00:00+14:00", "0001-01-01T00:00:00-12:00",
                     "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-01:00"]),
)


@settings(max_examples=400)
@given(st.dictionaries(st.sampled_from(["timerel", "timeAt", "endTimeAt", "timeproperty",
                                        "lastN", "other"]), _PARAM_VALUES))
def test_time_filters_raise_only_ngsi_ld_errors(params: dict[str, str]):
    try:
        tf = parse_time_filter(params)
    except NgsiLdError:
        return
    start, end = tf.start_ms, tf.end_ms
    assert start is None or end is None or start < end


def test_temporal_q_of_a_query_body():
    tf = parse_temporal_q({"timerel": "after", "timeAt": T1, "timeproperty": "createdAt"},
                          {"lastN": "2"})
    assert tf == TimeFilter("after", T1, None, "createdAt", 2)
    assert parse_temporal_q(None) == TimeFilter()
    with pytest.raises(BadRequestData, match="object"):
        parse_temporal_q(["after"])
    with pytest.raises(BadRequestData, match="string"):
        parse_temporal_q({"timeAt": {"x": 1}})


@pytest.mark.parametrize(("params", "expected"), [
    ({}, ("normalized", False)),
    ({"options": "temporalValues"}, ("temporalValues", False)),
    ({"options": "sysAttrs,aggregatedValues"}, ("aggregatedValues", True)),
    ({"format": "concise", "options": "temporalValues"}, ("concise", False)),
    ({"format": "temporalValues"}, ("temporalValues", False)),
])
def test_temporal_formats(params: dict[str, str], expected: tuple[str, bool]):
    assert temporal_format(params) == expected


@pytest.mark.parametrize("params", [
    {"format": "keyValues"}, {"options": "keyValues"}, {"options": "temporalValues,concise"},
])
def test_bad_temporal_formats(params: dict[str, str]):
    with pytest.raises(BadRequestData):
        temporal_format(params)


# --- temporal entities in ---------------------------------------------------------------------

def test_parse_a_temporal_entity():
    te = parse_temporal_entity({
        "id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "scope": "/Milano",
        "@context": "ignored here",
        "temperature": [
            {"type": "Property", "value": 21, "observedAt": "2026-11-21T11:00:00Z"},
            {"value": 20, "observedAt": "2026-11-21T10:00:00Z", "unitCode": "CEL"},
            {"value": 22, "observedAt": "2026-11-21T11:00:00Z",
             "datasetId": "urn:ngsi-ld:Dataset:b"},
        ],
        "door": {"type": "Relationship", "object": "urn:ngsi-ld:Door:1", "observedAt": T1},
    }, CTX)
    assert (te.id, te.types, te.scope) == ("urn:ngsi-ld:Sensor:1", [V + "Sensor"], ["/Milano"])
    temperature = te.attrs[V + "temperature"]
    assert [i["value"] for i in temperature] == [20, 21, 22]  # by observedAt, stable
    assert temperature[0] == {"type": "Property", "value": 20, "observedAt": T1,
                              "unitCode": "CEL"}
    assert te.attrs[V + "door"] == [{"type": "Relationship", "object": "urn:ngsi-ld:Door:1",
                                     "observedAt": T1}]


@pytest.mark.parametrize(("body", "match"), [
    ({"id": "urn:ngsi-ld:S:1", "t": [{"value": 1}]}, "type"),
    ({"id": "urn:ngsi-ld:S:1", "type": "S", "t": [{"value": 1}]}, "observedAt"),
    ({"id": "urn:ngsi-ld:S:1", "type": "S", "t": 5}, "must be an object"),
    ({"id": "urn:ngsi-ld:S:1", "type": "S", "t": [5]}, "must be an object"),
    ({"id": "urn:ngsi-ld:S:1", "type": "S", "t": []}, "no instance"),
    ({"id": "urn:ngsi-ld:S:1", "type": "S", "t": [{"value": NULL_URI, "observedAt": T1}]},
     "Null"),
    ({"id": "urn:ngsi-ld:S:1", "type": "S", "t": [{"value": 1, "observedAt": NULL_URI}]},
     "observedAt"),
    ({"id": "urn:ngsi-ld:S:1", "type": "S", "t": [{"value": 1, "observedAt": "noon"}]},
     "observedAt"),
    ({"id": "not a uri", "type": "S"}, "URI"),
    ({"id": "urn:ngsi-ld:S:1", "type": "S", "t": [{"value": 1, "observedAt": T1}],
      V + "t": [{"value": 2, "observedAt": T1}]}, "expands"),
    ([], "object"),
])
def test_bad_temporal_entities(body: Any, match: str):
    with pytest.raises(BadRequestData, match=match):
        parse_temporal_entity(body, CTX)


def test_parse_temporal_attrs_refuses_entity_members():
    assert parse_temporal_attrs({"t": {"value": 1, "observedAt": T1}}, CTX) == {
        V + "t": [{"type": "Property", "value": 1, "observedAt": T1}]}
    with pytest.raises(BadRequestData, match="not an attribute"):
        parse_temporal_attrs({"id": "urn:x:1"}, CTX)
    assert parse_temporal_entity({"id": "urn:ngsi-ld:S:1"}, CTX, require_type=False).types == []


def test_current_state_of_a_temporal_write():
    attrs = {V + "t": [
        {"type": "Property", "value": 2, "observedAt": T2, "datasetId": "urn:ngsi-ld:D:b"},
        {"type": "Property", "value": 1, "observedAt": T1},
        {"type": "Property", "value": 3, "observedAt": T3},
        {"type": "Property", "value": 4, "observedAt": T3},
    ]}
    assert current_attrs(attrs) == {V + "t": [
        {"type": "Property", "value": 4, "observedAt": T3},
        {"type": "Property", "value": 2, "observedAt": T2, "datasetId": "urn:ngsi-ld:D:b"},
    ]}


# --- temporal entities out --------------------------------------------------------------------

def history() -> TemporalEntity:
    records = temporal_records({
        V + "temperature": [
            {"type": "Property", "value": 20, "observedAt": T1, "unitCode": "CEL",
             "attrs": {V + "accuracy": [{"type": "Property", "value": 0.5}]}},
            {"type": "Property", "value": 21, "observedAt": T2},
            {"type": "Property", "value": 30, "observedAt": T2, "datasetId": "urn:ngsi-ld:D:b"},
        ],
        V + "door": [{"type": "Relationship", "object": "urn:ngsi-ld:Door:1",
                      "observedAt": T1}],
        V + "name": [{"type": "LanguageProperty", "languageMap": {"it": "sala"},
                      "observedAt": T1}],
        V + "category": [{"type": "VocabProperty", "vocab": NGSI_LD + "Property",
                          "observedAt": T1}],
        V + "doors": [{"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Door:1"],
                       "observedAt": T1}],
    }, NOW)
    attrs: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        attrs.setdefault(record.attr, []).append(record.instance)
    attrs[V + "door"].append(deletion_record(V + "door", attrs[V + "door"][0], T3).instance)
    return TemporalEntity(id="urn:ngsi-ld:Room:1", types=[V + "Room"], attrs=attrs,
                          created_at=NOW, modified_at=NOW)


def test_normalized_history():
    te = history()
    out = render_temporal(te, CTX, attrs=frozenset({V + "temperature", V + "door"}))
    assert out["id"] == "urn:ngsi-ld:Room:1"
    assert out["type"] == "Room"
    assert "createdAt" not in out
    temperature = out["temperature"]
    ids = [i["instanceId"] for i in te.attrs[V + "temperature"]]
    assert temperature == [
        {"type": "Property", "value": 20, "observedAt": T1, "unitCode": "CEL",
         "instanceId": ids[0], "accuracy": {"type": "Property", "value": 0.5}},
        {"type": "Property", "value": 21, "observedAt": T2, "instanceId": ids[1]},
        {"type": "Property", "value": 30, "observedAt": T2, "datasetId": "urn:ngsi-ld:D:b",
         "instanceId": ids[2]},
    ]
    door = out["door"]
    assert door[1] == {"type": "Relationship", "object": NULL_URI,
                       "instanceId": te.attrs[V + "door"][1]["instanceId"], "deletedAt": T3}
    assert set(out) == {"id", "type", "temperature", "door"}


def test_one_instance_is_still_an_array_and_sys_attrs_show():
    out = render_temporal(history(), CTX, attrs=frozenset({V + "name"}), sys_attrs=True)
    (name,) = out["name"]
    assert name["languageMap"] == {"it": "sala"}
    assert (name["createdAt"], name["modifiedAt"]) == (NOW, NOW)
    assert (out["createdAt"], out["modifiedAt"]) == (NOW, NOW)


def test_concise_history_and_dataset_selection():
    out = render_temporal(history(), CTX, format="concise",
                          attrs=frozenset({V + "temperature"}),
                          dataset_ids=frozenset({"urn:ngsi-ld:D:b"}))
    (only,) = out["temperature"]
    assert only["value"] == 30
    assert "type" not in only
    assert only["datasetId"] == "urn:ngsi-ld:D:b"


def test_temporal_values():
    out = render_temporal(history(), CTX, format="temporalValues")
    assert out["temperature"] == [
        {"type": "Property", "values": [[20, T1], [21, T2]]},
        {"type": "Property", "datasetId": "urn:ngsi-ld:D:b", "values": [[30, T2]]},
    ]
    assert out["door"] == {"type": "Relationship",
                           "objects": [["urn:ngsi-ld:Door:1", T1], [NULL_URI, T3]]}
    assert out["name"] == {"type": "LanguageProperty", "languageMaps": [[{"it": "sala"}, T1]]}
    assert out["category"] == {"type": "VocabProperty", "vocabs": [["Property", T1]]}
    assert out["doors"] == {"type": "ListRelationship",
                            "objectLists": [[[{"object": "urn:ngsi-ld:Door:1"}], T1]]}


def test_temporal_values_carry_the_asked_time():
    te = history()
    out = render_temporal(te, CTX, format="temporalValues", timeproperty="deletedAt",
                          attrs=frozenset({V + "door", V + "temperature"}))
    assert out == {"id": "urn:ngsi-ld:Room:1", "type": "Room",
                   "door": {"type": "Relationship", "objects": [[NULL_URI, T3]]}}
    out = render_temporal(te, CTX, format="temporalValues", timeproperty="createdAt",
                          attrs=frozenset({V + "name"}))
    assert out["name"]["languageMaps"] == [[{"it": "sala"}, NOW]]


def test_instance_time_falls_back_to_modified_at_for_observed_at():
    assert instance_time({"modifiedAt": T2}, "observedAt") == T2
    assert instance_time({"modifiedAt": T2, "observedAt": T1}, "observedAt") == T1
    assert instance_time({"modifiedAt": T2}, "createdAt") is None


def test_aggregated_values():
    te = TemporalEntity(id="urn:ngsi-ld:Room:1", types=[V + "Room"], attrs={})
    bucket = [T1, T2]
    aggregated = {
        V + "temperature": [
            AggregatedSeries("Property", {"avg": [[20.5, *bucket]], "max": [[21, *bucket]]}),
            AggregatedSeries("Property", {"avg": [[30, *bucket]], "max": []},
                             dataset_id="urn:ngsi-ld:D:b"),
        ],
        V + "door": [AggregatedSeries("Relationship", {"totalCount": [[2, *bucket]]})],
    }
    out = render_temporal(te, CTX, format="aggregatedValues", aggregated=aggregated,
                          attrs=frozenset({V + "temperature"}))
    assert out == {"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": [
        {"type": "Property", "avg": [[20.5, *bucket]], "max": [[21, *bucket]]},
        {"type": "Property", "datasetId": "urn:ngsi-ld:D:b", "avg": [[30, *bucket]],
         "max": []},
    ]}
    out = render_temporal(te, CTX, format="aggregatedValues", aggregated=aggregated,
                          dataset_ids=frozenset({"@none"}))
    assert out["door"] == {"type": "Relationship", "totalCount": [[2, *bucket]]}
    assert out["temperature"] == {"type": "Property", "avg": [[20.5, *bucket]],
                                  "max": [[21, *bucket]]}


def test_an_attribute_named_like_an_entity_member_keeps_its_iri():
    te = TemporalEntity(id="urn:ngsi-ld:X:1", types=[V + "X"], attrs={"@id": [
        {"type": "Property", "value": 1, "observedAt": T1}]})
    out = render_temporal(te, CTX, format="temporalValues")
    assert out["@id"] == {"type": "Property", "values": [[1, T1]]}
    assert out["id"] == "urn:ngsi-ld:X:1"


# --- pagination -------------------------------------------------------------------------------

def test_windows():
    assert instance_window(TimeFilter(), 100) == InstanceWindow(False, 100, 101)
    assert instance_window(TimeFilter(last_n=10), 100) == InstanceWindow(True, 10, 10)
    assert instance_window(TimeFilter(last_n=1000), 100) == InstanceWindow(True, 100, 101)
    with pytest.raises(ValueError, match="positive"):
        instance_window(TimeFilter(), 0)


def test_a_short_history_is_one_whole_page():
    window = instance_window(TimeFilter(), 3)
    page = cut_page([[1, 2], [5, 6, 7]], TimeFilter(), window)
    assert page == Page(keep=(2, 3))
    assert content_range(page, TimeFilter()) is None
    assert next_page_filter(page, TimeFilter(), window) is None
    lastn = TimeFilter(last_n=2)
    assert cut_page([[9, 8], [7]], lastn, instance_window(lastn, 3)) == Page(keep=(2, 1))


def test_forward_pages_cut_every_attribute_at_the_same_instant():
    tf = parse_time_filter({"timerel": "after", "timeAt": ms_to_iso(0)})
    window = instance_window(tf, 3)
    page = cut_page([[10, 20, 30, 40], [5, 25, 35]], tf, window)
    assert page == Page(keep=(3, 3), partial=True, start_ms=0, end_ms=40)
    assert content_range(page, tf) == (
        "date-time 1970-01-01T00:00:00.000Z-1970-01-01T00:00:00.040Z/*")
    following = next_page_filter(page, tf, window)
    assert following == TimeFilter("after", ms_to_iso(40))


def test_backward_pages_for_a_large_last_n():
    tf = TimeFilter(last_n=500)
    window = instance_window(tf, 2)
    page = cut_page([[50, 40, 30], [45]], tf, window)  # newest first
    assert page == Page(keep=(2, 1), partial=True, start_ms=51, end_ms=31)
    assert content_range(page, tf) == (
        "date-time 1970-01-01T00:00:00.051Z-1970-01-01T00:00:00.031Z/500")
    assert next_page_filter(page, tf, window) == TimeFilter("before", ms_to_iso(31),
                                                            last_n=500)
    assert kept_instances(["i50", "i40", "i30"], 2, window) == ["i40", "i50"]


def test_a_crowded_instant_is_shown_whole():
    tf = TimeFilter()
    window = instance_window(tf, 2)
    page = cut_page([[7, 7, 7, 7, 9], [8]], tf, window)
    assert page == Page(keep=(4, 0), partial=True, start_ms=7, end_ms=8)
    back = TimeFilter(last_n=100)
    window = instance_window(back, 2)
    page = cut_page([[7, 7, 7, 5], [3]], back, window)
    assert page == Page(keep=(3, 0), partial=True, start_ms=8, end_ms=7)


def test_next_page_keeps_the_far_bound():
    between = TimeFilter("between", ms_to_iso(0), ms_to_iso(100))
    window = instance_window(between, 1)
    page = cut_page([[10, 20]], between, window)
    assert next_page_filter(page, between, window) == TimeFilter(
        "between", ms_to_iso(20), ms_to_iso(100))
    before = TimeFilter("before", ms_to_iso(100))
    page = cut_page([[10, 20]], before, window)
    assert next_page_filter(page, before, window) == TimeFilter(
        "between", ms_to_iso(20), ms_to_iso(100))
    back = TimeFilter("between", ms_to_iso(0), ms_to_iso(100), last_n=50)
    window = instance_window(back, 1)
    page = cut_page([[20, 10]], back, window)  # shows 20, leaves 10: the next page ends at 11
    assert next_page_filter(page, back, window) == TimeFilter(
        "between", ms_to_iso(0), ms_to_iso(11), last_n=50)


def test_series_times_use_the_time_property():
    instances = [{"observedAt": T1, "modifiedAt": T2}, {"modifiedAt": T3}]
    assert series_times(instances, "observedAt") == [iso_to_ms(T1), iso_to_ms(T3)]
    assert series_times(instances, "modifiedAt") == [iso_to_ms(T2), iso_to_ms(T3)]


def _read(history: list[list[int]], tf: TimeFilter, window: InstanceWindow) -> list[list[int]]:
    """A model storage: per series, the instances in the filter in window order, ``fetch`` of
    them plus the ties of the last one."""
    out = []
    for times in history:
        inside = sorted((t for t in times if tf.contains(t)), reverse=window.newest_first)
        taken = inside[:window.fetch]
        if taken and len(inside) > window.fetch:
            last = taken[-1]
            taken += [t for t in inside[window.fetch:] if t == last]
        out.append(taken)
    return out


@settings(max_examples=300, deadline=None)
@given(
    history=st.lists(st.lists(st.integers(0, 60), max_size=25), min_size=1, max_size=4),
    limit=st.integers(1, 6),
    backwards=st.booleans(),
    bounds=st.sampled_from([(None, None), ("after", 10), ("before", 50), ("between", 5)]),
)
def test_paging_through_a_history_shows_each_instance_once(
        history: list[list[int]], limit: int, backwards: bool, bounds: tuple[str | None, int]):
    timerel, at = bounds
    tf = TimeFilter(last_n=MAX_LAST_N if backwards else None)
    if timerel == "between":
        tf = TimeFilter("between", ms_to_iso(at), ms_to_iso(55), last_n=tf.last_n)
    elif timerel is not None:
        tf = TimeFilter(timerel, ms_to_iso(at), last_n=tf.last_n)  # type: ignore[arg-type]
    wanted = [sorted(t for t in times if tf.contains(t)) for times in history]
    window = instance_window(tf, limit)
    seen: list[list[int]] = [[] for _ in history]
    current: TimeFilter | None = tf
    for _ in range(200):
        if current is None:
            break
        read = _read(history, current, window)
        page = cut_page(read, current, window)
        assert any(page.keep) or not page.partial
        for index, (times, keep) in enumerate(zip(read, page.keep, strict=True)):
            seen[index].extend(kept_instances(times, keep, window))
        if page.partial:
            assert content_range(page, current) is not None
        current = next_page_filter(page, current, window)
    else:
        pytest.fail("paging did not end")
    assert [sorted(times) for times in seen] == wanted


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from([T1, "urn:ngsi-ld:X:1", "Property", "Relationship", NULL_URI]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "value", "object", "observedAt", "datasetId", "unitCode",
                         "languageMap", "t", "sub"]), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "type", "scope", "t", "u", "@context"]), _JSON,
                       max_size=5))
def test_temporal_entity_parsing_raises_only_ngsi_ld_errors(body: dict[str, Any]):
    body.setdefault("id", "urn:ngsi-ld:S:1")
    try:
        te = parse_temporal_entity(body, CTX, require_type=False)
    except NgsiLdError:
        return
    for instances in te.attrs.values():
        times = [instance["observedAt"] for instance in instances]
        assert times == sorted(times)
        assert all(iso_to_ms(t) is not None for t in times)
