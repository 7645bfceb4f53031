"""Validation against ENEA's published UrbanDataset JSON schemas (1.0 and 2.0)."""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

import orjson
from jsonschema import Draft7Validator

from sinergia.adapters.urbandataset.document import load
from sinergia.adapters.urbandataset.report import ImportReport, UrbanDatasetError

__all__ = ["validate"]


@functools.cache
def _validator(version: str) -> Draft7Validator:
    schema = orjson.loads(importlib.resources.files("sinergia").joinpath(
        f"data/urbandataset/scps-urbandataset-schema-{version}.json").read_bytes())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _version_of(ud: dict[str, Any]) -> str:
    spec = ud.get("specification")
    if not isinstance(spec, dict):
        return "2.0"
    version = spec.get("version")
    if isinstance(version, str) and version.strip().startswith("1"):
        return "1.0"
    if version is None:
        spec_id = spec.get("id")
        value = spec_id.get("value") if isinstance(spec_id, dict) else None
        if isinstance(value, str) and value.endswith("-1.0"):
            return "1.0"
    return "2.0"


def validate(doc: dict[str, Any] | bytes | str) -> list[str]:
    """Every way ``doc`` breaks its version's schema, as ``path: message`` lines (empty when it
    is valid). The version comes from ``specification.version``, else the id's ``-1.0``/``-2.0``
    suffix, else 2.0. JSON or XML text is parsed first; unparseable input is one error."""
    try:
        root = doc if isinstance(doc, dict) else {"UrbanDataset": load(doc, ImportReport())}
    except UrbanDatasetError as exc:
        return [f"$: {exc}"]
    ud = root.get("UrbanDataset")
    version = _version_of(ud) if isinstance(ud, dict) else "2.0"
    errors = sorted(_validator(version).iter_errors(root), key=lambda error: error.json_path)
    return [f"{error.json_path}: {error.message}" for error in errors]
