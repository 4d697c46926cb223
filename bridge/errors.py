"""One error hierarchy for the whole product.

Every error a citizen, a staff member or an admin can cause is a subclass of
:class:`BuergerchatError`: an HTTP status, a stable ``errcode`` and a human message
that says what was wrong and what to do. The API middleware turns these into
``{"errcode": ..., "error": ...}``; anything else is logged with its traceback and
answered with a generic 500.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientError
from mautrix.errors import MatrixError

#: What a call to Synapse fails with when it is away, slow or answers an error:
#: mautrix raises MatrixError for answers, aiohttp's errors (a dropped connection
#: is a ClientError, not an OSError) and timeouts pass through as they are.
HOMESERVER_ERRORS: tuple[type[BaseException], ...] = (
    MatrixError,
    ClientError,
    OSError,
    TimeoutError,
)


class BuergerchatError(Exception):
    status: int = 500
    errcode: str = "BC_UNKNOWN"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.message, **self.extra}


class BadRequest(BuergerchatError):
    status = 400
    errcode = "BC_BAD_REQUEST"


class NotJSON(BadRequest):
    errcode = "BC_NOT_JSON"


class InvalidField(BadRequest):
    """A field of the request body is missing or wrong; ``field`` names it."""

    errcode = "BC_INVALID_FIELD"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class ConsentRequired(BadRequest):
    errcode = "BC_CONSENT_REQUIRED"


class MissingToken(BuergerchatError):
    status = 401
    errcode = "BC_MISSING_TOKEN"


class UnknownToken(BuergerchatError):
    status = 401
    errcode = "BC_UNKNOWN_TOKEN"


class Forbidden(BuergerchatError):
    status = 403
    errcode = "BC_FORBIDDEN"


class NotFound(BuergerchatError):
    status = 404
    errcode = "BC_NOT_FOUND"


class CaseClosed(BuergerchatError):
    status = 409
    errcode = "BC_CASE_CLOSED"


class TooLarge(BuergerchatError):
    status = 413
    errcode = "BC_TOO_LARGE"


class UnsupportedMediaType(BuergerchatError):
    status = 415
    errcode = "BC_UNSUPPORTED_MEDIA_TYPE"


class Unavailable(BuergerchatError):
    status = 503
    errcode = "BC_UNAVAILABLE"
