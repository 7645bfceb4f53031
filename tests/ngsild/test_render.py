"""Output: internal entities → normalized, concise, keyValues and GeoJSON."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.entity import ATTRIBUTE_MARKERS, parse_entity
from sinergia.ngsild.model import DEFAULT_VOCAB, LOCATION, NGSI_LD, NULL_URI
from sinergia.ngsild.render import (
    RenderOptions,
    render_entity,
    render_feature,
    render_feature_collection,
)

EX = "https://example.org/"
V = DEFAULT_VOCAB


class FakeContext:
    """A dict-based stand-in for sinergia.ngsild.context.Context (see test_entity.py)."""

    def __init__(self, terms: dict[str, str] | None = None,
                 prefixes: dict[str, str] | None = None) -> None:
        core = {name: NGSI_LD + name
                for name in ("location", "observationSpace", "operationSpace")}
        self.terms = {**core, **(terms or {})}
        self.prefixes = prefixes or {}
        self.reverse = {iri: term for term, iri in self.terms.items()}

    def expand(self, term: str) -> str:
        if term in self.terms:
            return self.terms[term]
        prefix, colon, suffix = term.partition(":")
        if colon:
            if prefix in self.prefixes and not suffix.startswith("//"):
                return self.prefixes[prefix] + suffix
            return term
        return V + term

    def compact(self, iri: str) -> str:
        if iri in self.reverse:
            return self.reverse[iri]
        for prefix, base in self.prefixes.items():
            if iri.startswith(base) and len(iri) > len(base):
                return f"{prefix}:{iri[len(base):]}"
        rest = iri[len(V):]
        if iri.startswith(V) and rest and ":" not in rest and rest not in self.terms:
            return rest
        return iri


CTX: Any = FakeContext({"temperature": EX + "temperature", "Room": EX + "Room"}, {"ex": EX})
NORMALIZED = RenderOptions()
CONCISE = RenderOptions(format="concise")
KEY_VALUES = RenderOptions(format="keyValues")
POINT = {"type": "Point", "coordinates": [9.19, 45.46]}
T0 = "2026-11-21T10:00:00.000Z"
T1 = "2026-11-21T11:00:00.000Z"


def strip_system_members(value: Any) -> Any:
    """The entity without what the broker stamps (createdAt, modifiedAt, instanceId)."""
    out = {k: v for k, v in value.items() if k not in ("createdAt", "modifiedAt", "instanceId")}
    if "attrs" in out:
        out["attrs"] = {iri: [strip_system_members(i) for i in instances]
                        for iri, instances in out["attrs"].items()}
    return out


def streetlight() -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:Streetlight:1", "type": [EX + "Room"], "scope": ["/Milano"],
        "createdAt": T0, "modifiedAt": T1,
        "attrs": {
            EX + "temperature": [
                {"type": "Property", "value": 21.5, "unitCode": "CEL", "observedAt": T1,
                 "createdAt": T0, "modifiedAt": T1,
                 "attrs": {V + "accuracy": [{"type": "Property", "value": 0.1,
                                             "createdAt": T0, "modifiedAt": T1}]}},
                {"type": "Property", "value": 22, "datasetId": "urn:ds:2",
                 "createdAt": T0, "modifiedAt": T1}],
            V + "powerState": [{"type": "Property", "value": "on",
                                "createdAt": T0, "modifiedAt": T1}],
            V + "refGroup": [{"type": "Relationship", "object": "urn:ngsi-ld:G:1",
                              "objectType": [EX + "Room"], "createdAt": T0,
                              "modifiedAt": T1}],
            LOCATION: [{"type": "GeoProperty", "value": POINT, "createdAt": T0,
                        "modifiedAt": T1}],
            V + "name": [{"type": "LanguageProperty",
                          "languageMap": {"it": "Lampione", "en": "Streetlight",
                                          "@none": "SL-1"}}],
            V + "category": [{"type": "VocabProperty", "vocab": [EX + "Room", V + "lamp"]}],
            V + "config": [{"type": "JsonProperty", "json": {"type": "Property", "a": [1]}}],
            V + "history": [{"type": "ListProperty", "valueList": [1, 2, 3]}],
            V + "route": [{"type": "ListRelationship", "objectList": ["urn:a:1", "urn:a:2"]}],
        },
    }


# --- normalized -------------------------------------------------------------------------------

def test_normalized():
    assert render_entity(streetlight(), CTX, NORMALIZED) == {
        "id": "urn:ngsi-ld:Streetlight:1", "type": "Room", "scope": "/Milano",
        "temperature": [
            {"type": "Property", "value": 21.5, "unitCode": "CEL", "observedAt": T1,
             "accuracy": {"type": "Property", "value": 0.1}},
            {"type": "Property", "value": 22, "datasetId": "urn:ds:2"}],
        "powerState": {"type": "Property", "value": "on"},
        "refGroup": {"type": "Relationship", "object": "urn:ngsi-ld:G:1", "objectType": "Room"},
        "location": {"type": "GeoProperty", "value": POINT},
        "name": {"type": "LanguageProperty",
                 "languageMap": {"it": "Lampione", "en": "Streetlight", "@none": "SL-1"}},
        "category": {"type": "VocabProperty", "vocab": ["Room", "lamp"]},
        "config": {"type": "JsonProperty", "json": {"type": "Property", "a": [1]}},
        "history": {"type": "ListProperty", "valueList": [1, 2, 3]},
        "route": {"type": "ListRelationship",
                  "objectList": [{"object": "urn:a:1"}, {"object": "urn:a:2"}]},
    }


def test_sys_attrs_on_entity_and_instances():
    out = render_entity(streetlight(), CTX, RenderOptions(sys_attrs=True))
    assert (out["createdAt"], out["modifiedAt"]) == (T0, T1)
    assert out["temperature"][0]["createdAt"] == T0
    assert out["temperature"][0]["accuracy"]["modifiedAt"] == T1
    assert out["location"]["createdAt"] == T0
    plain = render_entity(streetlight(), CTX, NORMALIZED)
    assert "createdAt" not in plain and "createdAt" not in plain["location"]


def test_several_types_and_scopes_are_lists():
    entity = {"id": "urn:x:1", "type": [EX + "Room", V + "Hall"], "scope": ["/a", "/b"],
              "attrs": {}}
    assert render_entity(entity, CTX, NORMALIZED) == {
        "id": "urn:x:1", "type": ["Room", "Hall"], "scope": ["/a", "/b"]}


def test_reserved_names_keep_their_iri():
    entity = {"id": "urn:x:1", "type": [V + "T"], "attrs": {
        V + "type": [{"type": "Property", "value": 1,
                      "attrs": {V + "value": [{"type": "Property", "value": 2}],
                                V + "observedAt": [{"type": "Property", "value": 3}]}}],
        V + "id": [{"type": "Property", "value": 4}]}}
    out = render_entity(entity, CTX, NORMALIZED)
    assert out["type"] == "T" and out["id"] == "urn:x:1"
    assert out[V + "type"] == {"type": "Property", "value": 1,
                               V + "value": {"type": "Property", "value": 2},
                               V + "observedAt": {"type": "Property", "value": 3}}
    assert out[V + "id"] == {"type": "Property", "value": 4}


def test_render_does_not_touch_the_entity():
    entity = streetlight()
    before = copy.deepcopy(entity)
    for fmt in ("normalized", "concise", "keyValues"):
        render_entity(entity, CTX, RenderOptions(format=fmt, sys_attrs=True, lang="it"))
    assert entity == before


# --- concise ----------------------------------------------------------------------------------

def test_concise():
    assert render_entity(streetlight(), CTX, CONCISE) == {
        "id": "urn:ngsi-ld:Streetlight:1", "type": "Room", "scope": "/Milano",
        "temperature": [
            {"value": 21.5, "unitCode": "CEL", "observedAt": T1, "accuracy": 0.1},
            {"value": 22, "datasetId": "urn:ds:2"}],
        "powerState": "on",
        "refGroup": {"object": "urn:ngsi-ld:G:1", "objectType": "Room"},
        "location": POINT,
        "name": {"languageMap": {"it": "Lampione", "en": "Streetlight", "@none": "SL-1"}},
        "category": {"vocab": ["Room", "lamp"]},
        "config": {"json": {"type": "Property", "a": [1]}},
        "history": {"valueList": [1, 2, 3]},
        "route": {"objectList": [{"object": "urn:a:1"}, {"object": "urn:a:2"}]},
    }


@pytest.mark.parametrize(("instance", "concise"), [
    ({"type": "Property", "value": POINT}, {"type": "Property", "value": POINT}),
    ({"type": "Property", "value": {"value": 1}}, {"value": {"value": 1}}),
    ({"type": "Property", "value": {"street": "x"}}, {"street": "x"}),
    ({"type": "Property", "value": [{"value": 1}]}, {"value": [{"value": 1}]}),
    ({"type": "Property", "value": [1, {"value": 1}]}, [1, {"value": 1}]),
    ({"type": "Property", "value": []}, []),
    ({"type": "GeoProperty", "value": POINT, "observedAt": T0},
     {"value": POINT, "observedAt": T0}),
])
def test_concise_keeps_type_where_it_is_not_inferable(instance, concise):
    entity = {"id": "urn:x:1", "type": [V + "T"], "attrs": {V + "a": [instance]}}
    assert render_entity(entity, CTX, CONCISE)["a"] == concise
    assert parse_entity(render_entity(entity, CTX, CONCISE), CTX) == entity


# --- keyValues --------------------------------------------------------------------------------

def test_key_values():
    assert render_entity(streetlight(), CTX, KEY_VALUES) == {
        "id": "urn:ngsi-ld:Streetlight:1", "type": "Room", "scope": "/Milano",
        "temperature": 21.5, "powerState": "on", "refGroup": "urn:ngsi-ld:G:1",
        "location": POINT,
        "name": {"it": "Lampione", "en": "Streetlight", "@none": "SL-1"},
        "category": ["Room", "lamp"], "config": {"type": "Property", "a": [1]},
        "history": [1, 2, 3], "route": ["urn:a:1", "urn:a:2"],
    }


def test_key_values_multi_instance_prefers_default_else_first():
    entity = {"id": "urn:x:1", "type": [V + "T"], "attrs": {V + "a": [
        {"type": "Property", "value": 1, "datasetId": "urn:ds:1"},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:2"}]}}
    assert render_entity(entity, CTX, KEY_VALUES)["a"] == 1
    options = RenderOptions(format="keyValues", dataset_ids=frozenset({"urn:ds:2"}))
    assert render_entity(entity, CTX, options)["a"] == 2


# --- lang -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "tag", "text"), [
    ("it", "it", "Lampione"), ("EN", "en", "Streetlight"), ("fr,en", "en", "Streetlight"),
    ("fr;q=0.9,it;q=0.5", "it", "Lampione"), ("en-GB", "en", "Streetlight"),
    ("fr", "@none", "SL-1"), ("fr,*", "@none", "SL-1"),
])
def test_lang(lang, tag, text):
    entity = streetlight()
    out = render_entity(entity, CTX, RenderOptions(lang=lang))
    assert out["name"] == {"type": "Property", "value": text, "lang": tag}
    concise = render_entity(entity, CTX, RenderOptions(format="concise", lang=lang))
    assert concise["name"] == {"value": text, "lang": tag}
    assert render_entity(entity, CTX, RenderOptions(format="keyValues", lang=lang))["name"] \
        == text


def test_lang_falls_back_to_first_and_star_keeps_map():
    entity = {"id": "urn:x:1", "type": [V + "T"], "attrs": {V + "n": [
        {"type": "LanguageProperty", "languageMap": {"de": ["a", "b"], "it": "c"},
         "observedAt": T0}]}}
    assert render_entity(entity, CTX, RenderOptions(lang="fr"))["n"] == {
        "type": "Property", "value": ["a", "b"], "lang": "de", "observedAt": T0}
    assert render_entity(entity, CTX, RenderOptions(lang="*"))["n"]["languageMap"] == {
        "de": ["a", "b"], "it": "c"}
    assert render_entity(entity, CTX, RenderOptions(format="keyValues", lang="*"))["n"] == {
        "de": ["a", "b"], "it": "c"}


# --- projections ------------------------------------------------------------------------------

def test_attrs_pick_omit():
    entity = streetlight()
    out = render_entity(entity, CTX, RenderOptions(attrs=frozenset({V + "powerState"})))
    assert set(out) == {"id", "type", "scope", "powerState"}
    out = render_entity(entity, CTX, RenderOptions(pick=frozenset({"id", V + "powerState"})))
    assert out == {"id": "urn:ngsi-ld:Streetlight:1", "powerState": {"type": "Property",
                                                                      "value": "on"}}
    out = render_entity(entity, CTX, RenderOptions(
        format="keyValues", omit=frozenset({"type", "scope", LOCATION, EX + "temperature"})))
    assert set(out) == {"id", "powerState", "refGroup", "name", "category", "config",
                        "history", "route"}


def test_dataset_ids():
    entity = streetlight()
    out = render_entity(entity, CTX, RenderOptions(dataset_ids=frozenset({"urn:ds:2"})))
    assert set(out) == {"id", "type", "scope", "temperature"}
    assert out["temperature"] == {"type": "Property", "value": 22, "datasetId": "urn:ds:2"}
    out = render_entity(entity, CTX, RenderOptions(dataset_ids=frozenset({"@none"})))
    assert out["temperature"]["value"] == 21.5 and out["powerState"]["value"] == "on"


def test_dataset_ids_select_attributes_not_sub_attributes():
    entity = {"id": "urn:x:1", "type": [V + "T"], "attrs": {V + "a": [
        {"type": "Property", "value": 1, "datasetId": "urn:ds:1",
         "attrs": {V + "s": [{"type": "Property", "value": 2}]}}]}}
    out = render_entity(entity, CTX, RenderOptions(dataset_ids=frozenset({"urn:ds:1"})))
    assert out["a"]["s"] == {"type": "Property", "value": 2}


def test_round_trip_with_the_real_core_context():
    core = ContextResolver(allow_remote=False).core
    body = {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
            "powerState": {"type": "Property", "value": "on", "observedAt": T1},
            "refGroup": {"type": "Relationship", "object": "urn:ngsi-ld:G:1"},
            "location": {"type": "GeoProperty", "value": POINT},
            "name": {"type": "LanguageProperty", "languageMap": {"it": "Lampione"}},
            "unitCode": {"type": "Property", "value": "x", "datasetId": "urn:ds:1"}}
    entity = parse_entity(body, core)
    assert entity["attrs"][LOCATION] == [{"type": "GeoProperty", "value": POINT}]
    assert render_entity(entity, core, NORMALIZED) == body
    assert parse_entity(render_entity(entity, core, CONCISE), core) == entity


# --- GeoJSON ----------------------------------------------------------------------------------

def test_feature():
    feature = render_feature(streetlight(), CTX, RenderOptions(
        format="keyValues", attrs=frozenset({V + "powerState"})))
    assert feature == {"id": "urn:ngsi-ld:Streetlight:1", "type": "Feature", "geometry": POINT,
                       "properties": {"type": "Room", "scope": "/Milano", "powerState": "on"}}


def test_feature_geometry_property_and_missing_geometry():
    entity = streetlight()
    entity["attrs"][V + "area"] = [{"type": "GeoProperty", "value": {
        "type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]}}]
    feature = render_feature(entity, CTX, RenderOptions(geometry_property=V + "area"))
    assert feature["geometry"]["type"] == "Polygon"
    assert feature["properties"]["location"] == {"type": "GeoProperty", "value": POINT}
    for missing in (V + "nothing", V + "powerState"):
        assert render_feature(entity, CTX,
                              RenderOptions(geometry_property=missing))["geometry"] is None
    collection = render_feature_collection([entity, streetlight()], CTX, CONCISE)
    assert collection["type"] == "FeatureCollection"
    assert [f["geometry"] for f in collection["features"]] == [POINT, POINT]
    assert collection["features"][1] == render_feature(streetlight(), CTX, CONCISE)


# --- round trips (hypothesis) -----------------------------------------------------------------

ATTR_IRIS = [EX + "temperature", EX + "humidity", V + "name", V + "type", V + "value",
             V + "id", V + "observedAt", V + "createdAt", V + "attrs", V + "lang",
             "https://other.org/p", "urn:x:attr"]
TYPE_IRIS = [EX + "Room", V + "Building", EX + "Office", "https://other.org/X"]
URIS = st.sampled_from(["urn:ngsi-ld:A:1", "urn:ngsi-ld:B:2", "http://x.org/e/3", NULL_URI])
TIMES = st.sampled_from([T0, T1, "1999-12-31T23:59:59.999Z"])


def json_values(plain: bool) -> st.SearchStrategy[Any]:
    """JSON values; unless ``plain``, objects use keys that mimic attributes."""
    keys = st.text(max_size=6)
    if plain:
        keys = keys.filter(lambda k: k not in ATTRIBUTE_MARKERS)
    else:
        keys = keys | st.sampled_from([*sorted(ATTRIBUTE_MARKERS), "coordinates", "@context"])
    scalars = (st.booleans() | st.integers() | st.text(max_size=6)
               | st.floats(allow_nan=False, allow_infinity=False) | st.just(NULL_URI))
    tricky = st.sampled_from([{"value": 1}, [{"value": 1}], POINT, {"type": "Point"}, [],
                              {"object": "urn:x:1"}, [{"datasetId": "urn:x:1"}, {}],
                              {"type": "GeometryCollection", "geometries": []}])
    nested = st.recursive(scalars | st.none(), lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(keys, inner, max_size=3), max_leaves=6)
    containers = st.lists(nested, max_size=3) | st.dictionaries(keys, nested, max_size=3)
    values = scalars | containers
    return values if plain else tricky | values


def json_documents(plain: bool) -> st.SearchStrategy[Any]:
    """What a JsonProperty holds: a JSON object or array (ETSI GS CIM 009 4.5.24)."""
    return json_values(plain).filter(lambda v: isinstance(v, dict | list))


LON = st.floats(-180, 180, allow_nan=False)
LAT = st.floats(-90, 90, allow_nan=False)
GEOMETRIES = st.tuples(LON, LAT).map(lambda c: {"type": "Point", "coordinates": list(c)}) \
    | st.sampled_from([
        {"type": "LineString", "coordinates": [[9.1, 45.4], [9.2, 45.5]]},
        {"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]}])


def names(pool: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True)


def values_of(kind: str, plain: bool) -> st.SearchStrategy[Any]:
    if kind == "JsonProperty":
        return json_documents(plain)
    if kind == "Property":
        return json_values(plain)
    if kind == "Relationship":
        return URIS | st.lists(URIS, min_size=1, max_size=2)
    if kind == "GeoProperty":
        return GEOMETRIES
    if kind == "LanguageProperty":
        text = st.text(max_size=5)
        return st.dictionaries(st.sampled_from(["it", "en", "de-CH", "@none"]),
                               text | st.lists(text, min_size=1, max_size=2),
                               min_size=1, max_size=3)
    if kind == "VocabProperty":
        pool = [EX + "Room", V + "Stereo", "https://other.org/v"]
        return st.sampled_from(pool) | names(pool)
    if kind == "ListProperty":
        return st.lists(json_values(plain) | st.none(), max_size=3)
    return st.lists(URIS, max_size=3)


MEMBER = {"Property": "value", "Relationship": "object", "GeoProperty": "value",
          "LanguageProperty": "languageMap", "VocabProperty": "vocab", "JsonProperty": "json",
          "ListProperty": "valueList", "ListRelationship": "objectList"}
KINDS = st.sampled_from(["Property"] * 3 + sorted(MEMBER))  # Property: most ambiguities
# Built once: hypothesis strategies are costly to rebuild on every draw.
VALUES = {(kind, plain): values_of(kind, plain) for kind in MEMBER for plain in (False, True)}


@st.composite
def instances(draw: st.DrawFn, *, plain: bool, depth: int, geo_only: bool = False) -> Any:
    # most real attributes have just the default instance
    dataset_ids = draw(st.just([None]) | st.lists(
        st.sampled_from([None, "urn:ds:1", "urn:ds:2", "x:3"]), min_size=1, max_size=3,
        unique=True))
    dataset_ids.sort(key=lambda d: d is not None)
    out = []
    for dataset_id in dataset_ids:
        kind = "GeoProperty" if geo_only else draw(KINDS)
        instance: dict[str, Any] = {"type": kind,
                                    MEMBER[kind]: draw(VALUES[kind, plain])}
        if dataset_id is not None:
            instance["datasetId"] = dataset_id
        # optional members are rarer than not, so that bare concise values show up often
        if draw(st.integers(0, 2)) == 0:
            instance["observedAt"] = draw(TIMES)
        if kind != "JsonProperty" and draw(st.integers(0, 2)) == 0:  # 4.5.24: no unitCode
            instance["unitCode"] = draw(st.sampled_from(["CEL", "C62"]))
        if kind in ("Relationship", "ListRelationship") and draw(st.booleans()):
            instance["objectType"] = draw(names(TYPE_IRIS))
        if draw(st.booleans()):
            instance["createdAt"] = T0
            instance["modifiedAt"] = T1
        if depth < 2 and draw(st.integers(0, 3)) == 0:
            sub = draw(st.dictionaries(st.sampled_from(ATTR_IRIS),
                                       instances(plain=plain, depth=depth + 1),
                                       min_size=1, max_size=2))
            instance["attrs"] = sub
        out.append(instance)
    return out


@st.composite
def entities(draw: st.DrawFn, *, plain: bool = False) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": "urn:ngsi-ld:T:" + draw(st.text("abc123", min_size=1, max_size=4)),
        "type": draw(names(TYPE_IRIS)), "createdAt": T0, "modifiedAt": T1}
    if draw(st.booleans()):
        entity["scope"] = draw(st.lists(st.sampled_from(["/a", "/a/b", "/Città"]),
                                        min_size=1, max_size=2, unique=True))
    attrs = draw(st.dictionaries(st.sampled_from(ATTR_IRIS), instances(plain=plain, depth=0),
                                 max_size=4))
    if draw(st.booleans()):
        attrs[LOCATION] = draw(instances(plain=plain, depth=1, geo_only=True))
    entity["attrs"] = attrs
    return entity


ROUND_TRIP = settings(max_examples=150, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(entities(), st.sampled_from(["normalized", "concise"]), st.booleans())
def test_normalized_and_concise_round_trip(entity, fmt, sys_attrs):
    rendered = render_entity(entity, CTX, RenderOptions(format=fmt, sys_attrs=sys_attrs))
    assert parse_entity(rendered, CTX) == strip_system_members(entity)


@ROUND_TRIP
@given(entities(plain=True))
def test_key_values_are_stable(entity):
    once = render_entity(entity, CTX, KEY_VALUES)
    again = render_entity(parse_entity(once, CTX), CTX, KEY_VALUES)
    assert again == once
