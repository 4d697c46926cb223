"""The citizen widget's static files and the demo page."""

from __future__ import annotations

from pathlib import Path
from string import Template

from aiohttp import web

from ..config import Config

WIDGET_DIR = Path(__file__).resolve().parent.parent / "widget"


def widget_routes(config: Config) -> list[web.RouteDef]:
    demo = Template((WIDGET_DIR / "demo.html").read_text(encoding="utf-8"))

    async def demo_page(request: web.Request) -> web.Response:
        html = demo.safe_substitute(
            town=config.town.name, bridge_url=config.bridge.public_url
        )
        return web.Response(text=html, content_type="text/html")

    async def widget_file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = WIDGET_DIR / name
        if name not in {p.name for p in WIDGET_DIR.iterdir()} or name == "demo.html":
            raise web.HTTPNotFound()
        return web.FileResponse(
            path,
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/demo")

    return [
        web.get("/", root),
        web.get("/demo", demo_page),
        web.get("/widget/{name}", widget_file),
    ]
