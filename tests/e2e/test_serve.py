"""``sinergia serve`` as a real process: a standard NGSI-LD client round trip, two workers on a
fresh database, and the command line documenting every command and setting."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from sinergia.cli import app as cli_app
from sinergia.settings import SETTINGS
from sinergia.storage.sqlite_schema import MIGRATIONS, migrate

from .conftest import ServerProcess, StartServer, clean_environment, sinergia_command

pytestmark = pytest.mark.slow

BASE = "/ngsi-ld/v1"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CONTEXT_LINK = (f'<{CORE_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; '
                'type="application/ld+json"')
LD_JSON = "application/ld+json"


def streetlight(n: int, power: str = "on") -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Streetlight:E2E-{n:03d}",
        "type": "Streetlight",
        "powerState": {"type": "Property", "value": power},
        "illuminanceLevel": {"type": "Property", "value": 0.5, "unitCode": "C62"},
        "refStreetlightGroup": {"type": "Relationship",
                                "object": "urn:ngsi-ld:StreetlightGroup:G1"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [9.19 + n / 1000, 45.46]}},
    }


# -- a standard NGSI-LD client against the real server --------------------------------------


def test_standard_ngsi_ld_client_round_trip(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(f"sqlite:///{tmp_path / 'serve.db'}")
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        version = client.get("/version")
        assert version.status_code == 200
        assert version.json()["name"] == "Sinergia"

        # Create with the @context in the body (application/ld+json), as the spec describes.
        created = client.post(f"{BASE}/entities", headers={"Content-Type": LD_JSON},
                              json={**streetlight(1), "@context": [CORE_CONTEXT]})
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"{BASE}/entities/urn:ngsi-ld:Streetlight:E2E-001"

        # Read back as JSON-LD: the @context travels in the body.
        got = client.get(created.headers["location"], headers={"Accept": LD_JSON})
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith(LD_JSON)
        body = got.json()
        assert "@context" in body
        assert body["powerState"] == {"type": "Property", "value": "on"}
        assert body["refStreetlightGroup"]["object"] == "urn:ngsi-ld:StreetlightGroup:G1"
        assert body["location"]["value"] == streetlight(1)["location"]["value"]

        # A second client style: plain JSON with the context in a Link header.
        created = client.post(f"{BASE}/entities", json=streetlight(2, power="off"),
                              headers={"Link": CONTEXT_LINK})
        assert created.status_code == 201, created.text

        # Partial update of one attribute.
        patched = client.patch(f"{BASE}/entities/urn:ngsi-ld:Streetlight:E2E-001/attrs",
                               json={"powerState": {"type": "Property", "value": "off"}})
        assert patched.status_code == 204, patched.text

        # Query by type and q; the context comes back in a Link header for application/json.
        found = client.get(f"{BASE}/entities", params={"type": "Streetlight",
                                                       "q": 'powerState=="off"',
                                                       "count": "true"})
        assert found.status_code == 200, found.text
        assert 'rel="http://www.w3.org/ns/json-ld#context"' in found.headers["link"]
        assert found.headers["ngsild-results-count"] == "2"
        assert sorted(e["id"] for e in found.json()) == [
            "urn:ngsi-ld:Streetlight:E2E-001", "urn:ngsi-ld:Streetlight:E2E-002"]

        # Batch upsert: one new entity, one replaced.
        batch = client.post(f"{BASE}/entityOperations/upsert",
                            json=[streetlight(2, power="on"), streetlight(3)])
        assert batch.status_code == 201, batch.text
        assert batch.json() == ["urn:ngsi-ld:Streetlight:E2E-003"]

        simplified = client.get(f"{BASE}/entities/urn:ngsi-ld:Streetlight:E2E-002",
                                params={"format": "keyValues"})
        assert simplified.status_code == 200
        assert simplified.json()["powerState"] == "on"

        # Geo-query around the first streetlight.
        near = client.get(f"{BASE}/entities", params={
            "type": "Streetlight", "georel": "near;maxDistance==50", "geometry": "Point",
            "coordinates": "[9.191,45.46]"})
        assert near.status_code == 200, near.text
        assert [e["id"] for e in near.json()] == ["urn:ngsi-ld:Streetlight:E2E-001"]

        # Delete, then a 404 rendered as ProblemDetails.
        assert client.delete(f"{BASE}/entities/urn:ngsi-ld:Streetlight:E2E-003").status_code \
            == 204
        missing = client.get(f"{BASE}/entities/urn:ngsi-ld:Streetlight:E2E-003")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/json")
        assert missing.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


# -- two workers on a fresh database ----------------------------------------------------------


def _connection_inode(server_port: int, client_port: int) -> str:
    """The inode of the server side of the TCP connection 127.0.0.1:client_port ->
    127.0.0.1:server_port, read from /proc/net/tcp (addresses are hex, ports big-endian)."""
    wanted_local, wanted_remote = f"{server_port:04X}", f"{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = fields[1].rsplit(":", 1)[1]
        remote_port = fields[2].rsplit(":", 1)[1]
        if local_port == wanted_local and remote_port == wanted_remote:
            return fields[9]
    raise AssertionError(f"no server socket for client port {client_port}")


def _process_group(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            members.append(int(entry.name))
    return members


def _socket_owner(server: ServerProcess, inode: str) -> int:
    target = f"socket:[{inode}]"
    for pid in _process_group(server.pid):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no process of the server group holds {target}")


def _serving_pid(server: ServerProcess, response: httpx.Response) -> int:
    """Which process of the server accepted the connection that carried ``response``."""
    stream = response.extensions["network_stream"]
    client_port = stream.get_extra_info("client_addr")[1]
    return _socket_owner(server, _connection_inode(server.port, client_port))


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")
def test_two_workers_on_fresh_database_both_serve(start_server: StartServer,
                                                  tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    assert not database.exists()
    server = start_server(f"sqlite:///{database}", "--workers", "2")
    # Both workers ran the migrations on the same new file; neither may have failed (a
    # worker that fails is restarted by uvicorn, so the failure shows only in the output).
    output = server.wait_for_output("Application startup complete", times=2)
    assert "Traceback" not in output
    assert "startup failed" not in output

    # New connections until each worker has accepted at least one (the kernel hands a
    # connection to whichever worker accepts first). Keep every connection open meanwhile,
    # so the owner of each socket can be looked up.
    clients: dict[int, httpx.Client] = {}
    opened: list[httpx.Client] = []
    try:
        for _ in range(200):
            client = httpx.Client(base_url=server.base_url, timeout=10.0)
            opened.append(client)
            response = client.get("/version")
            assert response.status_code == 200
            clients.setdefault(_serving_pid(server, response), client)
            if len(clients) == 2:
                break
        assert len(clients) == 2, f"only worker(s) {sorted(clients)} accepted connections"

        # Each worker writes one entity and reads the one written by the other.
        workers = sorted(clients)
        for n, pid in enumerate(workers):
            response = clients[pid].post(f"{BASE}/entities", json=streetlight(n))
            assert response.status_code == 201, response.text
            assert _serving_pid(server, response) == pid
        for n, pid in enumerate(workers):
            other = f"{BASE}/entities/urn:ngsi-ld:Streetlight:E2E-{1 - n:03d}"
            response = clients[pid].get(other)
            assert response.status_code == 200, response.text
            assert _serving_pid(server, response) == pid
            patched = clients[pid].patch(f"{other}/attrs",
                                         json={"powerState": {"type": "Property",
                                                              "value": f"off-{n}"}})
            assert patched.status_code == 204, patched.text
        for n, pid in enumerate(workers):
            response = clients[pid].get(f"{BASE}/entities/urn:ngsi-ld:Streetlight:E2E-{n:03d}")
            assert response.json()["powerState"]["value"] == f"off-{1 - n}"
    finally:
        for client in opened:
            client.close()


def test_concurrent_migrations_on_one_new_file(tmp_path: Path) -> None:
    """The race two workers run into on a fresh file, made deterministic: the second one reads
    the schema version, then waits for the write lock while the first migrates and commits."""
    path = tmp_path / "race.db"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    second = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    first.execute("PRAGMA journal_mode = WAL")
    first.execute("BEGIN IMMEDIATE")  # the first worker holds the write lock

    waiting_for_lock = threading.Event()

    def trace(statement: str) -> None:
        if statement.startswith("BEGIN IMMEDIATE"):
            waiting_for_lock.set()

    second.set_trace_callback(trace)
    outcome: list[BaseException | int] = []

    def second_worker() -> None:
        try:
            outcome.append(migrate(second))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second_worker)
    thread.start()
    try:
        assert waiting_for_lock.wait(timeout=30)
        for statement in filter(None, (s.strip() for s in MIGRATIONS[0].split(";"))):
            first.execute(statement)
        first.execute("PRAGMA user_version = 1")
        first.execute("COMMIT")
    finally:
        thread.join(timeout=60)
    assert outcome == [len(MIGRATIONS)]
    assert second.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    first.close()
    second.close()


# -- the command line documents itself -------------------------------------------------------


def _help(*args: str) -> str:
    """``sinergia ARGS --help`` on a wide terminal, box drawing removed and whitespace collapsed
    so that a help text wrapped over lines still reads as one string."""
    env = {**clean_environment(), "COLUMNS": "300", "TERMINAL_WIDTH": "300", "NO_COLOR": "1"}
    result = subprocess.run([*sinergia_command(), *args, "--help"], capture_output=True,
                            text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    text = re.sub(r"[\u2500-\u257f]", " ", result.stdout)
    return " ".join(text.split())


def _first_paragraph(text: str | None) -> str:
    assert text, "a command without help text"
    return " ".join(text.strip().split("\n\n")[0].split())


def _check_group(group: Any, *path: str) -> None:
    """Every command of ``group`` (a typer/click group) is listed, with its help, in
    ``sinergia PATH --help``; sub-groups are checked the same way."""
    shown = _help(*path)
    assert group.commands, f"sinergia {' '.join(path)} has no commands"
    for name, command in group.commands.items():
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", shown), (name, shown)
        assert _first_paragraph(command.help) in shown, (name, shown)
        if hasattr(command, "commands"):
            _check_group(command, *path, name)


def test_help_documents_every_command() -> None:
    root = typer.main.get_command(cli_app)
    assert {"serve", "settings", "version"} <= set(root.commands)
    _check_group(root)


def test_serve_help_documents_every_setting() -> None:
    usage, _, shown = _help("serve").partition(" Options ")
    assert shown, usage
    # Options are listed in the order of the table; each row holds help, env var and default.
    positions = []
    for setting in SETTINGS:
        flag = re.compile(rf"(?<![\w-]){re.escape(setting.flag)}(?![\w-])")
        match = flag.search(shown, positions[-1] if positions else 0)
        assert match, f"{setting.flag} missing from `sinergia serve --help` (or out of order)"
        positions.append(match.start())
    for setting, start, end in zip(SETTINGS, positions, [*positions[1:], len(shown)],
                                   strict=True):
        row = shown[start:end]
        assert setting.help in row, (setting.name, row)
        assert setting.env in row, (setting.name, row)
        for alias in setting.aliases:
            assert alias in row, (setting.name, row)
        assert str(setting.default) in row, (setting.name, row)
        if setting.type is bool:
            assert f"--no-{setting.flag[2:]}" in row, (setting.name, row)
