"""Where GBFS files come from: a system's ``gbfs.json`` URL (httpx), or a local directory of
recorded files (``gbfs.json`` optional; each feed is read from ``<name>.json``, or the file its
discovery URL ends with)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from sinergia.adapters.gbfs.feed import FeedDocument, GbfsError, discovery_feeds, read_document

DISCOVERY = "gbfs"


class FeedSource(Protocol):
    """Fetches GBFS files by feed name."""

    @property
    def location(self) -> str:
        """The URL or path this source reads, for the entities' ``source`` attribute."""

    async def feeds(self) -> dict[str, str]:
        """Feed name → where it is read (URL or file path), from discovery."""

    async def fetch(self, name: str) -> FeedDocument:
        """The current document of feed ``name``; GbfsError when it cannot be had."""


def _decode(where: str, body: bytes, name: str) -> FeedDocument:
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GbfsError(f"{where}: not JSON ({exc})") from None
    return read_document(name, document)


class HttpFeedSource:
    """A GBFS system on the web, starting from its auto-discovery URL (``gbfs.json``)."""

    def __init__(self, url: str, *, language: str | None = None,
                 client: httpx.AsyncClient | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.language = language
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        self._feeds: dict[str, str] | None = None

    @property
    def location(self) -> str:
        return self.url

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def _get(self, url: str, name: str) -> FeedDocument:
        try:
            response = await self.client.get(url)
        except httpx.HTTPError as exc:
            raise GbfsError(f"{url}: {exc!r}") from None
        if response.status_code != 200:
            raise GbfsError(f"{url}: HTTP {response.status_code}")
        return _decode(url, response.content, name)

    async def feeds(self) -> dict[str, str]:
        discovery = await self._get(self.url, DISCOVERY)
        self._feeds = discovery_feeds(discovery, self.language)
        return dict(self._feeds)

    async def fetch(self, name: str) -> FeedDocument:
        if name == DISCOVERY:
            return await self._get(self.url, name)
        if self._feeds is None:
            await self.feeds()
        assert self._feeds is not None
        url = self._feeds.get(name)
        if url is None:
            raise GbfsError(f"{self.url} lists no {name!r} feed")
        return await self._get(url, name)


class DirectoryFeedSource:
    """Recorded GBFS files in a directory (tests, replays, systems published as files)."""

    def __init__(self, directory: Path, *, language: str | None = None) -> None:
        if not directory.is_dir():
            raise GbfsError(f"{directory}: not a directory")
        self.directory = directory
        self.language = language
        self._feeds: dict[str, Path] | None = None

    @property
    def location(self) -> str:
        return self.directory.resolve().as_uri()

    def _read(self, path: Path, name: str) -> FeedDocument:
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise GbfsError(f"{path}: {exc.strerror}") from None
        return _decode(str(path), body, name)

    def _files(self) -> dict[str, Path]:
        discovery = self.directory / f"{DISCOVERY}.json"
        files: dict[str, Path] = {}
        if discovery.is_file():
            for name, url in discovery_feeds(self._read(discovery, DISCOVERY),
                                             self.language).items():
                # A recorded gbfs.json keeps its web URLs: read the file each one ends with.
                basename = Path(urlsplit(url).path).name or name
                candidate = self.directory / basename
                if not candidate.suffix:
                    candidate = candidate.with_suffix(".json")
                files[name] = candidate if candidate.is_file() else \
                    self.directory / f"{name}.json"
        for path in sorted(self.directory.glob("*.json")):
            files.setdefault(path.stem, path)
        files.pop(DISCOVERY, None)
        return files

    async def feeds(self) -> dict[str, str]:
        self._feeds = self._files()
        return {name: str(path) for name, path in self._feeds.items()}

    async def fetch(self, name: str) -> FeedDocument:
        if name == DISCOVERY:
            return self._read(self.directory / f"{DISCOVERY}.json", name)
        if self._feeds is None or name not in self._feeds:
            self._feeds = self._files()
        path = self._feeds.get(name)
        if path is None:
            raise GbfsError(f"{self.directory} has no {name!r} feed")
        return self._read(path, name)


def open_source(location: str, *, language: str | None = None,
                client: httpx.AsyncClient | None = None) -> HttpFeedSource | DirectoryFeedSource:
    """A source for an ``http(s)://`` URL of gbfs.json, or a local directory."""
    if location.startswith(("http://", "https://")):
        return HttpFeedSource(location, language=language, client=client)
    return DirectoryFeedSource(Path(location), language=language)
