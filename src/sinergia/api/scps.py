"""/scps/UrbanDatasetGateway/…: ENEA's SCPS Communication 2.0 "UrbanDatasetGateway" (REST/JSON).

City solutions push UrbanDataset documents here and request them back, as they do with ENEA's
Smart City Platform. Every operation is a ``POST`` with a JSON body; the answer is always HTTP
200 with a two-digit ``code`` and a ``message`` in the body, errors included — that is the
protocol. ``/login`` gives a bearer token (credentials and its lifetime are the
``scps_username``/``scps_password``/``scps_token_ttl`` settings; without credentials every
login is refused); every other operation but ``/test`` needs ``Authorization: Bearer <token>``.

The work is done by :mod:`sinergia.adapters.urbandataset.gateway`: a pushed document is kept
whole and imported into the broker like ``sinergia import urbandataset`` does. The tenant is
the ``NGSILD-Tenant`` header, as everywhere in Sinergia (none: the default tenant).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from sinergia.adapters.broker_client import BrokerUnavailable, InProcessBroker
from sinergia.adapters.urbandataset.gateway import (
    AlreadyExists,
    BadGatewayRequest,
    DocumentNotFound,
    GatewayRefusal,
    InvalidDocument,
    UrbanDatasetGateway,
    parse_resource_id,
    request_resource_id,
)
from sinergia.adapters.urbandataset.search import Filters, parse_filters
from sinergia.api.http import parse_json, plain_json, read_body, tenant_of
from sinergia.api.runtime import runtime
from sinergia.broker.urbandatasets import GatewaySessions, Session, UrbanDatasetService
from sinergia.ngsild.errors import NgsiLdError
from sinergia.settings import Settings

log = logging.getLogger(__name__)

PREFIX: Final = "/scps/UrbanDatasetGateway"


class Code:
    """The answer codes. Successes are ENEA's; ENEA's documents list no error codes, so the
    errors (10 and above) are Sinergia's, one per cause."""

    SUCCESSFUL = "00"  # test, isAlive, logout
    AUTHENTICATED = "01"
    PUSHED = "02"
    FOUND = "03"
    DELETED = "08"
    AUTHENTICATION_FAILED = "10"
    LOGIN_DISABLED = "11"
    UNAUTHORIZED = "12"
    TOKEN_EXPIRED = "13"
    BAD_REQUEST = "20"
    INVALID_URBANDATASET = "21"
    ALREADY_EXISTS = "22"
    NOT_FOUND = "30"
    INTERNAL_ERROR = "90"


class Refused(Exception):
    """An error answer: HTTP 200, ``{code, message, detail}``."""

    def __init__(self, code: str, message: str, detail: str) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(slots=True)
class GatewayState:
    """What the gateway keeps per application, built on first use from the runtime."""

    settings: Settings
    sessions: GatewaySessions
    gateway: UrbanDatasetGateway


@dataclass(frozen=True, slots=True)
class Call:
    body: dict[str, Any]
    tenant: str
    state: GatewayState
    token: str | None
    session: Session | None


def gateway_state(request: Request) -> GatewayState:
    state: GatewayState | None = getattr(request.app.state, "scps", None)
    if state is None:
        rt = runtime(request)
        broker = InProcessBroker(rt.entities, rt.contexts, temporal=rt.temporal)
        state = GatewayState(rt.settings, GatewaySessions(rt.store),
                             UrbanDatasetGateway(UrbanDatasetService(rt.store), broker))
        request.app.state.scps = state
    return state


def _answer(code: str, message: str, **members: Any) -> Response:
    return plain_json({"code": code, "message": message, **members})


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _authenticate(request: Request, state: GatewayState) -> tuple[str, Session]:
    token = _bearer(request)
    if token is None:
        raise Refused(Code.UNAUTHORIZED, "Unauthorized",
                      "this operation needs the header Authorization: Bearer <token>, with "
                      "the token /login gives")
    session = await state.sessions.find(token)
    if session is None:
        raise Refused(Code.UNAUTHORIZED, "Unauthorized",
                      "the token is not valid: never given, or logged out")
    if state.sessions.expired(session):
        await state.sessions.close(token)
        raise Refused(Code.TOKEN_EXPIRED, "Token Expired",
                      "the token has expired: log in again")
    return token, session


async def _body(request: Request, settings: Settings) -> dict[str, Any]:
    raw = await read_body(request, settings.max_body_bytes)
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise Refused(Code.BAD_REQUEST, "Bad Request", "the body must be a JSON object")
    return body


Handler = Callable[[Call], Awaitable[Response]]


def operation(handler: Handler, *, authenticated: bool = True
              ) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint: read the body and the tenant, check the token, run ``handler``, and
    turn every failure into an answer in the body."""

    async def endpoint(request: Request) -> Response:
        state = gateway_state(request)
        try:
            try:
                tenant = tenant_of(request)
                body = await _body(request, state.settings)
            except NgsiLdError as exc:
                raise Refused(Code.BAD_REQUEST, "Bad Request", exc.detail) from None
            token, session = (await _authenticate(request, state) if authenticated
                              else (None, None))
            return await handler(Call(body, tenant, state, token, session))
        except Refused as refused:
            return _answer(refused.code, refused.message, detail=refused.detail)
        except GatewayRefusal as exc:
            code, message = _REFUSALS.get(type(exc), (Code.BAD_REQUEST, "Bad Request"))
            return _answer(code, message, detail=str(exc))
        except BrokerUnavailable as exc:
            log.error("UrbanDataset gateway: broker unavailable: %s", exc)
            return _answer(Code.INTERNAL_ERROR, "Internal Error", detail=str(exc))
        except Exception as exc:
            log.exception("UrbanDataset gateway: %s failed", request.url.path)
            return _answer(Code.INTERNAL_ERROR, "Internal Error",
                           detail=f"{type(exc).__name__}: the server could not complete "
                                  "the operation")

    return endpoint


_REFUSALS: Final[dict[type[GatewayRefusal], tuple[str, str]]] = {
    BadGatewayRequest: (Code.BAD_REQUEST, "Bad Request"),
    InvalidDocument: (Code.INVALID_URBANDATASET, "Invalid UrbanDataset"),
    AlreadyExists: (Code.ALREADY_EXISTS, "Push Failed"),
    DocumentNotFound: (Code.NOT_FOUND, "UrbanDataset Not Found"),
}


def _filters(call: Call, **options: Any) -> Filters:
    try:
        return parse_filters(call.body, **options)
    except ValueError as exc:
        raise Refused(Code.BAD_REQUEST, "Bad Request", str(exc)) from None


# -- the operations ------------------------------------------------------------------------------


async def test(call: Call) -> Response:
    return _answer(Code.SUCCESSFUL, "Successful")


async def login(call: Call) -> Response:
    settings = call.state.settings
    if not settings.scps_username or not settings.scps_password:
        raise Refused(Code.LOGIN_DISABLED, "Login Disabled",
                      "the gateway has no credentials: set SINERGIA_SCPS_USERNAME and "
                      "SINERGIA_SCPS_PASSWORD (or --scps-username/--scps-password)")
    username, password = call.body.get("username"), call.body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise Refused(Code.BAD_REQUEST, "Bad Request", "username and password are required")
    # Both compared whatever the first gives, in constant time: no timing hints.
    right_user = hmac.compare_digest(username.encode(), settings.scps_username.encode())
    right_password = hmac.compare_digest(password.encode(), settings.scps_password.encode())
    if not (right_user and right_password):
        log.warning("UrbanDataset gateway: failed login for %r", username[:80])
        raise Refused(Code.AUTHENTICATION_FAILED, "Authentication Failed",
                      "wrong username or password")
    token, session = await call.state.sessions.open(username, settings.scps_token_ttl)
    return _answer(Code.AUTHENTICATED, "Authentication Successful", token=token,
                   expires_at=_iso(session.expires))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


async def logout(call: Call) -> Response:
    assert call.token is not None
    await call.state.sessions.close(call.token)
    return _answer(Code.SUCCESSFUL, "Logout Successful")


async def is_alive(call: Call) -> Response:
    assert call.session is not None
    return _answer(Code.SUCCESSFUL, "Successful", username=call.session.username,
                   expires_at=_iso(call.session.expires))


async def push(call: Call) -> Response:
    resource = parse_resource_id(call.body.get("resource_id"))
    outcome = await call.state.gateway.push(call.tenant, resource, call.body.get("dataset"))
    return _answer(Code.PUSHED, "Push Successful", detail=outcome.detail())


def _found(dataset: Any) -> Response:
    return _answer(Code.FOUND, "Request Successful", dataset=dataset)


async def basic_request(call: Call) -> Response:
    resource_id = request_resource_id(call.body.get("resource_id"))
    return _found(await call.state.gateway.every(call.tenant, resource_id))


async def last_request(call: Call) -> Response:
    resource_id = request_resource_id(call.body.get("resource_id"))
    return _found(await call.state.gateway.last(call.tenant, resource_id))


async def specific_request(call: Call) -> Response:
    resource_id = request_resource_id(call.body.get("resource_id"))
    return _found(await call.state.gateway.specific(call.tenant, resource_id,
                                                    call.body.get("timestamp")))


async def delete(call: Call) -> Response:
    resource_id = request_resource_id(call.body.get("resource_id"))
    await call.state.gateway.delete(call.tenant, resource_id, call.body.get("timestamp"))
    return _answer(Code.DELETED, "Delete Successful")


async def searching_request(call: Call) -> Response:
    resource_id = request_resource_id(call.body.get("resource_id"))
    return _found(await call.state.gateway.search(call.tenant, resource_id,
                                                  context=_filters(call)))


async def deep_searching_request(call: Call) -> Response:
    resource_id = request_resource_id(call.body.get("resource_id"))
    lines = _filters(call, property_keys=("property_label", "property_value"))
    return _found(await call.state.gateway.search(call.tenant, resource_id,
                                                  context=Filters(), lines=lines))


async def searching_by_property_request(call: Call) -> Response:
    resource_id = request_resource_id(call.body.get("resource_id"))
    found = _filters(call, property_keys=("property_name", "property_value"),
                     property_required=True)
    return _found(await call.state.gateway.search(
        call.tenant, resource_id, context=Filters(found.period, found.circle),
        lines=Filters(prop=found.prop)))


_POST: Final = ["POST"]
routes = [Mount(PREFIX, routes=[
    Route("/test", operation(test, authenticated=False), methods=["GET", "POST"]),
    Route("/login", operation(login, authenticated=False), methods=_POST),
    Route("/logout", operation(logout), methods=_POST),
    Route("/isAlive", operation(is_alive), methods=_POST),
    Route("/push", operation(push), methods=_POST),
    Route("/basicRequest", operation(basic_request), methods=_POST),
    Route("/lastRequest", operation(last_request), methods=_POST),
    Route("/specificRequest", operation(specific_request), methods=_POST),
    Route("/delete", operation(delete), methods=_POST),
    Route("/searchingRequest", operation(searching_request), methods=_POST),
    Route("/deepSearchingRequest", operation(deep_searching_request), methods=_POST),
    Route("/searchingByPropertyRequest", operation(searching_by_property_request),
          methods=_POST),
])]
