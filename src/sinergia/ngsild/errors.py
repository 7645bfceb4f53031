"""Typed NGSI-LD errors. Each carries its problem type and HTTP status; the API renders them
as ProblemDetails in exactly one place (``sinergia.api.problems``)."""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    """Base of every error a client may see. Subclasses fix ``name`` and ``status``."""

    name: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return ERROR_BASE + self.name

    def problem(self) -> dict[str, Any]:
        """The ProblemDetails body (RFC 9457) for this error."""
        body: dict[str, Any] = {"type": self.type_uri, "title": self.title, "detail": self.detail}
        body.update(self.extra)
        return body

    def headers(self) -> dict[str, str]:
        """HTTP headers the response must carry besides the body (none for most errors)."""
        return {}


class InvalidRequest(NgsiLdError):
    name, status, title = "InvalidRequest", 400, "The request is not well formed"


class BadRequestData(NgsiLdError):
    name, status, title = "BadRequestData", 400, "The request data is invalid"


class AlreadyExists(NgsiLdError):
    name, status, title = "AlreadyExists", 409, "The resource already exists"


class OperationNotSupported(NgsiLdError):
    name, status, title = "OperationNotSupported", 422, "The operation is not supported"


class ResourceNotFound(NgsiLdError):
    name, status, title = "ResourceNotFound", 404, "The resource was not found"


class InternalError(NgsiLdError):
    name, status, title = "InternalError", 500, "Internal error"


class TooComplexQuery(NgsiLdError):
    name, status, title = "TooComplexQuery", 403, "The query is too complex"


class TooManyResults(NgsiLdError):
    name, status, title = "TooManyResults", 403, "Too many results requested"


class LdContextNotAvailable(NgsiLdError):
    name, status, title = "LdContextNotAvailable", 503, "The JSON-LD @context is not available"


class InvalidLdContext(NgsiLdError):
    name, status, title = "InvalidRequest", 400, "The JSON-LD @context is invalid"


class InvalidRemoteLdContext(InvalidLdContext):
    """A remote @context was retrieved but is not a JSON-LD context: ETSI GS CIM 009 5.5.6
    names BadRequestData for it (unreachable ones are LdContextNotAvailable)."""

    name = "BadRequestData"


class NonexistentTenant(NgsiLdError):
    name, status, title = "NonexistentTenant", 404, "The tenant does not exist"


class ServiceUnavailable(NgsiLdError):
    """The storage backend cannot be reached; the server recovers by itself."""

    name, status, title = "ServiceUnavailable", 503, "The service is temporarily unavailable"


class NotAcceptable(NgsiLdError):
    """``Accept`` names no representation we produce (HTTP 406)."""

    name, status, title = "NotAcceptable", 406, "No acceptable representation"


class UnsupportedMediaType(NgsiLdError):
    """``Content-Type`` is not JSON or JSON-LD (HTTP 415)."""

    name, status, title = "UnsupportedMediaType", 415, "Unsupported media type"


class PayloadTooLarge(NgsiLdError):
    """The body exceeds the ``max_body_bytes`` setting (HTTP 413)."""

    name, status, title = "PayloadTooLarge", 413, "The request body is too large"


class Unauthenticated(NgsiLdError):
    """The caller sent no credentials, or ones that identify nobody (HTTP 401). The standard
    names no problem type for this; ``challenge`` becomes the ``WWW-Authenticate`` header
    (RFC 9110 requires one on every 401), e.g. ``'Bearer realm="sinergia"'``."""

    name, status, title = "Unauthenticated", 401, "The request is not authenticated"

    def __init__(self, detail: str, *, challenge: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.challenge = challenge

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


class AccessDenied(NgsiLdError):
    """The caller is known but may not do this (HTTP 403); the type name is Stellio's, the
    standard names none."""

    name, status, title = "AccessDenied", 403, "The caller may not access this resource"


class MethodNotAllowed(NgsiLdError):
    name, status, title = "MethodNotAllowed", 405, "Method not allowed"
