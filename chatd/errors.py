"""The one error type the REST API raises, and its constructors.

Every failure a client may see is an :class:`ApiError`; ``chatd.web.render``
turns it into SPEC.md's error body. Domain code raises these directly so the
status, code and message stay next to the rule that produced them.
"""

from __future__ import annotations

import math
from typing import Mapping

from chatd.storage.records import StoreUnavailable


class ApiError(Exception):
    """A refusal with an HTTP status, a snake_case code and a message for people."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields) if fields else None
        self.headers = dict(headers) if headers else {}

    def body(self) -> dict:
        """The JSON body SPEC.md prescribes for errors."""
        error: dict = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


def invalid(message: str, fields: Mapping[str, str] | None = None) -> ApiError:
    return ApiError(400, "invalid_request", message, fields)


def unauthorized(message: str = "A valid token is required.") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "You may not do that.") -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(message: str, fields: Mapping[str, str] | None = None) -> ApiError:
    return ApiError(409, "conflict", message, fields)


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


def rate_limited(retry_after: float, message: str | None = None) -> ApiError:
    """429 with a whole number of seconds to wait (at least 1)."""
    seconds = max(1, math.ceil(retry_after))
    return ApiError(
        429,
        "rate_limited",
        message or f"Too many requests; try again in {seconds} s.",
        headers={"Retry-After": str(seconds)},
    )


def unavailable(message: str = "The store is unreachable; try again shortly.", retry_after: int = 2) -> ApiError:
    return ApiError(503, "unavailable", message, headers={"Retry-After": str(retry_after)})


def api_error(error: BaseException) -> ApiError | None:
    """What a client is answered for ``error``: the ApiError itself, 503 ``unavailable`` when the store
    could not be reached (wherever that happened), or None for a fault of ours (then 500, logged).

    The one place where an outage becomes a 503: the REST error renderer, the upload gate and the
    WebSocket handshake all ask it.
    """
    if isinstance(error, ApiError):
        return error
    if isinstance(error, StoreUnavailable):
        return unavailable()
    return None
