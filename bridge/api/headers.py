"""Security headers on everything the bridge serves, and the Content Security
Policy of its own page (/demo).

Every response: ``X-Content-Type-Options: nosniff`` (a file is never run as
something else) and ``Referrer-Policy: no-referrer`` (case ids and tokens never
leak into another site's logs). /demo gets a CSP that allows only the bridge
itself — plus what bots add through their ``csp_sources`` hook (the video bot:
its Jitsi server, for the call frame and its script) — and forbids framing.
The widget on a town's website is under the town's own CSP: README "Abuse
protection" lists what it needs.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BASE_POLICY: dict[str, list[str]] = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "frame-src": [],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'none'"],
}


def inline_style_hashes(html: str) -> list[str]:
    """CSP hashes of the page's own <style> blocks (so no 'unsafe-inline')."""
    found = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    return [
        "'sha256-"
        + base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode()
        + "'"
        for block in found
    ]


def content_security_policy(
    page_html: str, extra: Iterable[Mapping[str, Iterable[str]]] = ()
) -> str:
    policy = {name: list(values) for name, values in BASE_POLICY.items()}
    policy["style-src"] += inline_style_hashes(page_html)
    for sources in extra:
        for name, values in sources.items():
            policy.setdefault(name, []).extend(v for v in values if v)
    parts = []
    for name, values in policy.items():
        unique = list(dict.fromkeys(values)) or ["'none'"]
        parts.append(f"{name} {' '.join(unique)}")
    return "; ".join(parts)


@web.middleware
async def security_headers(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as e:
        _harden(e.headers)
        raise
    _harden(response.headers)
    return response


def _harden(headers: MutableMapping[str, str]) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
