"""q compares the vocab of a VocabProperty with the query's strings expanded as vocabulary
terms (the stored vocab is an IRI); a subscription keeps those expansions in its record."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from sinergia.ngsild.context import Context, ContextResolver
from sinergia.ngsild.model import DEFAULT_VOCAB
from sinergia.ngsild.qlang import Comparison, evaluate_q, parse_q, resolve_q
from sinergia.ngsild.subscription import from_record, parse_subscription, to_record

EX = "https://example.org/waste#"
CORE: Context = ContextResolver(allow_remote=False).core
CUSTOM: Context = asyncio.run(ContextResolver(allow_remote=False).resolve({"glass": EX + "glass"}))
WASTE = DEFAULT_VOCAB + "wasteType"


def container(kind: str, member: str, value: Any) -> dict[str, Any]:
    return {"id": "urn:x:1", "attrs": {WASTE: [{"type": kind, member: value}]}}


def test_resolve_keeps_both_forms_of_a_string() -> None:
    expr = resolve_q(parse_q('wasteType=="glass","paper",3'), CUSTOM.expand, CUSTOM.expand)
    assert isinstance(expr, Comparison)
    assert expr.value == ("glass", "paper", 3)
    assert expr.vocab_value == (EX + "glass", DEFAULT_VOCAB + "paper", 3)
    assert resolve_q(parse_q('wasteType~="gl"'), CORE.expand, CORE.expand) == resolve_q(
        parse_q('wasteType~="gl"'), CORE.expand)   # patterns are never expanded


def test_vocab_is_compared_expanded_and_other_kinds_as_written() -> None:
    expr = resolve_q(parse_q('wasteType=="glass"'), CORE.expand, CORE.expand)
    assert evaluate_q(expr, container("VocabProperty", "vocab", DEFAULT_VOCAB + "glass"))
    assert evaluate_q(expr, container("VocabProperty", "vocab", ["x", DEFAULT_VOCAB + "glass"]))
    assert not evaluate_q(expr, container("VocabProperty", "vocab", "glass"))
    assert evaluate_q(expr, container("Property", "value", "glass"))
    custom = resolve_q(parse_q('wasteType=="glass"'), CUSTOM.expand, CUSTOM.expand)
    assert evaluate_q(custom, container("VocabProperty", "vocab", EX + "glass"))
    assert not evaluate_q(custom, container("VocabProperty", "vocab", DEFAULT_VOCAB + "glass"))


def test_a_subscription_record_keeps_the_vocab_expansion() -> None:
    body = {"type": "Subscription", "entities": [{"type": "WasteContainer"}],
            "q": 'wasteType=="glass"',
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9000/n"}}}
    sub = parse_subscription(body, CUSTOM, now="2026-11-21T10:00:00Z")
    restored = from_record(orjson.loads(orjson.dumps(to_record(sub))))
    assert restored.q is not None and sub.q is not None and restored.q.expr == sub.q.expr
    assert evaluate_q(restored.q.expr, container("VocabProperty", "vocab", EX + "glass"))
