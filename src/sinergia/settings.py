"""The one settings table.

Every setting is declared once in ``SETTINGS`` with its name, type, default and help. The
environment variable (``SINERGIA_<NAME>``), the ``sinergia serve`` flag (``--name-with-dashes``)
and the settings page of the docs (``sinergia settings --markdown``) are all derived from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

ENV_PREFIX = "SINERGIA_"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    aliases: tuple[str, ...] = ()  # further command-line flags, e.g. the short --database

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: str) -> Any:
        if self.type is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"{self.env}: expected true/false, got {raw!r}")
        if self.type is dict:
            return _parse_map(raw)
        try:
            return self.type(raw)
        except ValueError as exc:
            raise ValueError(f"{self.env}: expected {self.type.__name__}, got {raw!r}") from exc


def _parse_map(raw: str) -> dict[str, str]:
    """``url=path,url2=path2`` (the form an environment variable can hold)."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.rpartition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE pairs separated by commas, got {item!r}")
        result[key.strip()] = value.strip()
    return result


def _s(default: Any, help: str, aliases: tuple[str, ...] = ()) -> Any:
    """A settings field: its default and the help text shown in --help, env docs and docs/."""
    metadata = {"help": help, "aliases": aliases}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class Settings:
    """The table itself: one field per setting. Build instances with :func:`load_settings`."""

    database_url: str = _s("sqlite:///./sinergia.db",
                           "Where entities are stored: sqlite:///path.db (embedded) or "
                           "postgresql://user@host/db.", aliases=("--database",))
    host: str = _s("127.0.0.1", "Interface the HTTP server listens on.")
    port: int = _s(1026, "TCP port of the HTTP server (1026 is the NGSI-LD custom).")
    workers: int = _s(1, "Number of server processes.")
    log_level: str = _s("info", "Logging level: debug, info, warning, error.")
    max_body_bytes: int = _s(10 * 1024 * 1024, "Largest request body accepted; larger get 413.")
    default_limit: int = _s(20, "Page size of queries when the client gives no limit.")
    max_limit: int = _s(1000, "Largest page a client may ask for; above it, 403 TooManyResults.")
    max_batch_size: int = _s(10_000, "Most entities accepted in one batch operation.")
    context_map: dict[str, str] = _s({}, "Offline @context preload map: URL=file.jsonld pairs, "
                                         "comma separated.")
    context_fetch_timeout: float = _s(3.0, "Seconds allowed to fetch a remote @context before "
                                           "answering 503 LdContextNotAvailable.")
    context_cache_ttl: float = _s(86_400.0, "Seconds a fetched remote @context is kept before "
                                            "it is fetched again.")
    context_failure_ttl: float = _s(30.0, "Seconds a failed @context fetch is remembered "
                                          "before it is retried.")
    allow_remote_contexts: bool = _s(True, "Fetch @contexts that are neither bundled, mapped "
                                           "nor hosted (bounded by the timeout).")
    sqlite_synchronous: str = _s("full", "SQLite durability: full (survives power loss) or "
                                         "normal (survives a process crash).")
    sqlite_readers: int = _s(4, "Read connections kept open per process (SQLite).")
    write_batch_max: int = _s(512, "Most write requests grouped into one commit (SQLite).")
    postgres_pool_size: int = _s(10, "Most connections each server process opens to "
                                     "PostgreSQL.")
    postgres_statement_timeout: float = _s(30.0, "Seconds a PostgreSQL statement may run before "
                                                 "it is cancelled (the request gets 503).")
    postgres_connect_timeout: float = _s(5.0, "Seconds a request waits for a PostgreSQL "
                                              "connection before it gets 503.")
    lighting_app: bool = _s(False, "Run the adaptive-lighting app inside the server: it dims "
                                   "Streetlight entities by live traffic and publishes the "
                                   "energy saved (sinergia demo turns it on).")
    history: bool = _s(True, "Record every change of every attribute for the temporal API "
                             "(/temporal/entities).")
    max_history_instances: int = _s(1000, "Most instances of one attribute returned at once "
                                           "by the temporal API; longer histories come in "
                                           "pages (206 with Content-Range).")
    history_retention_days: float = _s(0.0, "Days of history kept; older instances are purged "
                                            "in the background. 0 keeps history forever.")
    notification_timeout: float = _s(10.0, "Seconds one notification attempt may take "
                                           "(connect, send, answer) before it counts as "
                                           "failed and is retried.")
    notification_max_attempts: int = _s(8, "Attempts to deliver one notification before it "
                                           "is given up (the subscription shows failed).")
    notification_backoff_base: float = _s(1.0, "Seconds before the first retry of a failed "
                                               "notification; doubled at each retry.")
    notification_backoff_cap: float = _s(300.0, "Longest wait, in seconds, between two "
                                                "attempts to deliver a notification.")
    notification_endpoint_concurrency: int = _s(4, "Most notifications in flight to one "
                                                   "receiver (scheme, host, port) at once; a "
                                                   "hanging receiver holds only these.")
    scps_username: str = _s("", "User of the UrbanDataset gateway (/scps/UrbanDatasetGateway): "
                                "the username its login accepts. Unset: login is refused.")
    # No default that works: an unset password refuses every login. Kept out of repr().
    scps_password: str = field(default="", repr=False, metadata={"help": (
        "Password of the UrbanDataset gateway user (prefer the environment variable to the "
        "flag). Unset: login is refused.")})
    scps_token_ttl: float = _s(3600.0, "Seconds a token from the UrbanDataset gateway's login "
                                       "stays valid.")
    mqtt_url: str = _s("", "MQTT broker whose device measurements are ingested: "
                           "mqtt://host:1883, or mqtts://host:8883 for TLS. Empty: no MQTT "
                           "ingestion (unless mqtt_embedded_broker is on).")
    mqtt_username: str = _s("", "User name for the MQTT broker of mqtt_url.")
    mqtt_password: str = field(default="", repr=False, metadata={"help": (
        "Password for the MQTT broker of mqtt_url (prefer the environment variable to the "
        "flag).")})
    mqtt_tls_ca: str = _s("", "CA certificate file (PEM) that signed the MQTT broker's "
                              "certificate; setting it turns TLS on. Empty: mqtts:// URLs are "
                              "checked against the system's CAs.")
    mqtt_topic_prefix: str = _s("sinergia", "First topic level(s) of device measurements: "
                                            "<prefix>/<tenant>/<entity type>/<device id>/attrs.")
    mqtt_client_id: str = _s("sinergia-ingest", "MQTT client id of the ingester: the broker "
                                                "keeps its session, and the messages sent "
                                                "while Sinergia is down, under this id.")
    mqtt_protocol: str = _s("5", "MQTT version spoken to the broker of mqtt_url: 5 or 3.1.1.")
    mqtt_require_provisioning: bool = _s(False, "Drop (and count as malformed) measurements of "
                                                "devices not provisioned at "
                                                "/sinergia/v1/devices, instead of creating "
                                                "urn:ngsi-ld:<type>:<device id>.")
    mqtt_embedded_broker: bool = _s(False, "Run an MQTT broker (amqtt) inside the server, on "
                                           "--host and mqtt_embedded_port, and ingest from it; "
                                           "it accepts anonymous clients.")
    mqtt_embedded_port: int = _s(1883, "TCP port of the embedded MQTT broker.")
    mqtt_batch_max: int = _s(1000, "Most MQTT messages written to the database together.")
    mqtt_batch_ms: float = _s(10.0, "Milliseconds an MQTT message may wait for others to be "
                                    "written together with it.")
    dashboard_tile_url: str = _s("", "Base-map tiles behind the dashboard's map, as a URL "
                                     "template the browser fetches "
                                     "(https://tiles.example.org/{z}/{x}/{y}.png). Empty: no "
                                     "tiles; the neighbourhood outlines are the backdrop and "
                                     "the dashboard needs no internet.")
    dashboard_tile_attribution: str = _s("", "Credit shown on the dashboard's map for the tiles "
                                             "of dashboard_tile_url, e.g. \"© OpenStreetMap "
                                             "contributors\".")

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None})
        return Settings(**values)


def _table() -> tuple[Setting, ...]:
    defaults = Settings()
    return tuple(
        Setting(f.name, _TYPES[f.type if isinstance(f.type, str) else f.type.__name__],
                getattr(defaults, f.name), f.metadata["help"], f.metadata.get("aliases", ()))
        for f in fields(Settings)
    )


_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool,
                           "dict[str, str]": dict}
SETTINGS: tuple[Setting, ...] = _table()
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
# Settings whose values are never shown (kept out of repr() too).
SECRET_SETTINGS: frozenset[str] = frozenset(f.name for f in fields(Settings) if not f.repr)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then ``SINERGIA_*`` environment variables, then explicit overrides (CLI)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.env in env:
            values[setting.name] = setting.parse(env[setting.env])
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(BY_NAME)
    if unknown:
        raise ValueError(f"Unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**values)


def markdown_table() -> str:
    """The settings reference page, generated so it cannot drift from the code."""
    lines = ["| Setting | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = s.default if s.default not in ({}, "") else "—"
        flags = ", ".join(f"`{flag}`" for flag in (s.flag, *s.aliases))
        lines.append(f"| {flags} | `{s.env}` | `{default}` | {s.help} |")
    return "\n".join(lines)
