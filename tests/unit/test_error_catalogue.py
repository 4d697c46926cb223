"""One error catalogue (bridge.errors.CATALOGUE): every errcode in the source tree,
every error class, the OpenAPI document and the README's table agree with it."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import bots
import bridge
from bridge.api.middleware import _HTTP_ERRCODES, errors_middleware
from bridge.errors import (
    CATALOGUE,
    BuergerchatError,
    InvalidField,
    NotFound,
)

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "bridge" / "api" / "openapi.json"
README = ROOT / "README.md"
#: An errcode literal, also the start of one built at run time (f"BC_HTTP_{n}").
CODE = re.compile(r"\bBC_[A-Z0-9_]+\b")
ERROR_SCHEMA = "#/components/schemas/Error"
HTTP_CODES = {code: s.status for code, s in CATALOGUE.items() if s.status is not None}


def codes_in(text: str) -> set[str]:
    return set(CODE.findall(text))


def source_codes() -> dict[str, list[str]]:
    """Every BC_… literal under bridge/ and bots/ → the files naming it."""
    found: dict[str, list[str]] = {}
    for top in ("bridge", "bots"):
        for path in sorted((ROOT / top).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # fonts, images
            for code in codes_in(text):
                found.setdefault(code, []).append(str(path.relative_to(ROOT)))
    return found


def error_classes() -> list[type[BuergerchatError]]:
    """BuergerchatError and every subclass in bridge/ and bots/ (all imported)."""
    for package in (bridge, bots):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith(".__main__") or ".migrations" in info.name:
                continue
            importlib.import_module(info.name)
    seen: list[type[BuergerchatError]] = [BuergerchatError]
    for cls in seen:
        seen.extend(s for s in cls.__subclasses__() if s not in seen)
    return seen


def named_codes(spec: dict[str, Any], node: Any) -> set[str]:
    """The errcodes a response schema names (enum or const of ``errcode``), leaving
    out the full list of the shared Error schema itself."""
    if isinstance(node, list):
        return set().union(*(named_codes(spec, n) for n in node))
    if not isinstance(node, dict):
        return set()
    ref = node.get("$ref")
    if ref == ERROR_SCHEMA:
        return set()
    if ref:
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return named_codes(spec, target)
    codes: set[str] = set()
    errcode = node.get("properties", {}).get("errcode", {})
    codes.update(errcode.get("enum", []))
    if "const" in errcode:
        codes.add(errcode["const"])
    for key in ("allOf", "oneOf", "anyOf", "content", "schema"):
        codes |= named_codes(spec, node.get(key))
    if "application/json" in node:
        codes |= named_codes(spec, node["application/json"])
    return codes


def uses_error_schema(spec: dict[str, Any], node: Any) -> bool:
    text = json.dumps(node)
    if ERROR_SCHEMA in text:
        return True
    refs = re.findall(r'"\$ref": "#/components/(responses|schemas)/(\w+)"', text)
    return any(
        uses_error_schema(spec, spec["components"][kind][name]) for kind, name in refs
    )


def error_responses(spec: dict[str, Any]) -> Iterator[tuple[str, int, Any]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if int(status) >= 400:
                    yield f"{method.upper()} {path}", int(status), response


def readme_table(text: str) -> list[tuple[str, int]]:
    """The rows (code, status) of the table under "Fehlercodes / Error codes"."""
    _, found, rest = text.partition("Fehlercodes / Error codes\n")
    assert found, "README.md has no table 'Fehlercodes / Error codes'"
    rows: list[tuple[str, int]] = []
    started = False
    for line in rest.splitlines():
        if line.startswith("|"):
            started = True
            match = re.match(r"\|\s*`(BC_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|", line)
            if match:
                rows.append((match[1], int(match[2])))
        elif started:
            break
    return rows


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text(encoding="utf-8"))


# --- the catalogue itself ---------------------------------------------------


def test_catalogue_entries_are_complete() -> None:
    """Each code is well formed, has a German and an English text saying what to
    do, an HTTP error status or None; the operator's codes are no citizen's."""
    assert CATALOGUE, "empty catalogue"
    for code, spec in CATALOGUE.items():
        assert re.fullmatch(r"BC_[A-Z0-9]+(_[A-Z0-9]+)*", code), code
        assert spec.de.strip() and spec.en.strip(), code
        assert spec.de != spec.en, code
        assert spec.text == f"{spec.de} / {spec.en}", code
        if spec.status is None:
            assert not spec.citizen, f"{code}: a citizen cannot meet an unanswered code"
            assert spec.http_status == 500, code
        else:
            assert 400 <= spec.status <= 599, code
            assert spec.http_status == spec.status, code


def test_catalogue_is_frozen() -> None:
    with pytest.raises(TypeError):
        CATALOGUE["BC_SOMETHING_NEW"] = CATALOGUE["BC_INTERNAL"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        CATALOGUE["BC_INTERNAL"].status = 418  # type: ignore[misc]


def test_the_scanner_finds_built_codes() -> None:
    """The source scan sees plain literals and the head of a built code."""
    built = 'f"' + "BC" + '_HTTP_{e.status}"'
    assert codes_in(built) == {"BC" + "_HTTP_"}
    assert codes_in('errcode = "' + "BC" + '_X1"; ABC_DEF') == {"BC" + "_X1"}


def test_every_code_in_the_source_tree_is_catalogued() -> None:
    """Every BC_… string anywhere under bridge/ and bots/ (Python, widget
    JavaScript, the OpenAPI document) is a catalogue key."""
    found = source_codes()
    unknown = {code: files for code, files in found.items() if code not in CATALOGUE}
    assert not unknown, f"not in bridge/errors.py CATALOGUE: {unknown}"


def test_every_catalogue_entry_is_used() -> None:
    """No stale entries: each code is an error class's errcode or is named in the
    code outside the catalogue (e.g. the middleware's table for aiohttp's own)."""
    used = {cls.errcode for cls in error_classes()}
    for code, files in source_codes().items():
        if any(f.endswith(".py") and f != "bridge/errors.py" for f in files):
            used.add(code)
    assert set(CATALOGUE) - used == set()


# --- the classes ----------------------------------------------------------


def test_every_error_class_takes_its_status_from_the_catalogue() -> None:
    """Every class of the hierarchy, the bots' too, names a catalogued code and
    answers with its status; one code never has two statuses."""
    classes = error_classes()
    assert len(classes) > 20, [c.__qualname__ for c in classes]
    statuses: dict[str, set[int]] = {}
    for cls in classes:
        name = f"{cls.__module__}.{cls.__qualname__}"
        assert cls.errcode in CATALOGUE, name
        assert cls.status == CATALOGUE[cls.errcode].http_status, name
        statuses.setdefault(cls.errcode, set()).add(cls.status)
    assert {c: s for c, s in statuses.items() if len(s) > 1} == {}


def test_a_class_cannot_bring_its_own_code_or_status() -> None:
    with pytest.raises(TypeError, match="not in the catalogue"):

        class Invented(BuergerchatError):
            errcode = "BC_" + "INVENTED"

    with pytest.raises(TypeError, match="comes from the catalogue"):

        class Teapot(NotFound):
            status = 418


def test_messages_default_to_the_catalogue_text() -> None:
    """Without a message the catalogue's text; a raise site's own text wins."""
    assert NotFound().to_json() == {
        "errcode": "BC_NOT_FOUND",
        "error": CATALOGUE["BC_NOT_FOUND"].text,
    }
    assert InvalidField("body", "The message is empty.").to_json() == {
        "errcode": "BC_INVALID_FIELD",
        "error": "The message is empty.",
        "field": "body",
    }
    assert BuergerchatError().to_json()["errcode"] == "BC_INTERNAL"


# --- the middleware -------------------------------------------------------


def test_aiohttp_refusals_map_to_codes_of_their_status() -> None:
    for status, code in _HTTP_ERRCODES.items():
        assert CATALOGUE[code].status == status, code


async def test_middleware_answers_with_catalogued_codes() -> None:
    """Same status and errcode as before the catalogue for aiohttp's refusals,
    the hierarchy, bad JSON and crashes; an unknown status still gets a code."""

    async def raise_(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind == "notfound":
            raise NotFound("There is no case x.")
        if kind == "json":
            json.loads("{")
        if kind == "precondition":
            raise web.HTTPPreconditionFailed()
        if kind == "gateway":
            raise web.HTTPBadGateway()
        raise RuntimeError("boom")

    app = web.Application(middlewares=[errors_middleware], client_max_size=1024)
    app.router.add_get("/raise/{kind}", raise_)
    app.router.add_post("/raise/{kind}", raise_)

    async def post_big(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app.router.add_post("/big", post_big)
    expected = [
        ("GET", "/nowhere", 404, "BC_NOT_FOUND"),
        ("PUT", "/raise/x", 405, "BC_METHOD_NOT_ALLOWED"),
        ("POST", "/big", 413, "BC_TOO_LARGE"),
        ("GET", "/raise/notfound", 404, "BC_NOT_FOUND"),
        ("GET", "/raise/json", 400, "BC_NOT_JSON"),
        ("GET", "/raise/crash", 500, "BC_INTERNAL"),
        ("GET", "/raise/gateway", 500, "BC_INTERNAL"),
        ("GET", "/raise/precondition", 400, "BC_BAD_REQUEST"),
    ]
    async with TestClient(TestServer(app)) as client:
        for method, path, status, code in expected:
            response = await client.request(method, path, data=b"x" * 4096)
            body = await response.json()
            assert (response.status, body["errcode"]) == (status, code), path
            assert body["error"], path
            assert CATALOGUE[code].status == status
    assert body["error"] == CATALOGUE["BC_BAD_REQUEST"].text


# --- the OpenAPI document -------------------------------------------------


def test_openapi_error_enum_is_the_catalogues_http_codes(
    openapi: dict[str, Any],
) -> None:
    errcode = openapi["components"]["schemas"]["Error"]["properties"]["errcode"]
    assert len(errcode["enum"]) == len(set(errcode["enum"]))
    assert set(errcode["enum"]) == set(HTTP_CODES)


def test_openapi_responses_name_codes_of_their_status(
    openapi: dict[str, Any],
) -> None:
    """Each documented 4xx/5xx is a status some catalogued code has; each error
    response names its codes, and only codes with exactly that status."""
    statuses = set(HTTP_CODES.values())
    wrong = []
    for route, status, response in error_responses(openapi):
        assert status in statuses, f"{route}: {status} is no catalogued status"
        codes = named_codes(openapi, response)
        if uses_error_schema(openapi, response):
            assert codes, f"{route} {status} names no errcode"
        wrong += [(route, status, c, HTTP_CODES.get(c)) for c in sorted(codes)]
    assert [w for w in wrong if w[1] != w[3]] == []


def test_openapi_names_the_citizens_codes_somewhere(openapi: dict[str, Any]) -> None:
    """Every code a citizen can meet is documented on at least one route, except
    the catch-all 500."""
    named: set[str] = set()
    for _, _, response in error_responses(openapi):
        named |= named_codes(openapi, response)
    citizens = {c for c, s in CATALOGUE.items() if s.citizen} - {"BC_INTERNAL"}
    assert citizens - named == set()


# --- the README -----------------------------------------------------------


def test_readme_table_is_the_catalogue() -> None:
    """README.md's "Fehlercodes / Error codes" lists every code the API answers
    with its status, once, and nothing else."""
    rows = readme_table(README.read_text(encoding="utf-8"))
    assert len(rows) == len({code for code, _ in rows}), "a code twice"
    assert dict(rows) == HTTP_CODES


def test_readme_table_parser_sees_a_drift() -> None:
    table = (
        "### Fehlercodes / Error codes\n\nText.\n\n| errcode | status | meaning |\n"
        "|---|---|---|\n| `BC_NOT_FOUND` | 410 | gone |\n\nAfter.\n| `BC_X` | 400 |\n"
    )
    assert readme_table(table) == [("BC_NOT_FOUND", 410)]
