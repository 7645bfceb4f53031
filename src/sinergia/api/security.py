"""The one place where callers are identified. Today every caller is the anonymous
administrator; a later release plugs credentials and per-municipality roles in here (an
``Authenticator``) and nothing else in the API needs to change: handlers read the principal
from the ASGI scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from sinergia.api.problems import problem_response
from sinergia.broker.contexts import current_tenant
from sinergia.ngsild.errors import NgsiLdError

PRINCIPAL_KEY = "sinergia.principal"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[str]
    tenants: frozenset[str] | None = None  # None: every tenant


ANONYMOUS_ADMIN = Principal("anonymous", frozenset({"admin"}))


class Authenticator(Protocol):
    async def authenticate(self, scope: Scope) -> Principal:
        """The caller of this request; raise an NgsiLdError to refuse it (``Unauthenticated``
        with a challenge for missing or bad credentials, ``AccessDenied`` otherwise)."""


class AllowEveryone:
    async def authenticate(self, scope: Scope) -> Principal:
        return ANONYMOUS_ADMIN


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator | None = None) -> None:
        self.app = app
        self.authenticator = authenticator or AllowEveryone()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            scope[PRINCIPAL_KEY] = await self.authenticator.authenticate(scope)
        except NgsiLdError as refusal:
            # This middleware runs outside Starlette's exception handlers, so a refusal must
            # be rendered here; anything else still reaches the server-error handler (500).
            await problem_response(refusal)(scope, receive, send)
            return
        tenant = ""
        for name, value in scope["headers"]:
            if name == b"ngsild-tenant":
                tenant = value.decode("latin-1")
                break
        token = current_tenant.set(tenant)
        try:
            await self.app(scope, receive, send)
        finally:
            current_tenant.reset(token)
