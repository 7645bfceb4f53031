"""Input: entities and attributes as clients send them → the internal form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinergia.ngsild.entity import (
    MAX_DEPTH,
    parse_attribute,
    parse_attributes,
    parse_datetime,
    parse_entity,
)
from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.model import DEFAULT_VOCAB, LOCATION, NGSI_LD, NULL_URI

EX = "https://example.org/"
V = DEFAULT_VOCAB


class FakeContext:
    """A dict-based stand-in for sinergia.ngsild.context.Context: terms, prefixes and the
    NGSI-LD default vocabulary, plus the core geo attribute terms."""

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


def parse(body: Any) -> dict[str, Any]:
    return parse_entity(body, CTX)


def attr(value: Any, name: str = "a") -> list[dict[str, Any]]:
    return parse_attribute(name, value, CTX)


def bad(match: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(BadRequestData, match=match):
        fn(*args, **kwargs)


# --- the entity -------------------------------------------------------------------------------

def test_whole_entity_expanded():
    body = {
        "id": "urn:ngsi-ld:Room:1", "type": ["Room", "ex:Office", "Room"],
        "scope": ["/Milano/Municipio1", "/Milano/Municipio1", "/B"],
        "temperature": {"type": "Property", "value": 21.5, "unitCode": "CEL",
                        "observedAt": "2026-11-21T18:00:00Z"},
        "createdAt": "2000-01-01T00:00:00Z", "modifiedAt": "2000-01-01T00:00:00Z",
        "@context": ["https://example.org/ctx.jsonld"],
    }
    assert parse(body) == {
        "id": "urn:ngsi-ld:Room:1",
        "type": [EX + "Room", EX + "Office"],
        "scope": ["/Milano/Municipio1", "/B"],
        "attrs": {EX + "temperature": [{"type": "Property", "value": 21.5, "unitCode": "CEL",
                                        "observedAt": "2026-11-21T18:00:00.000Z"}]},
    }


@pytest.mark.parametrize("entity_id", ["urn:ngsi-ld:T:1", "http://example.org/a?b=1#c",
                                       "urn:uuid:2b1a-x", "a:b", "tag:x.org,2026:1"])
def test_valid_ids(entity_id):
    assert parse({"id": entity_id, "type": "T"})["id"] == entity_id


@pytest.mark.parametrize("entity_id", ["", "noscheme", "urn:ngsi-ld:T 1", "1urn:x", ":x",
                                       "urn:", "urn:a\x00b", "http://x/<a>", 42, None,
                                       ["urn:x"], "u" * 3000 + ":x"])
def test_invalid_ids(entity_id):
    bad("'id'", parse, {"id": entity_id, "type": "T"})


def test_entity_needs_id_and_type():
    bad("no 'id'", parse, {"type": "T"})
    bad("no 'type'", parse, {"id": "urn:x:1"})
    assert parse_entity({"id": "urn:x:1"}, CTX, require_type=False) == {"id": "urn:x:1",
                                                                        "attrs": {}}


@pytest.mark.parametrize("types", ["", [], ["A", ""], ["A", 3], "A B", "A;B", {"a": 1},
                                   "x\ny"])
def test_invalid_types(types):
    bad("type", parse, {"id": "urn:x:1", "type": types})


@pytest.mark.parametrize("scope", ["", "A", "/", "/a//b", "/a/", "/a b", [], ["/a", 1], "/a/#",
                                   "/a/+", None])
def test_invalid_scopes(scope):
    bad("scope", parse, {"id": "urn:x:1", "type": "T", "scope": scope})


def test_scope_string_and_list():
    assert parse({"id": "urn:x:1", "type": "T", "scope": "/A/B"})["scope"] == ["/A/B"]
    assert parse({"id": "urn:x:1", "type": "T", "scope": ["/A", "/Città/Zona-1"]})["scope"] \
        == ["/A", "/Città/Zona-1"]


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_entity_must_be_object(body):
    bad("JSON object", parse, body)


@pytest.mark.parametrize("name", ["a b", "a<b", "a>b", 'a"b', "a'b", "a=b", "a;b", "a(b",
                                  "a)b", "a\tb", "a\x7fb", "@id", ""])
def test_invalid_attribute_names(name):
    bad("attribute", parse, {"id": "urn:x:1", "type": "T", name: 1})


def test_json_ld_keywords_are_not_attributes():
    keyword_ctx: Any = FakeContext({"id": "@id"})
    bad("JSON-LD keywords", parse_attribute, "a", {"value": 1, "id": 2}, keyword_ctx)
    bad("JSON-LD keywords", parse_attribute, "a", {"value": 1, "@type": "x"}, CTX)
    for member in ("id", "type", "scope", "@context", "createdAt"):
        bad("is not an attribute", parse_attribute, member, 1, CTX)


def test_names_that_expand_to_the_same_iri_clash():
    bad("expands to", parse, {"id": "urn:x:1", "type": "T", "temperature": 1,
                              "ex:temperature": 2})


# --- fragments --------------------------------------------------------------------------------

def test_fragment_rejects_or_skips_entity_members():
    body = {"id": "urn:x:1", "type": "T", "a": 1, "@context": "x"}
    bad("'id' is not an attribute", parse_attributes, body, CTX)
    bad("'scope'", parse_attributes, {"scope": "/a"}, CTX)
    assert parse_attributes(body, CTX, allow_entity_members=True) == {
        V + "a": [{"type": "Property", "value": 1}]}
    bad("JSON object", parse_attributes, [1], CTX)


def test_fragment_ignores_system_members():
    assert parse_attributes({"createdAt": "x", "modifiedAt": "y", "b": "z"}, CTX) == {
        V + "b": [{"type": "Property", "value": "z"}]}


# --- the eight kinds, normalized --------------------------------------------------------------

def test_property_members():
    got = attr({"type": "Property", "value": {"x": [1, None]}, "observedAt":
                "2026-11-21T19:00:00+01:00", "unitCode": "C62", "datasetId": "urn:ds:1",
                "createdAt": "x", "modifiedAt": "y", "instanceId": "urn:i", "lang": "it"})
    assert got == [{"type": "Property", "value": {"x": [1, None]}, "unitCode": "C62",
                    "observedAt": "2026-11-21T18:00:00.000Z", "datasetId": "urn:ds:1"}]


def test_relationship():
    assert attr({"type": "Relationship", "object": "urn:ngsi-ld:G:1",
                 "objectType": "Room"}) == [
        {"type": "Relationship", "object": "urn:ngsi-ld:G:1", "objectType": [EX + "Room"]}]
    assert attr({"type": "Relationship", "object": ["urn:a:1", "urn:a:2"],
                 "objectType": ["Room", "Hall"]})[0] == {
        "type": "Relationship", "object": ["urn:a:1", "urn:a:2"],
        "objectType": [EX + "Room", V + "Hall"]}
    bad("object must be an absolute URI", attr, {"type": "Relationship", "object": "G1"})
    bad("non-empty list", attr, {"type": "Relationship", "object": []})
    bad("each object", attr, {"type": "Relationship", "object": ["urn:a:1", "x y"]})
    bad("objectType is for relationships", attr,
        {"type": "Property", "value": 1, "objectType": "Room"})


def test_geoproperty_uses_validate_geometry():
    got = attr({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [9, 45]}})
    assert got == [{"type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [9.0, 45.0]}}]
    bad("attribute 'a'", attr, {"type": "GeoProperty", "value": {"type": "Point",
                                                                 "coordinates": "x"}})
    bad("GeoJSON geometry", attr, {"type": "GeoProperty", "value": "Milano"})


def test_language_property():
    lm = {"it": "Via Roma", "en": ["Rome Street", "Rome St."], "@none": "x", "de-CH": "y"}
    assert attr({"type": "LanguageProperty", "languageMap": lm}) == [
        {"type": "LanguageProperty", "languageMap": lm}]
    for wrong in [{}, {"it": 1}, {"it": []}, {"it": ["a", 2]}, {"i t": "x"}, {"it-": "x"},
                  ["it"], "it"]:
        bad("languageMap", attr, {"type": "LanguageProperty", "languageMap": wrong})


def test_vocab_property():
    assert attr({"type": "VocabProperty", "vocab": "Room"}) == [
        {"type": "VocabProperty", "vocab": EX + "Room"}]
    assert attr({"vocab": ["ex:a", "b"]}) == [
        {"type": "VocabProperty", "vocab": [EX + "a", V + "b"]}]
    bad("vocab term", attr, {"type": "VocabProperty", "vocab": "a b"})
    bad("non-empty list", attr, {"type": "VocabProperty", "vocab": []})


def test_json_property_is_verbatim():
    doc = {"type": "Property", "value": 1, "nested": {"@context": None}}
    assert attr({"type": "JsonProperty", "json": doc}) == [{"type": "JsonProperty",
                                                            "json": doc}]
    assert attr({"json": [1, "x"]}) == [{"type": "JsonProperty", "json": [1, "x"]}]
    bad("cannot be null", attr, {"type": "JsonProperty", "json": None})


def test_list_property_and_list_relationship():
    assert attr({"type": "ListProperty", "valueList": [1, "a", {"b": 2}]}) == [
        {"type": "ListProperty", "valueList": [1, "a", {"b": 2}]}]
    bad("valueList must be an array", attr, {"type": "ListProperty", "valueList": 1})
    got = attr({"type": "ListRelationship",
                "objectList": [{"object": "urn:r:1"}, "urn:r:2"], "objectType": "Room"})
    assert got == [{"type": "ListRelationship", "objectList": ["urn:r:1", "urn:r:2"],
                    "objectType": [EX + "Room"]}]
    bad("objectList entry", attr, {"type": "ListRelationship", "objectList": ["nope"]})
    bad("objectList entry", attr, {"type": "ListRelationship",
                                   "objectList": [{"object": "urn:a:1", "x": 1}]})
    bad("objectList must be an array", attr, {"objectList": "urn:r:1"})


@pytest.mark.parametrize(("kind", "member"), [
    ("Property", "value"), ("Relationship", "object"), ("GeoProperty", "value"),
    ("LanguageProperty", "languageMap"), ("VocabProperty", "vocab"), ("JsonProperty", "json"),
    ("ListProperty", "valueList"), ("ListRelationship", "objectList")])
def test_value_member_required_not_null_and_null_uri_kept(kind, member):
    with pytest.raises(BadRequestData, match=f"attribute 'temp': {kind} needs a '{member}'"):
        parse_attribute("temp", {"type": kind}, CTX)
    bad("cannot be null", attr, {"type": kind, member: None})
    assert attr({"type": kind, member: NULL_URI}) == [{"type": kind, member: NULL_URI}]


def test_null_uri_kept_for_optional_members():
    got = attr({"type": "Relationship", "object": "urn:x:1", "objectType": NULL_URI,
                "observedAt": NULL_URI, "unitCode": NULL_URI, "sub": NULL_URI})
    assert got == [{"type": "Relationship", "object": "urn:x:1", "objectType": NULL_URI,
                    "observedAt": NULL_URI, "unitCode": NULL_URI,
                    "attrs": {V + "sub": [{"type": "Property", "value": NULL_URI}]}}]
    assert attr({"languageMap": {"@none": NULL_URI}})[0]["languageMap"] == {"@none": NULL_URI}


def test_members_of_other_kinds_and_unknown_kinds_rejected():
    bad("a Property cannot have 'object'", attr,
        {"type": "Property", "value": 1, "object": "urn:x:1"})
    bad("unknown attribute type 'Propety'", attr, {"type": "Propety", "value": 1})
    bad("unknown attribute type", attr, {"type": ["Property"], "value": 1})
    bad("reserved", attr, {"type": "Property", "value": 1, "attrs": {}})


def test_reserved_members_validated():
    bad("observedAt", attr, {"value": 1, "observedAt": "yesterday"})
    bad("observedAt", attr, {"value": 1, "observedAt": "2026-11-21"})
    bad("unitCode", attr, {"value": 1, "unitCode": 3})
    bad("datasetId", attr, {"value": 1, "datasetId": "dataset 1"})


def test_sub_attributes_recursive_and_expanded():
    got = attr({"type": "Property", "value": 20, "temperature": {"value": 1,
                "accuracy": {"type": "Relationship", "object": "urn:s:1"}}})
    assert got == [{"type": "Property", "value": 20, "attrs": {
        EX + "temperature": [{"type": "Property", "value": 1, "attrs": {
            V + "accuracy": [{"type": "Relationship", "object": "urn:s:1"}]}}]}}]
    with pytest.raises(BadRequestData, match=r"attribute 'a\.temperature\.accuracy'"):
        attr({"value": 20, "temperature": {"value": 1, "accuracy": {"type": "Property"}}})


def test_nesting_deeper_than_limit_rejected():
    value: Any = {"value": 0}
    for _ in range(MAX_DEPTH):
        value = {"value": 0, "s": value}
    assert attr(value)[0]["attrs"][V + "s"]
    bad("deeper than", attr, {"value": 0, "s": value})


# --- concise input ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [1, 2.5, "on", True, False, NULL_URI, {"street": "Via Roma"},
                                   [1, 2], [], [{"a": 1}, {"b": 2}], [1, {"value": 2}]])
def test_concise_plain_values_are_properties(value):
    assert attr(value) == [{"type": "Property", "value": value}]


def test_concise_inference():
    geom = {"type": "Point", "coordinates": [1.0, 2.0]}
    assert attr({"value": 3, "unitCode": "C62"}) == [
        {"type": "Property", "value": 3, "unitCode": "C62"}]
    assert attr({"value": geom}) == [{"type": "GeoProperty", "value": geom}]
    assert attr(geom) == [{"type": "GeoProperty", "value": geom}]
    assert attr({"type": "Property", "value": geom}) == [{"type": "Property", "value": geom}]
    assert attr({"object": "urn:x:1"}) == [{"type": "Relationship", "object": "urn:x:1"}]
    assert attr({"languageMap": {"it": "ciao"}}) == [
        {"type": "LanguageProperty", "languageMap": {"it": "ciao"}}]
    assert attr({"valueList": [1]}) == [{"type": "ListProperty", "valueList": [1]}]
    assert attr({"objectList": ["urn:a:1"]}) == [
        {"type": "ListRelationship", "objectList": ["urn:a:1"]}]
    coll = {"type": "GeometryCollection", "geometries": [geom]}
    assert attr(coll) == [{"type": "GeoProperty", "value": coll}]
    bad("ambiguous", attr, {"value": 1, "object": "urn:x:1"})
    bad("cannot tell the attribute type", attr, {"datasetId": "urn:d:1", "observedAt": "x"})
    bad("unknown attribute type 'Point'", attr, {"type": "Point"})


def test_location_must_be_a_geoproperty():
    assert parse_attribute("location", {"type": "Point", "coordinates": [1, 2]}, CTX)
    bad("GeoProperty", parse_attribute, "location", "Milano", CTX)
    bad("GeoProperty", parse_attribute, "location", {"type": "Property", "value": 1}, CTX)
    bad("GeoProperty", parse_attribute, "observationSpace", {"street": "x"}, CTX)
    assert parse_attribute("location", NULL_URI, CTX) == [{"type": "Property",
                                                           "value": NULL_URI}]
    # only the core IRI is special: another "location" is an ordinary attribute
    assert parse_attribute("ex:location", "Milano", CTX)[0]["value"] == "Milano"
    assert LOCATION == NGSI_LD + "location"


def test_multi_instance():
    got = attr([{"value": 1, "datasetId": "urn:ds:b"}, {"type": "Property", "value": 0},
                {"value": 2, "datasetId": "urn:ds:a"}])
    assert got == [{"type": "Property", "value": 0},
                   {"type": "Property", "value": 1, "datasetId": "urn:ds:b"},
                   {"type": "Property", "value": 2, "datasetId": "urn:ds:a"}]
    bad("more than one instance with the default instance", attr, [{"value": 1},
                                                                   {"value": 2}])
    bad("datasetId 'urn:d:1'", attr, [{"value": 1, "datasetId": "urn:d:1"},
                                      {"object": "urn:x:1", "datasetId": "urn:d:1"}])
    with pytest.raises(BadRequestData, match=r"attribute 'a\[1\]'"):
        attr([{"value": 1}, {"type": "Property", "datasetId": "urn:d:1"}])


def test_null_attribute_rejected():
    with pytest.raises(BadRequestData, match="attribute 'temperature': null"):
        parse({"id": "urn:x:1", "type": "T", "temperature": None})


# --- date-times -------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "stored"), [
    ("2026-11-21T18:00:00Z", "2026-11-21T18:00:00.000Z"),
    ("2026-11-21t18:00:00.5z", "2026-11-21T18:00:00.500Z"),
    ("2026-11-21T19:30:00.123456+01:30", "2026-11-21T18:00:00.123Z"),
    ("2026-11-21T18:00:00", "2026-11-21T18:00:00.000Z"),
    ("2026-11-21T18:00", "2026-11-21T18:00:00.000Z"),
])
def test_datetimes_normalised_to_utc_milliseconds(given, stored):
    assert parse_datetime(given, "x") == stored


@pytest.mark.parametrize("given", ["", "2026-11-21", "2026-13-01T00:00:00Z", "now",
                                   "2026-11-21T25:00:00Z", "2026-11-21T18:00:00+25:00",
                                   "0001-01-01T00:00:00+01:00", 1700000000, None])
def test_bad_datetimes(given):
    bad("ISO 8601|out of range", parse_datetime, given, "attribute 'a'")


@given(st.datetimes(timezones=st.just(UTC)))
def test_datetime_round_trip(moment: datetime):
    text = moment.isoformat()
    stored = parse_datetime(text, "x")
    assert datetime.fromisoformat(stored) == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000)
    assert parse_datetime(stored, "x") == stored


# --- properties -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["type", "value", "object", "datasetId", "coordinates",
                                       "x", "languageMap", "json", "@context"]) | st.text(),
                      inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300)
@given(json_values)
def test_any_json_is_parsed_or_rejected_cleanly(value: Any):
    try:
        instances = parse_attribute("a", value, CTX)
    except BadRequestData as error:
        assert error.detail.startswith("attribute 'a")
    else:
        assert instances and all(i["type"] for i in instances)
        dataset_ids = [i.get("datasetId") for i in instances]
        assert len(set(dataset_ids)) == len(dataset_ids)
        assert all("datasetId" in i for i in instances[1:])


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_any_entity_body_is_parsed_or_rejected_cleanly(body: dict[str, Any]):
    body = {"id": "urn:x:1", "type": "T", **body}
    try:
        entity = parse(body)
    except BadRequestData as error:
        assert error.detail
    else:
        assert set(entity) <= {"id", "type", "scope", "attrs"}
