"""Security headers and the demo page's CSP, served in process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.api.headers import security_headers
from bridge.api.middleware import cors_middleware, errors_middleware
from bridge.api.widget import widget_routes
from bridge.errors import NotFound
from tests.harness import example_config


def _evil_town(data: dict[str, Any]) -> None:
    data["town"]["name"] = 'Musterstadt</title><script>alert("x")</script>'
    data["video"] = {"jitsi_domain": "meet.musterstadt.example"}


async def test_every_answer_is_hardened_and_the_demo_has_a_strict_csp(
    tmp_path: Path,
) -> None:
    config = example_config(tmp_path, _evil_town)

    async def missing(request: web.Request) -> web.Response:
        raise NotFound("nothing here")

    app = web.Application(
        middlewares=[security_headers, cors_middleware(("*",)), errors_middleware]
    )
    app.add_routes([*widget_routes(config), web.get("/api/v1/missing", missing)])
    async with TestClient(TestServer(app)) as client:
        demo = await client.get("/demo")
        html = await demo.text()
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
        csp = dict(
            part.strip().split(" ", 1)
            for part in demo.headers["Content-Security-Policy"].split(";")
        )
        assert csp["default-src"] == "'none'"
        assert csp["frame-ancestors"] == "'none'"
        assert csp["script-src"] == "'self' https://meet.musterstadt.example"
        assert csp["frame-src"] == "https://meet.musterstadt.example"
        assert "'unsafe-inline'" not in demo.headers["Content-Security-Policy"]
        assert csp["style-src"].startswith("'self' 'sha256-")
        for path in ("/demo", "/widget/widget.js", "/api/v1/missing", "/nothing"):
            response = await client.get(path, headers={"Origin": "null"})
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            assert response.headers["Referrer-Policy"] == "no-referrer", path
        refused = await client.get("/api/v1/missing", headers={"Origin": "null"})
        assert refused.status == 404
        assert "Access-Control-Allow-Origin" not in refused.headers
        other = await client.get(
            "/api/v1/missing", headers={"Origin": "https://www.musterstadt.example"}
        )
        assert other.headers["Access-Control-Allow-Origin"] == "*"
