"""Hosted @contexts are per partition (tenant): what is built from them is never served to
another partition, even when both resolve the same URL at the same time."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from sinergia.ngsild.context import ContextResolver
from sinergia.ngsild.errors import LdContextNotAvailable

URL = "http://sinergia.local/ngsi-ld/v1/jsonldContexts/shared-name"
HOSTED = {
    "alpha": {"@context": {"lux": "https://alpha.example/lux"}},
    "beta": {"@context": {"lux": "https://beta.example/lux"}},
}
tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def resolve_as(resolver: ContextResolver, name: str) -> str:
    token = tenant.set(name)
    try:
        return (await resolver.resolve(URL)).expand("lux")
    finally:
        tenant.reset(token)


@pytest.mark.anyio
async def test_a_cached_hosted_context_stays_in_its_partition() -> None:
    async def loader(url: str) -> dict[str, Any] | None:
        return HOSTED.get(tenant.get()) if url == URL else None

    resolver = ContextResolver(hosted_loader=loader, hosted_scope=tenant.get,
                               allow_remote=False)
    assert await resolve_as(resolver, "alpha") == "https://alpha.example/lux"
    assert await resolve_as(resolver, "beta") == "https://beta.example/lux"
    with pytest.raises(LdContextNotAvailable):
        await resolve_as(resolver, "gamma")
    assert await resolve_as(resolver, "alpha") == "https://alpha.example/lux"


@pytest.mark.anyio
async def test_concurrent_builds_in_two_partitions_are_not_shared() -> None:
    both_asked = asyncio.Event()
    asked: list[str] = []

    async def loader(url: str) -> dict[str, Any] | None:
        asked.append(tenant.get())
        if len(asked) == 2:
            both_asked.set()
        await both_asked.wait()  # neither build finishes before the other has started
        return HOSTED.get(tenant.get())

    resolver = ContextResolver(hosted_loader=loader, hosted_scope=tenant.get,
                               allow_remote=False)
    alpha, beta = await asyncio.gather(resolve_as(resolver, "alpha"),
                                       resolve_as(resolver, "beta"))
    assert (alpha, beta) == ("https://alpha.example/lux", "https://beta.example/lux")
    assert sorted(asked) == ["alpha", "beta"]
