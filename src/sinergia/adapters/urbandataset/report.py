"""What an import did besides converting: every repair, every skipped line, the counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["ImportReport", "ImportResult", "Repair", "Skip", "UrbanDatasetError"]


class UrbanDatasetError(ValueError):
    """The input is not an UrbanDataset we can read at all (not JSON/XML, no lines, no
    specification id). Anything less serious is repaired or skipped and reported instead."""


class Repair(NamedTuple):
    """A defect fixed on the way in. ``line`` is the line's id, or None for the document."""

    line: int | float | None
    message: str


class Skip(NamedTuple):
    """A line (or one value of a line) left out, and why."""

    line: int | float | None
    reason: str


@dataclass(slots=True)
class ImportReport:
    repairs: list[Repair] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    # Not repairs, but worth knowing: placeholder producers, properties without a definition.
    warnings: list[Repair] = field(default_factory=list)
    # lines, imported, skipped, values, empty (blank values), entities, instances
    counts: dict[str, int] = field(default_factory=dict)

    def repair(self, line: int | float | None, message: str) -> None:
        self.repairs.append(Repair(line, message))

    def skip(self, line: int | float | None, reason: str) -> None:
        self.skipped.append(Skip(line, reason))

    def warn(self, line: int | float | None, message: str) -> None:
        self.warnings.append(Repair(line, message))

    def summary(self) -> list[tuple[str, int]]:
        """Distinct repair messages with how many times each happened, most frequent first —
        the readable form of a report on a large document."""
        return Counter(message for _, message in self.repairs).most_common()

    def as_dict(self) -> dict[str, Any]:
        return {
            "repairs": [list(item) for item in self.repairs],
            "skipped": [list(item) for item in self.skipped],
            "warnings": [list(item) for item in self.warnings],
            "counts": dict(self.counts),
        }


@dataclass(slots=True)
class ImportResult:
    """``entities``: NGSI-LD temporal entities (normalized, compact, with ``@context``), one per
    stable entity, each attribute an array of instances. ``latest``: the same entities in
    current-state form (each attribute's most recent instance)."""

    entities: list[dict[str, Any]]
    latest: list[dict[str, Any]]
    report: ImportReport
    spec_id: str = ""  # e.g. "CounterReading-2.0"
    version: str = ""  # "1.0" or "2.0"
    entity_type: str = ""
    producer_id: str = ""
