"""``sinergia demo``: never deletes a file it was pointed at unless told to (--fresh), and
takes host and port from the settings table (flags, then SINERGIA_* variables, then defaults)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sinergia.cli import app
from sinergia.settings import Settings
from sinergia.sim import demo as demo_module
from sinergia.sim.demo import DEFAULT_DATABASE, fresh_database


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replaces the server and city loading (run after the database is made) by a record of
    what the demo was started with."""
    calls: list[dict[str, Any]] = []

    def serve(settings: Settings, url: str) -> None:
        calls.append({"host": settings.host, "port": settings.port, "url": url})

    async def run_demo(settings: Settings, database: Path, console: Console, *,
                       overwrite: bool, **simulation: Any) -> None:
        serve(settings, fresh_database(database, overwrite=overwrite))

    monkeypatch.setattr(demo_module, "run_demo", run_demo)
    return calls


def test_a_named_existing_database_is_never_deleted(tmp_path: Path,
                                                    started: list[dict[str, Any]]) -> None:
    precious = tmp_path / "city.db"
    precious.write_bytes(b"the city's data")
    result = CliRunner().invoke(app, ["demo", "--database", str(precious)])
    assert result.exit_code == 1
    assert "already exists" in result.output and "--fresh" in result.output
    assert precious.read_bytes() == b"the city's data"
    assert started == []


def test_fresh_allows_replacing_a_named_database(tmp_path: Path,
                                                 started: list[dict[str, Any]]) -> None:
    old = tmp_path / "old.db"
    for name in ("old.db", "old.db-wal", "old.db-shm"):
        (tmp_path / name).write_bytes(b"x")
    result = CliRunner().invoke(app, ["demo", "--database", str(old), "--fresh"])
    assert result.exit_code == 0, result.output
    assert started[0]["url"] == f"sqlite:///{old}"
    assert not any(tmp_path.iterdir())


def test_a_new_named_database_needs_no_flag(tmp_path: Path,
                                            started: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["demo", "--database", str(tmp_path / "new.db")])
    assert result.exit_code == 0, result.output
    assert started[0]["url"] == f"sqlite:///{tmp_path / 'new.db'}"


def test_without_flags_the_demo_file_is_recreated(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  started: list[dict[str, Any]]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SINERGIA_HOST", raising=False)
    monkeypatch.delenv("SINERGIA_PORT", raising=False)
    DEFAULT_DATABASE.write_bytes(b"yesterday's demo")
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert started == [{"host": "127.0.0.1", "port": 1026,
                        "url": f"sqlite:///{DEFAULT_DATABASE}"}]
    assert not DEFAULT_DATABASE.exists()


def test_host_and_port_come_from_the_environment_unless_flagged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        started: list[dict[str, Any]]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SINERGIA_HOST", "127.0.0.2")
    monkeypatch.setenv("SINERGIA_PORT", "8081")
    assert CliRunner().invoke(app, ["demo"]).exit_code == 0
    assert CliRunner().invoke(app, ["demo", "--port", "9090"]).exit_code == 0
    assert [(c["host"], c["port"]) for c in started] == [("127.0.0.2", 8081),
                                                         ("127.0.0.2", 9090)]
