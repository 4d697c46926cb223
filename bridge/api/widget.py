"""The citizen widget's static files and the demo page.

`widget.js` is not a file on disk: it is assembled from `widget/src/*.js` in the
order of `SOURCES`, inside one function, so a town embeds one script tag and no
variable of the widget reaches the page's globals. No bundler, no build step.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from string import Template

from aiohttp import web

from .. import i18n
from ..config import Config
from ..plugins import plugin_hooks
from .headers import content_security_policy

WIDGET_DIR = Path(__file__).resolve().parent.parent / "widget"
SOURCE_DIR = WIDGET_DIR / "src"
ALTCHA_DIR = WIDGET_DIR / "altcha"
#: The solver's modules, as pow.js imports them (relative paths).
ALTCHA_FILES = ("pow.js", "helpers.js", "types.js", "algorithms/web/sha.js")

# The widget's source files in the order they run. They share one scope; functions
# may call each other in any direction, but top-level statements run in this
# order: boot.js first (it stops a second copy and reads the script tag),
# session.js last (it starts the widget).
TEXTS = "texts.js"
SOURCES: tuple[str, ...] = (
    "boot.js",  # embed notes, the double-include guard, API address, constants
    TEXTS,  # every language's lines, from the catalogues (not a file: see texts_js)
    "core.js",  # icons, stored state, translation, building elements, formats
    "api.js",  # requests to the bridge, backoff
    "frame.js",  # host element, shadow root, button, panel, language switch
    "start.js",  # department status line, privacy consent, starting a case
    "offline.js",  # the offline form ("Nachricht hinterlassen")
    "chat.js",  # the chat view, timeline, queue box, unread badge
    "sync.js",  # event stream in, outbox out
    "attachments.js",  # uploads, scan states, downloads, the transcript PDF
    "video.js",  # joining video and phone calls
    "booking.js",  # video appointments: booking, walk-ins, the waiting room
    "session.js",  # start over, personal resume links, start-up
)

PROLOGUE = '(function () {\n  "use strict";\n'
EPILOGUE = "})();\n"
HEADERS = {"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}


def texts_js() -> str:
    """The widget's texts: for each language its ``widget.*`` and ``error.*``
    lines from bridge/i18n (German where one is missing), and the languages as
    the switch offers them (own name, writing direction, locale for dates)."""
    text = {
        lang: i18n.section("widget", lang)
        | {f"error.{k}": v for k, v in i18n.section("error", lang).items()}
        for lang in i18n.LANGUAGES
    }
    langs = [
        {
            "code": lang,
            "name": i18n.language_name(lang),
            "dir": i18n.direction(lang),
            "tag": i18n.locale_tag(lang),
        }
        for lang in i18n.LANGUAGES
    ]
    dump = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
    return (
        "// --- texts: from bridge/i18n/locale/*/LC_MESSAGES/citizen.po -------------\n"
        f"var TEXT = {dump(text)};\nvar LANGS = {dump(langs)};\n"
    )


def assemble_widget(source_dir: Path = SOURCE_DIR) -> str:
    """widget.js as served: the sources in `SOURCES` order, wrapped in one IIFE.

    Each part starts with a comment naming its file, so a browser's error or
    debugger line leads back to the source.
    """
    parts = [PROLOGUE]
    for name in SOURCES:
        if name == TEXTS:
            text = texts_js()
        else:
            text = (source_dir / name).read_text(encoding="utf-8")
        parts.append(f"\n/* ---- widget/src/{name} ---- */\n{text.rstrip()}\n")
    parts.append(EPILOGUE)
    return "".join(parts)


@dataclass(frozen=True)
class _Script:
    stamp: tuple[tuple[int, int], ...]  # (mtime_ns, size) per source file
    body: bytes
    etag: str
    last_modified: datetime


class WidgetScript:
    """The assembled widget.js, rebuilt when a source file changes.

    Like a static file it revalidates cheaply: a strong ETag over the content and
    Last-Modified from the newest source, answered with 304 when unchanged.
    """

    def __init__(self, source_dir: Path = SOURCE_DIR) -> None:
        self._dir = source_dir
        self._script = self._build()  # a missing source stops the start, loudly

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        stats = [os.stat(self._dir / name) for name in SOURCES if name != TEXTS]
        stats += [os.stat(i18n.po_path(lang)) for lang in i18n.LANGUAGES]
        return tuple((st.st_mtime_ns, st.st_size) for st in stats)

    def _build(self) -> _Script:
        stamp = self._stamp()
        i18n.catalogue.cache_clear()  # a catalogue may have changed too
        body = assemble_widget(self._dir).encode("utf-8")
        newest = max(mtime for mtime, _ in stamp) / 1e9
        return _Script(
            stamp=stamp,
            body=body,
            etag=hashlib.sha256(body).hexdigest()[:32],
            last_modified=datetime.fromtimestamp(int(newest), tz=UTC),
        )

    def current(self) -> _Script:
        """The script for the sources on disk now (blocking: call in a thread)."""
        if self._stamp() != self._script.stamp:
            self._script = self._build()
        return self._script

    async def respond(self, request: web.Request) -> web.Response:
        script = await asyncio.to_thread(self.current)
        if _not_modified(request, script):
            response = web.Response(status=304, headers=HEADERS)
        else:
            response = web.Response(
                body=script.body,
                content_type="text/javascript",
                charset="utf-8",
                headers=HEADERS,
            )
        response.etag = script.etag
        response.last_modified = script.last_modified
        return response


def _not_modified(request: web.Request, script: _Script) -> bool:
    etags = request.if_none_match
    if etags is not None:  # If-None-Match wins over If-Modified-Since (RFC 9110)
        return any(tag.value in (script.etag, "*") for tag in etags)
    since = request.if_modified_since
    return since is not None and script.last_modified <= since


def widget_routes(config: Config) -> list[web.RouteDef]:
    demo = Template((WIDGET_DIR / "demo.html").read_text(encoding="utf-8"))
    script = WidgetScript()
    # Admin-written text meets HTML: escaped, like everything else.
    page = demo.safe_substitute(
        town=html.escape(config.town.name),
        bridge_url=html.escape(config.bridge.public_url, quote=True),
    )
    policy = content_security_policy(page, plugin_hooks(config, "csp_sources"))

    async def demo_page(request: web.Request) -> web.Response:
        return web.Response(
            text=page,
            content_type="text/html",
            headers={"Content-Security-Policy": policy},
        )

    async def widget_file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "widget.js":
            return await script.respond(request)
        path = WIDGET_DIR / name
        files = {p.name for p in WIDGET_DIR.iterdir() if p.is_file()}
        if name not in files or name == "demo.html":
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=HEADERS)

    async def altcha_file(request: web.Request) -> web.StreamResponse:
        """The vendored ALTCHA solver (bridge/widget/altcha/SOURCE.md), loaded by
        the widget with import() when the bridge asks for a proof of work."""
        name = request.match_info["path"]
        if name not in ALTCHA_FILES:
            raise web.HTTPNotFound()
        return web.FileResponse(
            ALTCHA_DIR / name,
            headers={**HEADERS, "Content-Type": "text/javascript; charset=utf-8"},
        )

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/demo")

    return [
        web.get("/", root),
        web.get("/demo", demo_page),
        web.get("/widget/altcha/{path:.+}", altcha_file),
        web.get("/widget/{name}", widget_file),
    ]
