"""The internal (stored) form of NGSI-LD entities.

Every layer below the API works on this one form, so that queries, storage and notifications
never depend on the @context a client happened to use. It is plain JSON (dicts, lists, str,
numbers) so that backends can store it as a document::

    {
      "id": "urn:ngsi-ld:Streetlight:MI-0001",
      "type": ["https://smartdatamodels.org/dataModel.Streetlighting/Streetlight"],
      "scope": ["/Milano/Municipio1"],                # optional
      "createdAt": "2026-11-21T10:00:00.000Z",
      "modifiedAt": "2026-11-21T10:00:00.000Z",
      "attrs": {
        "<expanded attribute IRI>": [<instance>, ...]   # one per datasetId; default first
      }
    }

An *instance* is ``{"type": <kind>, <value member>: ..., ...}`` where the value member is the one
``VALUE_MEMBER[kind]`` names. Optional members: ``observedAt``, ``unitCode``, ``datasetId``
(expanded IRI), ``objectType`` (list of expanded IRIs, relationships only), ``createdAt``,
``modifiedAt``, and ``attrs`` (sub-attributes, same shape as the entity's ``attrs``).

Values are stored verbatim except where JSON-LD gives them meaning: ``vocab`` strings are
expanded IRIs, and the keys of a ``languageMap`` are language tags.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

Entity = dict[str, Any]
Instance = dict[str, Any]
Attrs = dict[str, list[Instance]]

NGSI_LD: Final = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB: Final = "https://uri.etsi.org/ngsi-ld/default-context/"
CORE_CONTEXT_URL: Final = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
NULL_URI: Final = "urn:ngsi-ld:null"

PROPERTY: Final = "Property"
RELATIONSHIP: Final = "Relationship"
GEOPROPERTY: Final = "GeoProperty"
LANGUAGE_PROPERTY: Final = "LanguageProperty"
VOCAB_PROPERTY: Final = "VocabProperty"
JSON_PROPERTY: Final = "JsonProperty"
LIST_PROPERTY: Final = "ListProperty"
LIST_RELATIONSHIP: Final = "ListRelationship"

VALUE_MEMBER: Final[dict[str, str]] = {
    PROPERTY: "value",
    RELATIONSHIP: "object",
    GEOPROPERTY: "value",
    LANGUAGE_PROPERTY: "languageMap",
    VOCAB_PROPERTY: "vocab",
    JSON_PROPERTY: "json",
    LIST_PROPERTY: "valueList",
    LIST_RELATIONSHIP: "objectList",
}
ATTRIBUTE_KINDS: Final = frozenset(VALUE_MEMBER)

# Members of an instance that are not sub-attributes (compact names, never expanded).
INSTANCE_MEMBERS: Final = frozenset(
    {"type", "observedAt", "unitCode", "datasetId", "objectType", "createdAt", "modifiedAt",
     "instanceId", "lang", "attrs", *VALUE_MEMBER.values()}
)
# Entity members that are not attributes.
ENTITY_MEMBERS: Final = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "@context"})

# Attribute IRIs the core context defines that have special meaning.
LOCATION: Final = NGSI_LD + "location"
OBSERVATION_SPACE: Final = NGSI_LD + "observationSpace"
OPERATION_SPACE: Final = NGSI_LD + "operationSpace"
GEO_ATTRIBUTES: Final = frozenset({LOCATION, OBSERVATION_SPACE, OPERATION_SPACE})


def now_iso() -> str:
    """The current UTC time as NGSI-LD writes it (milliseconds, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def value_of(instance: Instance) -> Any:
    """The value member of an instance, whatever its kind."""
    return instance.get(VALUE_MEMBER.get(instance.get("type", PROPERTY), "value"))


def default_instance(instances: list[Instance]) -> Instance | None:
    """The instance without ``datasetId`` (the default instance), if any."""
    for instance in instances:
        if "datasetId" not in instance:
            return instance
    return None
