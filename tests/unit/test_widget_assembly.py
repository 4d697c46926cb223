"""widget.js is assembled from widget/src/*.js and served as one script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.api.widget import (
    EPILOGUE,
    PROLOGUE,
    SOURCE_DIR,
    SOURCES,
    TEXTS,
    WIDGET_DIR,
    WidgetScript,
    assemble_widget,
    texts_js,
    widget_routes,
)

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def test_sources_list_names_every_file_once() -> None:
    """SOURCES lists each .js file under widget/src exactly once, and no other."""
    on_disk = sorted(p.name for p in SOURCE_DIR.glob("*.js"))
    assert len(SOURCES) == len(set(SOURCES))
    # The texts are made from the catalogues, not kept as a file.
    assert sorted(set(SOURCES) - {TEXTS}) == on_disk


def source(name: str) -> str:
    if name == TEXTS:
        return texts_js()
    return (SOURCE_DIR / name).read_text(encoding="utf-8")


def test_no_widget_js_left_beside_the_sources() -> None:
    """There is no stale widget.js file that could be mistaken for the source."""
    assert not (WIDGET_DIR / "widget.js").exists()


def test_assembly_is_the_sources_in_order_inside_one_function() -> None:
    """The script is the prologue, every source once in SOURCES order, the epilogue."""
    script = assemble_widget()
    assert script.startswith(PROLOGUE) and script.endswith(EPILOGUE)
    positions = []
    for name in SOURCES:
        text = source(name).rstrip()
        assert script.count(text) == 1, name
        positions.append(script.index(text))
    assert positions == sorted(positions)
    expected = PROLOGUE + "".join(
        f"\n/* ---- widget/src/{name} ---- */\n" + source(name).rstrip() + "\n"
        for name in SOURCES
    )
    assert script == expected + EPILOGUE


def test_every_source_file_is_small() -> None:
    """Each source file stays under the style guide's 500 lines."""
    for name in set(SOURCES) - {TEXTS}:
        lines = (SOURCE_DIR / name).read_text(encoding="utf-8").count("\n")
        assert lines < 500, f"{name} has {lines} lines: split it by concern"


def _app() -> web.Application:
    config = SimpleNamespace(
        town=SimpleNamespace(name="Musterstadt"),
        bridge=SimpleNamespace(public_url="http://bridge.test"),
        plugins={},
        plugin=lambda name: SimpleNamespace(jitsi=None),
    )
    app = web.Application()
    app.add_routes(widget_routes(config))  # type: ignore[arg-type]
    return app


async def test_served_widget_js_is_the_assembly() -> None:
    """GET /widget/widget.js answers the assembled script, revalidated by ETag."""
    async with TestClient(TestServer(_app())) as client:
        r = await client.get("/widget/widget.js")
        assert r.status == 200
        assert await r.text() == assemble_widget()
        assert r.content_type == "text/javascript"
        assert r.headers["Cache-Control"] == "no-cache"
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        etag, modified = r.headers["ETag"], r.headers["Last-Modified"]

        again = await client.get("/widget/widget.js", headers={"If-None-Match": etag})
        assert again.status == 304
        assert again.headers["ETag"] == etag
        assert await again.read() == b""
        since = await client.get(
            "/widget/widget.js", headers={"If-Modified-Since": modified}
        )
        assert since.status == 304
        other = await client.get(
            "/widget/widget.js", headers={"If-None-Match": '"something-else"'}
        )
        assert other.status == 200


async def test_other_widget_files_are_still_static() -> None:
    """widget.css is served from disk; the demo template and src/ are not."""
    async with TestClient(TestServer(_app())) as client:
        css = await client.get("/widget/widget.css")
        assert css.status == 200
        css_on_disk = (WIDGET_DIR / "widget.css").read_text(encoding="utf-8")
        assert await css.text() == css_on_disk
        assert (await client.get("/widget/demo.html")).status == 404
        assert (await client.get("/widget/src")).status == 404
        assert (await client.get("/widget/src/boot.js")).status == 404


def test_a_changed_source_is_served_without_restart(tmp_path: Path) -> None:
    """Editing a source file changes the served script and its ETag."""
    for name in set(SOURCES) - {TEXTS}:
        shutil.copy(SOURCE_DIR / name, tmp_path / name)
    script = WidgetScript(tmp_path)
    before = script.current()
    assert script.current() is before  # unchanged sources: not rebuilt
    changed = tmp_path / "core.js"
    changed.write_text(changed.read_text(encoding="utf-8") + "// edited\n")
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = script.current()
    assert after.etag != before.etag
    assert b"// edited" in after.body


def test_a_missing_source_stops_the_start(tmp_path: Path) -> None:
    """A source named in SOURCES but absent fails when the routes are built."""
    for name in set(SOURCES[1:]) - {TEXTS}:
        shutil.copy(SOURCE_DIR / name, tmp_path / name)
    with pytest.raises(FileNotFoundError, match=SOURCES[0]):
        WidgetScript(tmp_path)


@needs_node
def test_served_script_parses(tmp_path: Path) -> None:
    """node --check accepts the assembled script."""
    path = tmp_path / "widget.js"
    path.write_text(assemble_widget(), encoding="utf-8")
    result = subprocess.run(
        [NODE, "--check", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# Runs widget.js in a fresh global scope with just enough of a browser to get to
# the end (no body yet, so it waits for DOMContentLoaded) and prints the names it
# added to the global object.
LEAK_CHECK = r"""
const vm = require("vm");
const fs = require("fs");
const listeners = [];
const sandbox = {
  URL, AbortController, console, setTimeout, clearTimeout,
  navigator: { languages: ["de-DE"], language: "de-DE" },
  location: { href: "https://town.example/page", hash: "" },
  localStorage: { getItem() { return null; }, setItem() {} },
  addEventListener(type) { listeners.push("window:" + type); },
  document: {
    body: null,
    currentScript: {
      src: "https://chat.example/widget/widget.js",
      getAttribute() { return null; },
    },
    querySelector() { return null; },
    addEventListener(type) { listeners.push("document:" + type); },
  },
};
sandbox.window = sandbox;
const before = new Set(Object.keys(sandbox));
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), sandbox);
const added = Object.keys(sandbox).filter((k) => !before.has(k));
console.log(JSON.stringify({ added, listeners, version: sandbox.BuergerChat }));
"""


@needs_node
def test_only_buergerchat_reaches_the_page_globals(tmp_path: Path) -> None:
    """Running the script adds window.BuergerChat and nothing else to globals."""
    script = tmp_path / "widget.js"
    script.write_text(assemble_widget(), encoding="utf-8")
    check = tmp_path / "leak.js"
    check.write_text(LEAK_CHECK, encoding="utf-8")
    result = subprocess.run(
        [NODE, str(check), str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["added"] == ["BuergerChat"]
    assert seen["version"] == {"version": "0"}
    # it ran to the end: the start-up waits for the page's body
    assert "document:DOMContentLoaded" in seen["listeners"]


def test_the_vendored_altcha_solver_is_the_published_one() -> None:
    """bridge/widget/altcha holds altcha-lib's files unchanged: each matches the
    SHA-256 its SOURCE.md records (update both together)."""
    import hashlib
    import re

    from bridge.api.widget import ALTCHA_DIR, ALTCHA_FILES

    source = (ALTCHA_DIR / "SOURCE.md").read_text(encoding="utf-8")
    recorded = dict(
        (name, digest)
        for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", source, re.M)
    )
    assert sorted(recorded) == sorted(ALTCHA_FILES)
    for name in ALTCHA_FILES:
        digest = hashlib.sha256((ALTCHA_DIR / name).read_bytes()).hexdigest()
        assert digest == recorded[name], name
    assert (ALTCHA_DIR / "LICENSE.txt").read_text().startswith("MIT")
