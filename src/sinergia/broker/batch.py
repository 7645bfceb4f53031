"""Batch input: the items of a batch body turned into internal entities (or ids for delete),
each failing alone. Shared by the HTTP API and the in-process adapter client so both accept
exactly the same batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sinergia.broker.entities import BatchOp
from sinergia.ngsild.context import Context
from sinergia.ngsild.entity import is_uri, parse_entity
from sinergia.ngsild.errors import BadRequestData, NgsiLdError
from sinergia.ngsild.model import Entity


def parse_batch_items(op: BatchOp, body: Any, ctx: Context | Sequence[Context | NgsiLdError]
                      ) -> tuple[list[Entity | str], list[tuple[str, NgsiLdError]]]:
    """The parsed items of ``body`` (a JSON array), and ``(entity id, error)`` for every item
    that does not parse (``item <n>`` when it has no usable id). ``ctx`` is the @context of
    every item, or one per item (an error when that item's @context could not be had).
    Raises BadRequestData when ``body`` is not an array."""
    if not isinstance(body, list):
        raise BadRequestData("A batch body must be a JSON array")
    items: list[Entity | str] = []
    errors: list[tuple[str, NgsiLdError]] = []
    for position, raw in enumerate(body):
        if op == "delete":
            if isinstance(raw, str) and is_uri(raw):
                items.append(raw)
            else:
                errors.append((str(raw)[:200], BadRequestData(
                    f"item {position}: a batch delete takes entity ids (URIs)")))
            continue
        item_ctx = ctx if isinstance(ctx, Context) else ctx[position]
        try:
            if isinstance(item_ctx, NgsiLdError):
                raise item_ctx
            items.append(parse_entity(raw, item_ctx, require_type=op in ("create", "upsert")))
        except NgsiLdError as exc:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            errors.append((str(raw_id) if raw_id else f"item {position}", exc))
    return items, errors
