"""The one place errors become HTTP responses: NGSI-LD ProblemDetails as application/json."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from sinergia.ngsild.errors import (
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NgsiLdError,
    ResourceNotFound,
)

log = logging.getLogger(__name__)


def problem_response(error: NgsiLdError) -> Response:
    return Response(orjson.dumps(error.problem()), status_code=error.status,
                    headers=error.headers(), media_type="application/json")


async def ngsi_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NgsiLdError)
    return problem_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: NgsiLdError
    if exc.status_code == 404:
        error = ResourceNotFound(f"No resource at {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        error = InvalidRequest(str(exc.detail))
    response = problem_response(error)
    if exc.status_code != error.status:
        response.status_code = exc.status_code
    return response


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("Unhandled error on %s %s", request.method, request.url.path)
    return problem_response(InternalError(
        f"An unexpected error occurred ({type(exc).__name__}); it has been logged"))
