"""``sinergia import urbandataset`` and ``sinergia export urbandataset``: files in, history and
current state in the broker (in-process with --database, or over HTTP), a valid 2.0 document
out, reports and exit statuses as documented."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from sinergia.adapters import cli as adapters_cli
from sinergia.adapters.broker_client import BrokerClient, HttpBroker
from sinergia.adapters.urbandataset import validate
from sinergia.api.app import create_app
from sinergia.cli import app
from sinergia.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
METERS = "https://smartdatamodels.org/dataModel.Energy/ThreePhaseAcMeasurement"
PERIOD = ["--from", "2026-11-20T00:00:00", "--to", "2026-11-21T00:00:00"]


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'city.db'}"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def fixture(name: str) -> str:
    return str(FIXTURES / name)


@pytest.fixture
def broker_api(database: str) -> Iterator[TestClient]:
    """The broker's API on the database the commands wrote, to read what they did."""

    def open_api() -> TestClient:
        return TestClient(create_app(Settings(database_url=database,
                                              allow_remote_contexts=False)))

    with open_api() as client:
        yield client


def meters(client: TestClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/ngsi-ld/v1/entities",
                                             params={"type": METERS}).json()
    return found


# -- import ---------------------------------------------------------------------------------------


def test_import_writes_history_and_reports(database: str, tmp_path: Path) -> None:
    result = run("import", "urbandataset", fixture("counter-reading-2.0.json"),
                 "--database", database)
    assert result.exit_code == 0, result.output
    assert ("counter-reading-2.0.json: CounterReading-2.0 from PELL-Milano-Illuminazione: "
            "12 of 12 lines imported into 3 ThreePhaseAcMeasurement entities; 159 values "
            "written.") in result.output
    with TestClient(create_app(Settings(database_url=database))) as client:
        current = meters(client)
        assert len(current) == 3
        history = client.get("/ngsi-ld/v1/temporal/entities", params={
            "type": METERS, "timerel": "after", "timeAt": "2026-11-19T00:00:00Z"}).json()
        energy = "https://smartdatamodels.org/dataModel.Energy/totalActiveEnergyImport"
        assert sorted(len(e[energy]) for e in history) == [4, 4, 4]
        # the current state is each meter's latest reading
        latest = {e["id"]: e[energy]["value"] for e in current}
        assert sorted(latest.values()) == [15828.562, 16831.188, 17833.812]


def test_importing_again_adds_no_duplicate_history(database: str) -> None:
    first = run("import", "urbandataset", fixture("counter-reading-2.0.json"),
                "--database", database)
    assert first.exit_code == 0, first.output
    again = run("import", "urbandataset", fixture("counter-reading-2.0.json"),
                "--database", database)
    assert again.exit_code == 0, again.output
    assert "0 values written, 159 already recorded." in again.output


def test_a_defective_document_is_imported_with_its_repairs_listed(database: str) -> None:
    result = run("import", "urbandataset", fixture("counter-reading-1.0-defective.json"),
                 "--database", database)
    assert result.exit_code == 1, result.output  # some lines were skipped
    output = result.output
    assert "3 of 5 lines imported into 2 ThreePhaseAcMeasurement entities" in output
    assert "Repairs" in output and "read as 'TotalActiveEnergy', its 2.0 name" in output
    assert "Skipped" in output and "TotalActivePower: 'n/a' is not a number" in output
    assert "warning: producer id 'id1' is a placeholder" in output


def test_an_unreadable_file_does_not_stop_the_others(database: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"UrbanDataset": {"specification": {}}}')
    result = run("import", "urbandataset", str(broken), fixture("weather-condition-2.0.xml"),
                 str(tmp_path / "missing.json"), "--database", database)
    assert result.exit_code == 2, result.output
    assert "broken.json: the UrbanDataset has no values.line list" in result.output
    assert "missing.json" in result.output
    assert "weather-condition-2.0.xml: WeatherCondition-2.0 from ARPA-Lombardia" in result.output


def test_producer_id_names_the_entities(database: str, broker_api: TestClient) -> None:
    result = run("import", "urbandataset", fixture("counter-reading-2.0.json"),
                 "--database", database, "--producer-id", "Comune-di-Milano",
                 "--tenant", "milano")
    assert result.exit_code == 0, result.output
    found = broker_api.get("/ngsi-ld/v1/entities", params={"type": METERS},
                           headers={"NGSILD-Tenant": "milano"}).json()
    assert len(found) == 3
    assert all(e["id"].startswith("urn:ngsi-ld:ThreePhaseAcMeasurement:Comune-di-Milano:")
               for e in found)
    assert meters(broker_api) == []  # the default tenant got nothing


def test_an_unreachable_broker_exits_2() -> None:
    result = run("import", "urbandataset", fixture("counter-reading-2.0.json"),
                 "--url", "http://127.0.0.1:1")
    assert result.exit_code == 2
    assert "cannot reach the broker" in result.output


# -- export ---------------------------------------------------------------------------------------


@pytest.fixture
def imported(database: str) -> str:
    for name in ("counter-reading-2.0.json", "weather-condition-2.0-ist.json"):
        result = run("import", "urbandataset", fixture(name), "--database", database)
        assert result.exit_code == 0, result.output
    return database


def test_export_writes_a_valid_2_0_document(imported: str, tmp_path: Path) -> None:
    out = tmp_path / "meters.json"
    result = run("export", "urbandataset", "--spec-id", "CounterReading-2.0", *PERIOD,
                 "--producer-id", "Comune-di-Milano", "--out", str(out), "--database", imported)
    assert result.exit_code == 0, result.output
    assert "CounterReading-2.0: 12 lines of ThreePhaseAcMeasurement written" in result.output
    document = orjson.loads(out.read_bytes())
    assert validate(document) == []
    ud = document["UrbanDataset"]
    assert ud["context"]["producer"] == {"id": "Comune-di-Milano"}
    assert ud["context"]["timeZone"] == "UTC+1"
    original = orjson.loads((FIXTURES / "counter-reading-2.0.json").read_bytes())
    assert energies(document) == energies(original)
    assert [line["period"] for line in ud["values"]["line"]] == [
        line["period"] for line in original["UrbanDataset"]["values"]["line"]]


def energies(document: dict[str, Any]) -> list[float]:
    return sorted(float(p["val"]) for line in document["UrbanDataset"]["values"]["line"]
                  for p in line["property"] if p["name"] == "TotalActiveEnergy")


def test_export_to_standard_output_in_another_zone(imported: str) -> None:
    result = run("export", "urbandataset", "--type", "WeatherObserved", "--spec-id",
                 "WeatherCondition-2.0", "--from", "2026-11-19T00:00:00Z", "--to",
                 "2026-11-22T00:00:00Z", "--time-zone", "UTC+5:30", "--database", imported)
    assert result.exit_code == 0, result.stderr
    document = orjson.loads(result.stdout)
    assert validate(document) == []
    assert document["UrbanDataset"]["context"]["timeZone"] == "UTC+5:30"
    assert "lines of WeatherObserved written" in result.stderr


def test_a_type_alone_names_its_specification_when_only_one_fits(imported: str) -> None:
    result = run("export", "urbandataset", "--type", "AirQualityObserved", *PERIOD,
                 "--database", imported)
    assert result.exit_code == 1  # AirMonitoring-2.0; nothing imported of that kind
    assert "no AirMonitoring values" in result.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--type", "ThreePhaseAcMeasurement", *PERIOD], "choose one with --spec-id"),
    ([*PERIOD], "give --type, --spec-id or both"),
    (["--spec-id", "CounterReading-2.0", "--from", "yesterday", "--to", "2026-11-21"],
     "not an ISO 8601"),
    (["--spec-id", "CounterReading-2.0", "--from", "2026-11-21", "--to", "2026-11-20"],
     "after its start"),
    (["--spec-id", "CounterReading-2.0", *PERIOD, "--time-zone", "Mars/Olympus"],
     "time zone"),
])
def test_bad_export_options_exit_2(imported: str, args: list[str], says: str) -> None:
    result = run("export", "urbandataset", *args, "--database", imported)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())


def test_an_empty_period_exits_1_and_writes_nothing(imported: str, tmp_path: Path) -> None:
    out = tmp_path / "nothing.json"
    result = run("export", "urbandataset", "--spec-id", "CounterReading-2.0", "--from",
                 "2020-01-01T00:00:00", "--to", "2020-01-02T00:00:00", "--out", str(out),
                 "--database", imported)
    assert result.exit_code == 1
    assert "nothing written" in result.stderr
    assert not out.exists()


# -- the same over HTTP ---------------------------------------------------------------------------


@pytest.fixture
def over_http(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' --url path against the app in this process (no server, no socket)."""

    @asynccontextmanager
    async def open_broker(url: str, db: str | None) -> AsyncIterator[BrokerClient]:
        assert db is None and url == "http://broker.example"
        api = create_app(Settings(database_url=database, allow_remote_contexts=False))
        await api.state.runtime.store.open()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                         base_url=url) as client:
                yield HttpBroker(client=client)
        finally:
            await api.state.runtime.store.close()

    monkeypatch.setattr(adapters_cli, "open_broker", open_broker)


def test_import_and_export_over_http(over_http: None, tmp_path: Path) -> None:
    url = ["--url", "http://broker.example"]
    imported = run("import", "urbandataset", fixture("counter-reading-2.0.json"), *url)
    assert imported.exit_code == 0, imported.output
    again = run("import", "urbandataset", fixture("counter-reading-2.0.json"), *url)
    assert "0 values written, 159 already recorded." in again.output
    out = tmp_path / "out.json"
    exported = run("export", "urbandataset", "--spec-id", "CounterReading-2.0", *PERIOD,
                   "--out", str(out), *url)
    assert exported.exit_code == 0, exported.output
    document = orjson.loads(out.read_bytes())
    assert validate(document) == []
    original = orjson.loads((FIXTURES / "counter-reading-2.0.json").read_bytes())
    assert energies(document) == energies(original)
