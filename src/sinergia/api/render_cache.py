"""Rendered entities kept as JSON bytes, so that reading an entity that has not changed since
it was last served costs a dictionary look-up instead of a parse, a rendering and a
serialisation.

What the bytes depend on is: the stored document's text (any change to the entity changes it:
``modifiedAt`` at least), the render options, the response media type (JSON-LD adds
``@context`` to each entity) and the @context. The text is looked up by its first characters
(which name the entity and its times: hashing a short prefix costs a tenth of hashing the
whole text, which is new from the database each time) and an entry is only used when its
whole text is equal to the one asked for; two texts that share a prefix take turns in one
slot. Contexts are compared by identity — the resolver hands out one object per processed
context — and each entry holds its context, so an entry can never be taken for another
context that happens to reuse a freed object's id. The cache is bounded (when full, the least
recently used half of each variant goes) and lives in one process; it is only a shortcut: a
miss renders exactly as :func:`sinergia.ngsild.render.render_entity` does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

import orjson

from sinergia.api.http import CallContext, with_context
from sinergia.ngsild.context import Context
from sinergia.ngsild.model import Entity
from sinergia.ngsild.render import RenderOptions, render_entity

# Entries kept. A rendered 10-attribute entity and its stored text are ~4 KB: ~16 MB at most.
CAPACITY: Final = 4096
# Characters of a stored text that key its entry: its id, types and times.
_PREFIX: Final = 200


class _Variant:
    """The rendered documents of one (context, options, media type)."""

    __slots__ = ("ctx", "docs")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx  # held, so no other context can take its id while this lives
        # text prefix -> (whole text, rendered bytes)
        self.docs: OrderedDict[str, tuple[str, bytes]] = OrderedDict()


_variants: dict[tuple[int, RenderOptions, str], _Variant] = {}
_size = 0


def rendered(documents: Sequence[str], call: CallContext, opts: RenderOptions,
             parsed: Sequence[Entity] | None = None) -> list[bytes]:
    """The JSON of each stored document as the call wants it (one array element each).
    ``parsed``, when given, holds the same documents already parsed (not parsed again)."""
    global _size  # noqa: PLW0603 - one cache per process
    ctx, accept = call.ctx, call.accept
    key = (id(ctx), opts, accept)
    variant = _variants.get(key)
    if variant is None or variant.ctx is not ctx:
        variant = _variants[key] = _Variant(ctx)
    docs = variant.docs
    out: list[bytes] = []
    for i, doc in enumerate(documents):
        prefix = doc[:_PREFIX]
        entry = docs.get(prefix)
        if entry is not None and entry[0] == doc:
            # (not contextlib.suppress: an object per hit, on the hottest line of a list)
            try:  # noqa: SIM105
                docs.move_to_end(prefix)
            except KeyError:  # evicted meanwhile by another thread: still valid
                pass
            out.append(entry[1])
            continue
        entity = orjson.loads(doc) if parsed is None else parsed[i]
        body = orjson.dumps(with_context(render_entity(entity, ctx, opts), ctx, accept))
        if entry is None:
            _size += 1
        docs[prefix] = (doc, body)
        out.append(body)
    if _size > CAPACITY:
        _evict()
    return out


def _evict() -> None:
    """Drop the least recently used half of every variant, and variants left empty."""
    global _size  # noqa: PLW0603
    for key, variant in list(_variants.items()):
        docs = variant.docs
        for _ in range(len(docs) - len(docs) // 2):
            try:
                docs.popitem(last=False)
            except KeyError:
                break
        if not docs:
            _variants.pop(key, None)
    _size = sum(len(v.docs) for v in _variants.values())


def clear() -> None:
    global _size  # noqa: PLW0603
    _variants.clear()
    _size = 0
