"""One place where errors become JSON, and where browsers on the town's website
are allowed to call the API (CORS)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import CATALOGUE, BuergerchatError, NotJSON

log = logging.getLogger("buergerchat.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: aiohttp's own refusals (an unknown path or method, a body over client_max_size,
#: a static file outside its folder …) by status: the catalogue's code for it.
_HTTP_ERRCODES = {
    400: "BC_BAD_REQUEST",
    401: "BC_MISSING_TOKEN",
    403: "BC_FORBIDDEN",
    404: "BC_NOT_FOUND",
    405: "BC_METHOD_NOT_ALLOWED",
    413: "BC_TOO_LARGE",
    415: "BC_UNSUPPORTED_MEDIA_TYPE",
    503: "BC_UNAVAILABLE",
}


def error_response(
    status: int, errcode: str, message: str, **extra: object
) -> web.Response:
    return web.json_response(
        {"errcode": errcode, "error": message, **extra}, status=status
    )


def answer(error: BuergerchatError) -> web.Response:
    return web.json_response(
        error.to_json(), status=error.status, headers=error.headers
    )


def http_error(e: web.HTTPException) -> web.Response:
    """An aiohttp refusal as the catalogue's code and default text; a status the
    table does not know (none is raised today) becomes 400 or 500, so every code
    is answered with its catalogued status."""
    errcode = _HTTP_ERRCODES.get(e.status)
    if errcode is None:
        log.warning("HTTP %s has no errcode in the catalogue: %s", e.status, e)
        errcode = "BC_BAD_REQUEST" if e.status < 500 else "BC_INTERNAL"
    spec = CATALOGUE[errcode]
    return error_response(spec.http_status, errcode, spec.text)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except BuergerchatError as e:
        return answer(e)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        return http_error(e)
    except json.JSONDecodeError:
        return answer(NotJSON())
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return answer(BuergerchatError())


#: Where the middleware leaves its decision for apply_cors.
CORS_ORIGIN = web.RequestKey("cors_origin", str)


def apply_cors(request: web.Request, response: web.StreamResponse) -> None:
    """The CORS headers the middleware decided on; a streaming handler calls
    this before its response starts (headers cannot change after that)."""
    origin = request.get(CORS_ORIGIN)
    if not origin:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Headers"] = (
        "Authorization, Content-Type, Last-Event-ID, X-Buergerchat-Proof"
    )
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Max-Age"] = "600"
    if origin != "*":
        response.headers["Vary"] = "Origin"


def cors_middleware(allowed_origins: tuple[str, ...]) -> Callable[..., Awaitable]:
    """CORS for /api/ only: the widget runs on the town's website, not on ours."""

    def allowed(origin: str | None) -> str | None:
        if not origin:
            return None
        if origin == "null":  # sandboxed frames, file:// pages: only if listed
            return origin if "null" in allowed_origins else None
        if "*" in allowed_origins:
            return "*"
        return origin if origin in allowed_origins else None

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        origin = allowed(request.headers.get("Origin"))
        if origin:
            request[CORS_ORIGIN] = origin
        if (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
        ):
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if not response.prepared:  # a stream set them before it began
            apply_cors(request, response)
        return response

    return cors
