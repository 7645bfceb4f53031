"""Fixtures for the UrbanDataset adapter tests: the sample documents in ./fixtures (written for
these tests from ENEA's templates, some with real producers' defects)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_bytes() -> Callable[[str], bytes]:
    return lambda name: (FIXTURES / name).read_bytes()


@pytest.fixture
def fixture_doc() -> Callable[[str], dict[str, Any]]:
    cache: dict[str, dict[str, Any]] = {}

    def load(name: str) -> dict[str, Any]:
        if name not in cache:
            cache[name] = orjson.loads((FIXTURES / name).read_bytes())
        return copy.deepcopy(cache[name])

    return load
