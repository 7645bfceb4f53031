"""Shared fixtures: a fresh store per test for every configured backend, and an in-process
ASGI client on top of it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from sinergia.api.app import create_app
from sinergia.settings import Settings

POSTGRES_URL = os.environ.get("SINERGIA_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server of SINERGIA_TEST_POSTGRES_URL, checked once. Unset: the test is
    skipped. Set but unreachable (or without PostGIS): the test fails, never skips."""
    if not POSTGRES_URL:
        pytest.skip("SINERGIA_TEST_POSTGRES_URL is not set")
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        pytest.fail(f"SINERGIA_TEST_POSTGRES_URL is set but the database cannot be used: "
                    f"{exc}", pytrace=False)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL of the test database whose search_path selects a fresh, empty schema of this
    test's own (dropped afterwards): tests never see each other's data."""
    import psycopg
    from psycopg import sql

    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    options = quote(f"-csearch_path={schema},public")
    yield postgres_server + ("&" if "?" in postgres_server else "?") + f"options={options}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'test.db'}"


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
