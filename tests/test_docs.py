"""The documentation cannot rot: everything it shows is checked against the code.

- docs/settings.md holds exactly the table ``sinergia settings --markdown`` prints;
- docs/cli.md names every command and option of the ``sinergia`` command line, and every
  ``sinergia …`` line in a doc uses commands and flags that exist;
- every ```json block marked ``<!-- example: entity -->`` is POSTed to a fresh broker (201);
- every ```bash block that uses curl is run, in order, as one session against an in-process
  broker: an empty one, or the demo city for the pages in CITY_DOCS. A comment line
  ``# 404 …`` right before a ``curl`` gives the status it must answer; otherwise it must
  succeed. A block preceded by ``<!-- docs-test: skip (why) -->`` is not run;
- every q / geoQ / scopeQ / type expression in docs/queries.md parses;
- every relative link (and #anchor) in README.md and docs/ points at something that exists.

The bash blocks are read by a deliberately small shell: ``NAME=value``, ``NAME=$(…)``,
``curl`` (``-s -S -i -g -X -H -d -o -w``) and ``| python3 -c '…'``. Anything else in a block
that is run is an error here, so examples stay copy-and-paste runnable.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
import typer.main
from starlette.testclient import TestClient
from typer.testing import CliRunner

from sinergia.api.app import create_app
from sinergia.cli import app as cli_app
from sinergia.ngsild.errors import BadRequestData
from sinergia.ngsild.geo import parse_geoq, parse_geoq_object
from sinergia.ngsild.model import LOCATION
from sinergia.ngsild.qlang import parse_q, parse_scope_q, parse_type_expr
from sinergia.settings import Settings, markdown_table
from sinergia.sim.milano import MILANO_CONTEXT_DOCUMENT, city_entities

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
# Pages whose examples query the demo city (`sinergia demo`) rather than an empty broker.
CITY_DOCS = ("queries.md", "demo.md")
# The broker as the docs address it, and as the in-process one names itself (Location headers).
BROKER_URLS = ("http://127.0.0.1:1026", "http://localhost:1026", "http://testserver")
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
# A shell command that does it (no "!" in it: interactive bash would expand it).
REGENERATE_COMMAND = (
    r""".venv/bin/python -c "import pathlib, re; from sinergia.settings import markdown_table; """
    r"""p = pathlib.Path('docs/settings.md'); p.write_text(re.sub(r'(?s)(settings:start -->\n)"""
    r""".*?(\n<.-- settings:end)', lambda m: m[1] + markdown_table() + m[2], p.read_text()))""" '"')
REGENERATE = ("Regenerate it: replace the lines between <!-- settings:start --> and "
              "<!-- settings:end --> in docs/settings.md with the output of "
              "`sinergia settings --markdown`, for instance with\n  " + REGENERATE_COMMAND)


# -- reading Markdown ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    line: int           # 1-based line of the first line of the body
    lines: list[str]
    marker: str | None  # the HTML comment right before the fence, if any

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(`{3,})\s*([\w+-]*)\s*$", lines[i])
        if fence is None:
            i += 1
            continue
        marker = None
        for previous in reversed(lines[:i]):
            if previous.strip():
                comment = re.fullmatch(r"\s*<!--\s*(.*?)\s*-->\s*", previous)
                marker = comment.group(1) if comment else None
                break
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence.group(1):
            end += 1
        found.append(Block(path.name, fence.group(2), i + 2, lines[i + 1:end], marker))
        i = end + 1
    return found


def prose(path: Path) -> str:
    """The page without its fenced blocks."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"^(`{3,}).*?^\1\s*$", "", text, flags=re.MULTILINE | re.DOTALL)


# -- settings ------------------------------------------------------------------------------------


def test_settings_page_holds_the_generated_table() -> None:
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- settings:start -->\n(.*?)\n?<!-- settings:end -->", text, re.DOTALL)
    assert match is not None, "docs/settings.md lacks the settings markers. " + REGENERATE
    printed = CliRunner().invoke(cli_app, ["settings", "--markdown"])
    assert printed.exit_code == 0, printed.output
    assert printed.output.strip() == markdown_table().strip()
    assert match.group(1).strip() == printed.output.strip(), (
        "The settings table in docs/settings.md differs from the settings in "
        "src/sinergia/settings.py. " + REGENERATE)


# -- the command line ----------------------------------------------------------------------------


def cli_commands() -> dict[str, Any]:
    """Every command path of the typer app ("serve", "db", "db upgrade") → its (click-style)
    command. Duck-typed: typer ships its own copy of click."""
    found: dict[str, Any] = {}

    def walk(command: Any, path: str) -> None:
        if path:
            found[path] = command
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(cli_app), "")
    assert {"serve", "demo", "settings", "version", "db upgrade"} <= set(found), found
    return found


def option_names(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    return names


def test_every_cli_command_and_option_is_documented() -> None:
    cli_page = (DOCS / "cli.md").read_text(encoding="utf-8")
    settings_page = (DOCS / "settings.md").read_text(encoding="utf-8")
    missing = [f"sinergia {path}" for path in cli_commands()
               if not re.search(rf"\bsinergia {re.escape(path)}\b", cli_page)]
    assert not missing, f"docs/cli.md does not mention: {', '.join(missing)}"
    undocumented = [
        f"sinergia {path} {option}"
        for path, command in cli_commands().items()
        for option in sorted(option_names(command) - {"--help"})
        # The serve flags are the settings table, documented in settings.md.
        if not re.search(rf"`{re.escape(option)}\b", cli_page)
        and not (path == "serve" and f"`{option}`" in settings_page)
        and not (path == "serve" and option.startswith("--no-"))
    ]
    assert not undocumented, f"options missing from docs/cli.md: {', '.join(undocumented)}"


def sinergia_lines() -> Iterator[tuple[str, list[str]]]:
    """(where, words after "sinergia") for every sinergia command in a shell block."""
    for path in [*PAGES, ROOT / "README.md"]:
        for block in blocks(path):
            if block.lang != "bash":
                continue
            for command in shell_commands(block):
                for match in re.finditer(r"(?:^|\s)(?:\S*/bin/)?sinergia\s+([^|;&]*)",
                                         command.text):
                    yield f"{path.name}:{command.line}", shlex.split(match.group(1))


def test_documented_command_lines_exist() -> None:
    commands = cli_commands()
    problems = []
    seen = 0
    for where, words in sinergia_lines():
        seen += 1
        path = ""
        for word in words:
            if word.startswith("-"):
                break
            if f"{path} {word}".strip() in commands:
                path = f"{path} {word}".strip()
            else:
                break
        if not path:
            if words != ["--help"]:
                problems.append(f"{where}: no command in 'sinergia {' '.join(words)}'")
            continue
        known = option_names(commands[path])
        problems += [f"{where}: 'sinergia {path}' has no option {word.split('=')[0]}"
                     for word in words if word.startswith("--")
                     and word.split("=")[0] not in known]
    assert seen >= 5, "the docs should show how to run sinergia"
    assert not problems, "\n".join(problems)


# -- entity examples -----------------------------------------------------------------------------


ENTITY_EXAMPLES = [b for page in PAGES for b in blocks(page) if b.marker == "example: entity"]


def test_there_are_entity_examples() -> None:
    assert len(ENTITY_EXAMPLES) >= 3
    assert all(b.lang == "json" for b in ENTITY_EXAMPLES)


@pytest.mark.parametrize("example", ENTITY_EXAMPLES, ids=lambda b: f"{b.page}:{b.line}")
def test_entity_example_is_accepted(client: TestClient, example: Block) -> None:
    body = orjson.loads(example.text)
    media = "application/ld+json" if "@context" in body else "application/json"
    response = client.post("/ngsi-ld/v1/entities", content=example.text.encode(),
                           headers={"Content-Type": media})
    assert response.status_code == 201, f"{example.page}:{example.line}: {response.text}"


# -- the bash sessions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShellCommand:
    page: str
    line: int
    text: str
    expect: int | None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text[:300]}"


def shell_commands(block: Block) -> list[ShellCommand]:
    """The commands of a bash block: continuation lines and multi-line quotes joined."""
    commands: list[ShellCommand] = []
    expect: int | None = None
    buffer: list[str] = []
    start = 0
    for offset, line in enumerate(block.lines):
        if not buffer:
            stripped = line.strip()
            if not stripped:
                expect = None
                continue
            if stripped.startswith("#"):
                status = re.match(r"#\s*(\d{3})\b", stripped)
                expect = int(status.group(1)) if status else None
                continue
            start = block.line + offset
        buffer.append(line)
        joined = "\n".join(buffer)
        if joined.endswith("\\"):
            continue
        try:
            shlex.split(joined)
        except ValueError:  # a quote spans several lines
            continue
        commands.append(ShellCommand(block.page, start, re.sub(r"\\\n\s*", " ", joined),
                                     expect))
        buffer, expect = [], None
    assert not buffer, f"{block.page}:{block.line}: unfinished command in the block"
    return commands


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Session:
    """Runs documented commands against an in-process broker, one page at a time."""

    client: TestClient
    read_only: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)

    def run(self, command: ShellCommand) -> None:
        assignment = re.fullmatch(r"([A-Za-z_]\w*)=(.*)", command.text, re.DOTALL)
        if assignment is not None:
            name, value = assignment.groups()
            if value.startswith("$(") and value.endswith(")"):
                self.variables[name] = self.pipeline(command, value[2:-1]).rstrip("\n")
            else:
                (word,) = shlex.split(command.text)
                self.variables[name] = self.expand(command, word.split("=", 1)[1])
            return
        self.pipeline(command, command.text)

    def expand(self, command: ShellCommand, word: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            assert name in self.variables, f"{command}\n${name} is not set by the page"
            return self.variables[name]

        return re.sub(r"\$\{(\w+)\}|\$([A-Za-z_]\w*)", value, word)

    def pipeline(self, command: ShellCommand, text: str) -> str:
        lexer = shlex.shlex(text, posix=True, punctuation_chars="|")
        lexer.whitespace_split = True
        lexer.commenters = ""
        stages: list[list[str]] = [[]]
        for token in lexer:
            if token == "|":
                stages.append([])
            else:
                stages[-1].append(self.expand(command, token))
        output = self.curl(command, stages[0])
        for stage in stages[1:]:
            assert stage[:2] == ["python3", "-c"] and len(stage) == 3, (
                f"{command}\nonly '| python3 -c …' may follow curl in a docs example")
            done = subprocess.run([sys.executable, "-c", stage[2]], input=output, text=True,
                                  capture_output=True, check=False, timeout=60)
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            output = done.stdout
        return output

    def curl(self, command: ShellCommand, words: list[str]) -> str:
        assert words and words[0] == "curl", f"{command}\nonly curl commands can be run here"
        method = data = url = None
        headers: list[tuple[str, str]] = []
        include = discard = False
        write_out = ""
        args = iter(words[1:])
        for word in args:
            if re.fullmatch(r"-[sSig]+", word) or word in ("--globoff", "--silent"):
                include = include or "i" in word
            elif word in ("-X", "--request"):
                method = next(args)
            elif word in ("-H", "--header"):
                name, _, value = next(args).partition(":")
                headers.append((name.strip(), value.strip()))
            elif word in ("-d", "--data", "--data-raw"):
                data = next(args)
                assert not data.startswith("@"), f"{command}\nbodies must be inline"
            elif word in ("-o", "--output"):
                discard = next(args) == "/dev/null"
            elif word in ("-w", "--write-out"):
                write_out = next(args)
            elif word.startswith(BROKER_URLS):
                url = word
            else:
                raise AssertionError(f"{command}\nthe docs tests do not know curl {word!r}")
        assert url is not None, f"{command}\nno URL"
        method = method or ("POST" if data is not None else "GET")
        if data is not None and not any(n.lower() == "content-type" for n, _ in headers):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))  # as curl
        path = url[len(next(u for u in BROKER_URLS if url.startswith(u))):]
        if self.read_only:
            assert method == "GET" or path.startswith("/ngsi-ld/v1/entityOperations/query"), (
                f"{command}\nthe demo-city pages only read: the pages share one city")
        response = self.client.request(method, path, headers=headers,
                                       content=None if data is None else data.encode())
        exchange = Exchange(method, path, response.status_code, dict(response.headers),
                            response.text)
        self.exchanges.append(exchange)
        self.check(command, exchange)
        out = "" if discard else exchange.body
        if include:
            head = "".join(f"{k}: {v}\r\n" for k, v in response.headers.items())
            out = f"HTTP/1.1 {response.status_code}\r\n{head}\r\n{out}"
        return out + self.write_out(write_out, response)

    @staticmethod
    def write_out(fmt: str, response: Any) -> str:
        fmt = fmt.replace("%{http_code}", str(response.status_code)).replace("\\n", "\n")
        return re.sub(r"%header\{([^}]+)\}", lambda m: response.headers.get(m.group(1), ""), fmt)

    def check(self, command: ShellCommand, exchange: Exchange) -> None:
        said = f"{command}\n→ {exchange.status} {exchange.body[:600]}"
        if command.expect is not None:
            assert exchange.status == command.expect, said
            if exchange.status >= 400:
                problem = orjson.loads(exchange.body)
                assert problem["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/"), said
            return
        assert exchange.status < 400, said
        is_query = exchange.path.startswith("/ngsi-ld/v1/entityOperations/query") or (
            exchange.method == "GET" and exchange.path.startswith("/ngsi-ld/v1/entities?"))
        if self.read_only and is_query:
            # A demo-city query that finds nothing is almost always a broken example.
            count = int(exchange.headers.get("ngsild-results-count", "0"))
            assert exchange.body.strip() not in ("[]", "") or count > 0, \
                f"{said}\n(the example finds nothing in the demo city)"


def page_commands(page: Path) -> list[ShellCommand]:
    """The commands of the page's bash blocks that talk to the broker (those with a curl)."""
    return [c for b in blocks(page) if b.lang == "bash" and re.search(r"\bcurl\b", b.text)
            and not (b.marker or "").startswith("docs-test: skip") for c in shell_commands(b)]


def run_page(client: TestClient, page: Path, *, read_only: bool) -> Session:
    session = Session(client, read_only=read_only)
    for command in page_commands(page):
        session.run(command)
    return session


FRESH_PAGES = [p for p in [*PAGES, ROOT / "README.md"]
               if p.name not in CITY_DOCS and page_commands(p)]


@pytest.mark.parametrize("page", FRESH_PAGES, ids=lambda p: p.name)
def test_page_examples_run_on_an_empty_broker(client: TestClient, page: Path) -> None:
    session = run_page(client, page, read_only=False)
    assert session.exchanges


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The demo city, loaded once through the API as `sinergia demo` does."""
    database = tmp_path_factory.mktemp("city") / "city.db"
    settings = Settings(database_url=f"sqlite:///{database}", sqlite_synchronous="normal",
                        allow_remote_contexts=False)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        hosted = client.post("/ngsi-ld/v1/jsonldContexts", json=MILANO_CONTEXT_DOCUMENT)
        assert hosted.status_code == 201, hosted.text
        link = f'<{hosted.headers["location"]}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        entities = city_entities()
        for start in range(0, len(entities), 1000):
            loaded = client.post("/ngsi-ld/v1/entityOperations/create",
                                 json=entities[start:start + 1000], headers={"Link": link})
            assert loaded.status_code == 201, loaded.text[:500]
        yield client


@pytest.mark.parametrize("name", CITY_DOCS)
def test_page_examples_run_on_the_demo_city(city: TestClient, name: str) -> None:
    session = run_page(city, DOCS / name, read_only=True)
    assert len(session.exchanges) >= 5


# -- the query languages in queries.md -----------------------------------------------------------


def documented_queries() -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(where, parameters, should parse) for every query shown in docs/queries.md: the URLs
    and JSON bodies of its curl commands and the `q=…`-style code spans of its prose."""
    page = DOCS / "queries.md"
    for command in page_commands(page):
        words = shlex.split(command.text)
        fails = command.expect is not None and command.expect >= 400
        for position, word in enumerate(words):
            if word.startswith(BROKER_URLS) and "?" in word:
                yield str(command), dict(parse_qsl(urlsplit(word).query,
                                                   keep_blank_values=True)), not fails
            if word == "-d" and words[position + 1].lstrip().startswith("{"):
                yield str(command), {"body": orjson.loads(words[position + 1])}, not fails
    for span in re.findall(r"`([^`\n]+)`", prose(page)):
        if re.match(r"(q|scopeQ|type|georel)=.", span):
            # Code spans show the syntax itself, not its URL encoding; "\|" is a table's "|".
            syntax = span.replace("\\|", "|")
            yield f"queries.md: `{span}`", dict(p.split("=", 1) for p in syntax.split("&")), True


def parse_all(params: dict[str, Any]) -> list[str]:
    """Parse every expression in ``params``; return the kinds found (q, geo:<georel>, …)."""
    kinds = []
    body = params.get("body", {})
    for source in (params, body):
        if "q" in source:
            parse_q(source["q"])
            kinds.append("q")
        if "scopeQ" in source:
            parse_scope_q(source["scopeQ"])
            kinds.append("scopeQ")
        if isinstance(source.get("type"), str) and source is params:
            parse_type_expr(source["type"])
            kinds.append("type")
    if any(k in params for k in ("georel", "geometry", "coordinates")):
        geo = parse_geoq(params.get("georel"), params.get("geometry"), params.get("coordinates"),
                         LOCATION)
        kinds.append(f"geo:{geo.georel}" + (":min" if geo.min_distance is not None else ""))
    if isinstance(body.get("geoQ"), dict):
        geo = parse_geoq_object(body["geoQ"], lambda term: term)
        kinds.append(f"geo:{geo.georel}")
    return kinds


def test_every_query_in_queries_md_parses() -> None:
    kinds: list[str] = []
    for where, params, should_parse in documented_queries():
        if should_parse:
            try:
                kinds += parse_all(params)
            except BadRequestData as exc:  # the message names the example
                raise AssertionError(f"{where}\n{exc.detail}") from None
        else:
            with pytest.raises(BadRequestData):
                parse_all(params)
    assert kinds.count("q") >= 15 and kinds.count("type") >= 10, kinds
    assert kinds.count("scopeQ") >= 4, kinds
    georels = {k for k in kinds if k.startswith("geo:")}
    every = {"geo:near", "geo:near:min", "geo:within", "geo:contains", "geo:intersects",
             "geo:equals", "geo:disjoint", "geo:overlaps"}
    assert every <= georels, f"queries.md shows no example of {sorted(every - georels)}"


def test_every_page_is_on_the_map() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    unlisted = [p.name for p in PAGES if p.name != "index.md" and f"]({p.name})" not in index]
    assert not unlisted, f"docs/index.md does not link: {', '.join(unlisted)}"


# -- links ---------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", prose(path), re.MULTILINE)}


def test_links_point_at_existing_pages_and_headings() -> None:
    broken = []
    for page in [*PAGES, ROOT / "README.md"]:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(page)):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
