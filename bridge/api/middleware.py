"""One place where errors become JSON, and where browsers on the town's website
are allowed to call the API (CORS)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import BuergerchatError

log = logging.getLogger("buergerchat.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_ERRCODES = {
    400: ("BC_BAD_REQUEST", "The request is malformed."),
    401: ("BC_MISSING_TOKEN", "This needs a token."),
    403: ("BC_FORBIDDEN", "This is not allowed."),
    404: ("BC_NOT_FOUND", "There is nothing at this address. Check the URL."),
    405: ("BC_METHOD_NOT_ALLOWED", "This address does not take that HTTP method."),
    413: (
        "BC_TOO_LARGE",
        "The request body is too large. Send a shorter message or a smaller file.",
    ),
}


def error_response(
    status: int, errcode: str, message: str, **extra: object
) -> web.Response:
    return web.json_response(
        {"errcode": errcode, "error": message, **extra}, status=status
    )


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except BuergerchatError as e:
        return web.json_response(e.to_json(), status=e.status)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        errcode, message = _HTTP_ERRCODES.get(
            e.status, (f"BC_HTTP_{e.status}", e.reason or "Request failed.")
        )
        return error_response(e.status, errcode, message)
    except json.JSONDecodeError:
        return error_response(400, "BC_NOT_JSON", "The body is not valid JSON.")
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(
            500,
            "BC_INTERNAL",
            "Something went wrong on our side. Please try again in a moment.",
        )


def cors_middleware(allowed_origins: tuple[str, ...]) -> Callable[..., Awaitable]:
    """CORS for /api/ only: the widget runs on the town's website, not on ours."""

    def allowed(origin: str | None) -> str | None:
        if not origin:
            return None
        if "*" in allowed_origins:
            return "*"
        return origin if origin in allowed_origins else None

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        origin = allowed(request.headers.get("Origin"))
        if (
            request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
        ):
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type"
            )
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
            if origin != "*":
                response.headers["Vary"] = "Origin"
        return response

    return cors
