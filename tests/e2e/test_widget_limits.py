"""The widget over a limit, in Chromium: it says so kindly, keeps what was
typed and sends it when the bridge takes it again (429 + Retry-After)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from .a11y import assert_accessible, new_context
from .stack import LOOSE_LIMITS, Stack, make_stack
from .test_widget import browser, send, start_chat, stored  # noqa: F401

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One chat a minute per address, two messages in ten seconds per case."""
    s = make_stack(
        tmp_path_factory.mktemp("tight"),
        limits={"chats_per_address": "1/minute", "messages_per_case": "2/10second"},
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def _page(browser: Browser) -> Page:  # noqa: F811
    context = await new_context(browser, viewport={"width": 1280, "height": 800})
    return await context.new_page()


@pytest.fixture
async def pages(browser: Browser) -> AsyncIterator[list[Page]]:  # noqa: F811
    made: list[Page] = []

    async def close() -> None:
        for page in made:
            await page.context.close()

    try:
        made.extend([await _page(browser), await _page(browser)])
        yield made
    finally:
        await close()


async def test_the_widget_waits_kindly_and_loses_nothing(
    tight: Stack, pages: list[Page]
) -> None:
    first, second = pages
    # /demo runs under its strict CSP: the widget needs nothing it forbids.
    violations: list[str] = []
    first.on(
        "console",
        lambda m: violations.append(m.text) if "Security Policy" in m.text else None,
    )
    await start_chat(first, tight, "Schnell Schreiber")
    texts = ["Eins", "Zwei", "Drei"]
    for text in texts:
        await send(first, text)
    banner = first.get_by_text(re.compile("Sie schreiben sehr schnell"))
    await expect(banner).to_be_visible(timeout=60_000)
    await assert_accessible(first, "rate limit: writing too fast", phone=False)
    assert "Drei" in [m["body"] for m in (await stored(first, tight))["outbox"]]
    log = first.get_by_role("log")
    await expect(log.locator(".msg", has_text="Drei")).to_contain_text("wird gesendet…")
    await expect(banner).to_be_hidden(timeout=30_000)
    await expect(log.locator(".msg", has_text="Drei")).not_to_contain_text(
        "wird gesendet…", timeout=30_000
    )
    for text in texts:
        await expect(log.get_by_text(text, exact=True)).to_have_count(1)
    assert (await stored(first, tight))["outbox"] == []
    assert violations == []

    # A second chat from the same address within the minute: told when to try
    # again, and the choices stay filled in.
    await second.goto(tight.bridge_url + "/demo")
    await second.get_by_role("button", name="Bürgerchat öffnen").click()
    await second.get_by_role("radio", name=re.compile("Bürgerbüro")).check()
    await second.get_by_label("Ihr Name (optional)").fill("Noch Einmal")
    await second.get_by_role("checkbox").check()
    await second.get_by_role("button", name="Chat starten").click()
    alert = second.get_by_role("alert").filter(has_text="sehr viele Anfragen")
    await expect(alert).to_be_visible(timeout=60_000)
    await expect(alert).to_contain_text(re.compile(r"in \d+ Sekunden"))
    await assert_accessible(second, "rate limit: too many chats")
    await expect(second.get_by_label("Ihr Name (optional)")).to_have_value(
        "Noch Einmal"
    )
    await expect(second.get_by_role("checkbox")).to_be_checked()
    await expect(second.get_by_role("button", name="Chat starten")).to_be_enabled()


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """From the second chat of an address on, a proof of work is asked."""
    s = make_stack(
        tmp_path_factory.mktemp("busy"),
        limits={**LOOSE_LIMITS, "proof_after_per_address": "1/hour"},
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def test_the_widget_solves_a_proof_of_work_unseen(
    busy: Stack, pages: list[Page]
) -> None:
    """The second chat from this address is asked for a proof of work: the
    widget loads altcha-lib's solver, solves it and opens the chat — the citizen
    only sees the chat start (under /demo's strict CSP)."""
    first, second = pages
    await start_chat(first, busy, "Erste Person")
    proofs: list[str] = []
    violations: list[str] = []
    second.on(
        "request",
        lambda r: (
            proofs.append(r.headers["x-buergerchat-proof"])
            if "x-buergerchat-proof" in r.headers
            else None
        ),
    )
    second.on(
        "console",
        lambda m: violations.append(m.text) if "Security Policy" in m.text else None,
    )
    started = time.perf_counter()
    reference = await start_chat(second, busy, "Zweite Person")
    print(f"chat with a proof of work opened in {time.perf_counter() - started:.1f} s")
    assert reference and len(proofs) == 1, proofs
    assert violations == []
