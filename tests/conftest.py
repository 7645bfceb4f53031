"""Shared fixtures: a fresh store per test for every configured backend, and an in-process
ASGI client on top of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.settings import Settings

POSTGRES_URL = os.environ.get("SINERGIA_TEST_POSTGRES_URL")


def backend_urls(tmp_path: Path) -> dict[str, str]:
    urls = {"sqlite": f"sqlite:///{tmp_path / 'test.db'}"}
    if POSTGRES_URL:
        urls["postgres"] = POSTGRES_URL
    return urls


BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_urls(tmp_path)[request.param]


@pytest.fixture
def settings(database_url: str) -> Settings:
    # "normal" keeps tests fast; durability under kill -9 is tested separately with "full".
    return Settings(database_url=database_url, sqlite_synchronous="normal",
                    allow_remote_contexts=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
