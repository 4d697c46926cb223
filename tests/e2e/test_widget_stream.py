"""The widget follows its case over Server-Sent Events, and falls back to
long-polling when the stream does not come through: blocked on the way (every
attempt fails) or held back by a buffering proxy (an answer with no byte).
Staff messages reach the citizen either way, once each."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from nio import AsyncClient
from playwright.async_api import Page, Route, expect

from . import test_widget
from .conftest import ANNA, staff_client
from .stack import Stack
from .test_widget import join_case_room, send, start_chat, wait_for_text

browser = test_widget.browser
page = test_widget.page

pytestmark = pytest.mark.e2e

Blocker = Callable[[Route], Awaitable[None]] | None


async def chat_through(stack: Stack, page: Page, blocker: Blocker) -> list[str]:
    """A chat with two staff answers; the API paths the page asked for."""
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/" in r.url else None)
    if blocker is not None:
        await page.route(re.compile(r".*/api/v1/cases/[^/]+/stream.*"), blocker)
    reference = await start_chat(page, stack, "Stream Test")
    await send(page, "Hallo über den Strom")
    anna: AsyncClient = await staff_client(stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        await wait_for_text(anna, room_id, "Hallo über den Strom")
        log = page.get_by_role("log")
        for answer in ("Erste Antwort", "Zweite Antwort"):
            await anna.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": answer}
            )
            await expect(log.get_by_text(answer, exact=True)).to_have_count(
                1, timeout=60_000
            )
        await page.wait_for_timeout(1000)  # a stray duplicate would show now
        for answer in ("Erste Antwort", "Zweite Antwort"):
            await expect(log.get_by_text(answer, exact=True)).to_have_count(1)
    finally:
        await anna.close()
    return asked


def long_polls(asked: list[str]) -> int:
    return sum(1 for url in asked if "/events?" in url and "timeout=0" not in url)


async def test_the_widget_streams(stack: Stack, page: Page) -> None:
    asked = await chat_through(stack, page, None)
    assert any("/stream" in url for url in asked), asked
    assert long_polls(asked) == 0, asked


async def test_a_blocked_stream_falls_back_to_long_polls(
    stack: Stack, page: Page
) -> None:
    async def block(route: Route) -> None:
        await route.abort()

    asked = await chat_through(stack, page, block)
    assert sum("/stream" in url for url in asked) >= 3
    assert long_polls(asked) > 0


async def test_a_held_back_stream_falls_back_to_long_polls(
    stack: Stack, page: Page
) -> None:
    async def buffered(route: Route) -> None:
        # What a buffering proxy passes on: the head, and no byte of the body.
        await route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream"},
            body="",
        )

    asked = await chat_through(stack, page, buffered)
    assert sum("/stream" in url for url in asked) == 1, asked
    assert long_polls(asked) > 0


async def test_a_refused_stream_falls_back_and_keeps_the_chat(
    stack: Stack, page: Page
) -> None:
    """A filter on the way answers the stream 403: that is not the case gone
    (the chat must not be wiped); the long-poll asks the same and goes on."""

    async def refused(route: Route) -> None:
        await route.fulfill(
            status=403,
            headers={"Content-Type": "application/json"},
            body='{"errcode": "M_FORBIDDEN", "error": "blocked by a filter"}',
        )

    asked = await chat_through(stack, page, refused)
    assert sum("/stream" in url for url in asked) == 1, asked
    assert long_polls(asked) > 0
