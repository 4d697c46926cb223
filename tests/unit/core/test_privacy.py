"""Data protection in one process (tests/harness.py, the fake homeserver with
its admin API): which cases expire when, per department; erasure survives a
Synapse outage half-way and is done once; !erase needs an admin and the
reference; files and mail bodies expire on their own; the audit holds no
personal data; references are never given twice. The real Synapse and every
file on disk: tests/e2e/test_privacy.py."""

from __future__ import annotations

import mailbox
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.db.models import Case, CaseEvent, MatrixSend, PrivacyAudit
from bridge.mail.backends import MaildirBackend
from bridge.privacy.notice import render_notice
from bridge.privacy.service import ERASED, EXPIRED, PURGE_JOB
from bridge.synapse_admin import AdminCallFailed
from tests.harness import Harness, harness

ANNA = "@anna.schmidt:buergerchat.localhost"
DAY = timedelta(days=1)


def short_periods(data: dict[str, Any]) -> None:
    data["retention"] = {
        "chats_days": 30,
        "offline_unanswered_days": 5,
        "offline_answered_days": 20,
        "files_days": 10,
        "mail_bodies_days": 2,
        "audit_days": 100,
    }


def own_period(h: Harness, department: str, **periods: int) -> None:
    """A department's own ``retention:`` (as departments.yaml would say)."""
    rules = h.config.routing
    departments = tuple(
        replace(d, retention=tuple(periods.items())) if d.id == department else d
        for d in rules.departments
    )
    h.config.replace_rules(replace(rules, departments=departments))


async def closed_chat(h: Harness, department: str = "buergerbuero") -> Case:
    case, _ = await h.open_case(department)
    await h.staff_joins(case, ANNA)
    await h.staff_says(case, ANNA, "Guten Tag!")
    await h.cases.close_case(case, by=ANNA)
    fresh = await h.store.get_case(case.case_id)
    assert fresh is not None
    return fresh


async def offline_message(h: Harness, **form: Any) -> dict[str, Any]:
    async with h.api() as client:
        response = await client.post(
            "/api/v1/offline-messages",
            json={
                "client_id": f"c{h.clock.now().timestamp()}",
                "topic": "personalausweis",
                "description": "Mein Ausweis ist abgelaufen.",
                "name": "Erika Muster",
                "email": "erika@example.org",
                "consent": True,
                "language": "de",
                **form,
            },
        )
        assert response.status == 201, await response.text()
        return dict(await response.json())


async def expired_refs(h: Harness, days: float) -> dict[str, str]:
    found = await h.privacy.expired(h.clock.now() + timedelta(days=days))
    return {case.reference: period for case, period in found}


async def test_periods_per_department_decide_what_expires(tmp_path: Path) -> None:
    async with harness(tmp_path, change=short_periods) as h:
        own_period(h, "bauen", chats_days=3)
        office = await closed_chat(h)
        building = await closed_chat(h, "bauen")
        still_open, _ = await h.open_case()
        assert await expired_refs(h, 2.9) == {}
        assert await expired_refs(h, 3.1) == {building.reference: "chats_days"}
        assert await expired_refs(h, 30.1) == {
            building.reference: "chats_days",
            office.reference: "chats_days",
        }
        assert still_open.reference not in await expired_refs(h, 3000)
        assert h.config.case_retention("bauen").chats_days == 3
        assert h.config.case_retention("buergerbuero").chats_days == 30


async def test_an_unanswered_message_counts_from_when_it_was_left(
    tmp_path: Path,
) -> None:
    """Nobody answered: 5 days after it was left, closed or not. Answered:
    20 days after the case ended."""
    async with harness(tmp_path, change=short_periods) as h:
        left = await offline_message(h)
        answered = await offline_message(h, client_id="second")
        case = await h.store.get_case(answered["case_id"])
        assert case is not None and case.room_id
        await h.staff_joins(case, ANNA)
        await h.staff_says(case, ANNA, "Kommen Sie morgen vorbei.")
        await h.cases.close_case(case, by=ANNA)
        assert await expired_refs(h, 5.1) == {
            left["reference"]: "offline_unanswered_days"
        }
        assert await expired_refs(h, 20.1) == {
            left["reference"]: "offline_unanswered_days",
            answered["reference"]: "offline_answered_days",
        }


async def test_erasure_survives_an_outage_and_happens_once(tmp_path: Path) -> None:
    """Synapse is away half-way: the citizen already gets 404, the job tries
    again; once Synapse is back the room, media, ghost, team notice and every
    row go, with one audit row; another run finds nothing to do."""
    async with harness(tmp_path) as h:
        case, token = await h.open_case(citizen_name="Erika Geheim")
        await h.staff_joins(case, ANNA)
        await h.staff_says(case, ANNA, "Hallo Frau Geheim")
        async with h.api() as client:
            sent = await client.post(
                f"/api/v1/cases/{case.case_id}/messages",
                json={"body": "Mein Anliegen", "client_id": "m1"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert sent.status == 201
        await h.run_jobs()
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id
        async with h.store.session() as s:
            notices = list(
                await s.scalars(
                    select(MatrixSend.event_id).where(
                        MatrixSend.case_id == case.case_id,
                        MatrixSend.room_id != fresh.room_id,
                    )
                )
            )
        assert notices, "the team room was told about the case"

        h.hs.down = True
        with pytest.raises(AdminCallFailed):
            await h.privacy.purge(case.case_id, ERASED, "cli")
        half = await h.store.get_case(case.case_id)
        assert half is not None and half.state == "purged"
        async with h.api() as client:
            gone = await client.get(
                f"/api/v1/cases/{case.case_id}/events",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert gone.status == 404

        h.hs.down = False
        counts = await h.privacy.purge(case.case_id, ERASED, "cli")
        assert counts is not None
        assert counts["rooms"] == 1 and counts["notices"] == len(notices)
        assert counts["messages"] >= 2
        assert fresh.room_id not in h.hs.rooms
        assert h.admin.erased == [fresh.ghost_mxid]
        assert set(h.admin.censored) == set(notices)
        assert await h.store.get_case(case.case_id) is None
        async with h.store.session() as s:
            left = await s.scalar(
                select(CaseEvent.seq).where(CaseEvent.case_id == case.case_id)
            )
            audit = list(await s.scalars(select(PrivacyAudit)))
        assert left is None
        [row] = audit
        assert (row.action, row.reference, row.actor) == (ERASED, case.reference, "cli")
        assert "Geheim" not in str(row.detail) and "Anliegen" not in str(row.detail)

        assert await h.privacy.purge(case.case_id, ERASED, "cli") is None
        async with h.store.session() as s:
            assert len(list(await s.scalars(select(PrivacyAudit)))) == 1


async def test_a_reference_is_never_given_twice(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        newest, _ = await h.open_case()
        await h.privacy.purge(newest.case_id, ERASED, "cli")
        after, _ = await h.open_case()
        assert after.reference != newest.reference
        assert after.number == newest.number + 1


async def test_erase_needs_an_admin_and_the_reference(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        rules = h.config.routing
        h.config.replace_rules(replace(rules, admins=(ANNA,)))
        bernd = "@bernd.keller:buergerchat.localhost"
        case, _ = await h.open_case()
        await h.staff_joins(case, ANNA)
        fresh = await h.store.get_case(case.case_id)
        assert fresh is not None and fresh.room_id

        def replies() -> list[str]:
            return [
                m["body"]
                for m in h.hs.messages(str(fresh.room_id), h.config.bot_mxid)
                if m.get("msgtype") == "m.notice"
            ]

        await h.staff_says(case, bernd, "!erase")
        await h.run_jobs()
        assert "nur die Admins" in replies()[-1]
        await h.staff_says(case, ANNA, "!erase")
        await h.run_jobs()
        assert f"!erase {case.reference}" in replies()[-1]
        assert await h.jobs.get(f"{PURGE_JOB}:{case.case_id}") is None
        await h.staff_says(case, ANNA, f"!erase {case.reference.lower()}")
        await h.run_jobs()
        assert await h.store.get_case(case.case_id) is None
        [row] = await h.privacy.audit_rows()
        assert (row.action, row.actor) == (ERASED, ANNA)


async def test_the_sweep_expires_cases_files_and_mail_bodies(tmp_path: Path) -> None:
    """Files go after 10 days (the case stays), a sent mail's recipients,
    subject and body after 2, the case after 30; the audit after 100."""
    async with harness(tmp_path, change=short_periods) as h:
        chat = await closed_chat(h)
        upload = f"mxc://{h.config.homeserver.server_name}/file1"
        h.hs.media[upload] = b"%PDF-1.4 Ausweis"
        scanner = h.bot("scanner")
        await scanner.queue.add(
            attachment_id="att1",
            case_id=chat.case_id,
            direction="citizen",
            filename="ausweis.pdf",
            mimetype="application/pdf",
            size=16,
            sha256="0" * 64,
            state="delivered",
            mxc_uri=upload,
        )
        message = EmailMessage()
        message["To"] = "erika@example.org"
        message["Subject"] = "Ihre Anfrage"
        message.set_content("Hallo Erika")
        await h.ctx.mail.enqueue(message, dedup_key="test:1", case_id=chat.case_id)
        await h.run_jobs()
        [sent] = await h.ctx.mail.store.of_case(chat.case_id)
        assert sent.state == "sent"

        h.clock.advance(days=11)
        counts = await h.privacy.sweep(h.clock.now())
        assert (counts["cases"], counts["files"], counts["mail_bodies"]) == (0, 1, 1)
        assert upload not in h.hs.media
        row = await scanner.queue.get(chat.case_id, "att1")
        assert row is not None and (row.state, row.mxc_uri) == ("expired", None)
        [blanked] = await h.ctx.mail.store.of_case(chat.case_id)
        assert (blanked.raw, blanked.subject, blanked.recipients) == (b"", "", [])
        again = await h.privacy.sweep(h.clock.now())
        assert (again["files"], again["mail_bodies"]) == (0, 0)

        h.clock.advance(days=20)
        counts = await h.privacy.sweep(h.clock.now())
        assert counts["cases"] == 1
        await h.run_jobs()
        assert await h.store.get_case(chat.case_id) is None
        actions = [r.action for r in await h.privacy.audit_rows()]
        assert actions == ["files_expired", "mail_bodies_expired", EXPIRED]
        h.clock.advance(days=101)
        await h.privacy.sweep(h.clock.now())
        assert await h.privacy.audit_rows() == []


def test_the_maildir_forgets_a_case_s_mails(tmp_path: Path) -> None:
    box = MaildirBackend(tmp_path / "mail")
    keep = b"Message-ID: <keep@x>\nSubject: a\n\nhello\n"
    drop = b"Message-ID: <drop@x>\nSubject: b\n\nsecret\n"
    box._deliver(keep, "a@x", ["b@x"])
    box._deliver(drop, "a@x", ["b@x"])
    assert box.forget(["<drop@x>"]) == 1
    left = [m.as_bytes() for m in mailbox.Maildir(tmp_path / "mail").values()]
    assert len(left) == 1 and b"hello" in left[0]


def test_the_notice_escapes_and_tells_the_periods(tmp_path: Path) -> None:
    from tests.harness import example_config

    def town(data: dict[str, Any]) -> None:
        data["town"]["name"] = "Stadt <script>alert(1)</script>"
        data["privacy"] = {"dpo_contact": "datenschutz@example.org <b>"}
        short_periods(data)

    config = example_config(tmp_path, town)
    page = render_notice(config)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;" in page
    assert "Chats 30 Tage" in page and "Dateien 10 Tage" in page
    assert "Art. 15" in page and "Art. 17" in page and "Art. 77" in page
