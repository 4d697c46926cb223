"""axe-core in the browser: every widget state the browser tests reach is checked
at the size it is shown and at phone width, and any violation of any impact
fails the test that reached it.

axe-core comes from npm (tests/a11y/package.json, installed by
``scripts/setup --test``). It is injected into the page past the demo page's
Content-Security-Policy (the context needs ``bypass_csp=True``: see
:func:`new_context`) and checks the widget's element, shadow root included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page

AXE = (
    Path(__file__).resolve().parents[1]
    / "a11y"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
#: WCAG 2.0/2.1 A and AA (what BITV 2.0 / EN 301 549 ask) and axe's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
#: Phone width: the smallest a page must work at without scrolling sideways
#: (WCAG 1.4.10 reflow: 320 CSS px).
PHONE = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 800}

_RUN = """async ([tags, scope]) => {
  const result = await axe.run(scope ? { include: [[scope]] } : document, {
    runOnly: { type: "tag", values: tags }, resultTypes: ["violations"]
  });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5)
      .map(n => ({ target: n.target, summary: n.failureSummary }))
  }));
}"""


async def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A browser context as the widget tests use it: German unless told, with the
    page's CSP bypassed so that axe can be injected."""
    options.setdefault("viewport", DESKTOP)
    options.setdefault("locale", "de-DE")
    return await browser.new_context(bypass_csp=True, **options)


async def violations(
    page: Page, scope: str | None = "buergerchat-widget"
) -> list[dict[str, Any]]:
    """axe's findings in ``scope`` (a selector; None: the whole page)."""
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    return list(await page.evaluate(_RUN, [TAGS, scope]))


async def assert_accessible(
    page: Page, state: str, *, phone: bool = True, scope: str | None = None
) -> None:
    """No axe violation in the widget (or, with ``scope`` "page", the whole
    page) as shown now, and (unless ``phone`` is False, e.g. a state a resize
    would change) at 320 px width."""
    target = None if scope == "page" else "buergerchat-widget"
    found = {"shown": await violations(page, target)}
    size = page.viewport_size
    if phone and size and size["width"] > PHONE["width"]:
        await page.set_viewport_size(PHONE)
        await page.wait_for_timeout(100)
        found["phone"] = await violations(page, target)
        await page.set_viewport_size(size)
    bad = {where: v for where, v in found.items() if v}
    assert not bad, f"axe violations in state '{state}':\n" + json.dumps(
        bad, indent=1, ensure_ascii=False
    )
