"""ENEA UrbanDataset (the Italian Smart City Platform Specification's data format) ↔ NGSI-LD.

``import_document`` turns a 1.0 or 2.0 document (JSON or XML) into NGSI-LD temporal entities,
repairing what real producers get wrong and reporting every repair and skipped line;
``export_document`` turns entities' history over a period back into a valid 2.0 document;
``validate`` checks a document against ENEA's JSON schemas.
"""

from sinergia.adapters.urbandataset.export import EmptyExport, export_document
from sinergia.adapters.urbandataset.mapping import CONTEXT, URBANDATASET_CONTEXT_URL
from sinergia.adapters.urbandataset.report import (
    ImportReport,
    ImportResult,
    Repair,
    Skip,
    UrbanDatasetError,
)
from sinergia.adapters.urbandataset.to_ngsild import import_document
from sinergia.adapters.urbandataset.validation import validate

__all__ = [
    "CONTEXT",
    "URBANDATASET_CONTEXT_URL",
    "EmptyExport",
    "ImportReport",
    "ImportResult",
    "Repair",
    "Skip",
    "UrbanDatasetError",
    "export_document",
    "import_document",
    "validate",
]
