"""Accessibility feedback through the durable outbox to a real SMTP server, on
SQLite and PostgreSQL: one report is one mail even when sent again, replies go
to the sender, and a flood from one address is refused without a mail."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.accessibility.feedback import FeedbackChannel, parse_feedback
from bridge.config import load_config
from bridge.errors import RateLimited
from bridge.limits import DEFAULT_RULES, Limits, LimitSettings
from bridge.mail.backends import SmtpBackend
from bridge.mail.models import OutboxMail
from bridge.mail.outbox import Outbox
from tests.unit.mail.samples import settings
from tests.unit.mail.smtp_server import SmtpServer
from tests.unit.test_config import config_copy


def request(peer: str) -> Any:
    transport = Mock()
    transport.get_extra_info.return_value = (peer, 4711)
    return make_mocked_request(
        "POST", "/api/v1/accessibility/feedback", transport=transport
    )


async def mails(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(OutboxMail)))


@pytest.fixture
def channel(db: AsyncEngine, smtp: SmtpServer, tmp_path: Path) -> FeedbackChannel:
    config = load_config(config_copy(tmp_path), tmp_path / "data")
    backend = SmtpBackend(smtp.host, smtp.port, security="none", timeout_seconds=2)
    outbox = Outbox(db, settings(tmp_path), backend, rng=random.Random(1))
    return FeedbackChannel(config, Limits(LimitSettings(dict(DEFAULT_RULES))), outbox)


async def test_one_report_one_mail_with_reply_to(
    channel: FeedbackChannel, db: AsyncEngine, smtp: SmtpServer
) -> None:
    form = parse_feedback(
        {
            "description": "Der Kontrast der Zeiten ist zu schwach.\nBitte prüfen.",
            "where": "Auswahl der Bereiche",
            "name": "Jürgen Weiß",
            "email": "juergen@example.org",
            "language": "tr",
            "client_id": "c-1",
            "consent": True,
        }
    )
    first = await channel.submit(request("198.51.100.1"), form)
    again = await channel.submit(request("198.51.100.1"), form)
    assert first == again and first.startswith("BF-")
    assert await mails(db) == 1
    assert await channel.outbox.flush() == 1
    [got] = smtp.received
    msg = got.message
    assert got.rcpt_tos == ["barrierefreiheit@musterstadt.example"]
    assert msg["Reply-To"] == "Jürgen Weiß <juergen@example.org>"
    assert first in msg["Subject"] and "Barrierefreiheit" in msg["Subject"]
    body = msg.get_content().replace("\r\n", "\n")
    assert "Der Kontrast der Zeiten ist zu schwach.\nBitte prüfen." in body
    assert "Auswahl der Bereiche" in body and "Sprache:   Türkisch" in body


async def test_same_text_without_client_id_is_one_mail(
    channel: FeedbackChannel, db: AsyncEngine
) -> None:
    form = parse_feedback({"description": "Fokus unsichtbar", "consent": True})
    other = parse_feedback({"description": "Zoom bricht", "consent": True})
    assert await channel.submit(request("198.51.100.2"), form) == (
        await channel.submit(request("198.51.100.2"), form)
    )
    await channel.submit(request("198.51.100.2"), other)
    assert await mails(db) == 2


async def test_a_flood_is_refused_without_a_mail(
    channel: FeedbackChannel, db: AsyncEngine
) -> None:
    """Three reports a minute from one address; the fourth is refused with a
    time to wait, and nothing of it is stored; another address is unaffected."""
    for n in range(3):
        form = parse_feedback({"description": f"Problem {n}", "consent": True})
        await channel.submit(request("203.0.113.9"), form)
    with pytest.raises(RateLimited) as caught:
        form = parse_feedback({"description": "Problem 4", "consent": True})
        await channel.submit(request("203.0.113.9"), form)
    assert caught.value.extra["limit"] == "feedback_per_address"
    assert caught.value.extra["retry_after_seconds"] >= 1
    assert await mails(db) == 3
    await channel.submit(request("203.0.113.10"), form)
    assert await mails(db) == 4
