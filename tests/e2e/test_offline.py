"""Offline messages end to end: the real product on a Saturday (every department
closed), a real SMTP server (aiosmtpd) on loopback, staff in a real Matrix client.

Mails are counted where they arrive: at the SMTP server."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml
from aiosmtpd.controller import Controller
from nio import AsyncClient
from playwright.async_api import Browser, expect

from bridge.limits import DEFAULT_RULES
from bridge.tokens import token_hash
from tests.unit.mail.smtp_server import Received, Recorder

from .a11y import assert_accessible, new_context
from .conftest import ANNA, staff_client
from .samples import query
from .stack import LOOSE_LIMITS, Stack, free_port, make_stack
from .test_live_chat import api, join_case_room, wait_for_event, wait_for_message
from .test_video import bot_notice
from .test_widget import browser  # noqa: F401

pytestmark = pytest.mark.e2e

SATURDAY = "2026-11-21T10:00:00+01:00"
REFUSED = "abgewiesen@example.org"


class Smtp:
    """A recording aiosmtpd in its own thread, stoppable and startable again on
    the same port (stopped, connections are refused as with a crashed server)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.recorder = Recorder(refuse={REFUSED})
        self._controller: Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        self._controller = Controller(
            self.recorder, hostname="127.0.0.1", port=self.port
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return list(self.recorder.received)


@pytest.fixture(scope="module")
def smtp() -> Iterator[Smtp]:
    server = Smtp(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def smtp_mail(smtp: Smtp) -> dict[str, Any]:
    """The ``mail:`` section for mailing through ``smtp``; retries start after one
    second, so an outage test does not wait long."""
    return {
        "backend": "smtp",
        "from": {
            "address": "buergerchat@musterstadt.example",
            "name": "Bürgerchat Musterstadt",
        },
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "none",
            "timeout_seconds": 5,
        },
        "backoff_seconds": 1,
        "max_attempts": 50,
    }


@pytest.fixture(scope="module")
def offline_stack(
    tmp_path_factory: pytest.TempPathFactory, smtp: Smtp
) -> Iterator[Stack]:
    """The product on a Saturday morning, mailing through ``smtp``; retries start
    after one second so an outage test does not wait long."""
    # Feedback on barriers under the product's own limits: a test floods them.
    limits = {
        **LOOSE_LIMITS,
        **{k: DEFAULT_RULES[k] for k in ("feedback_per_address", "feedback_total")},
    }
    s = make_stack(
        tmp_path_factory.mktemp("offline"), limits=limits, mail=smtp_mail(smtp)
    )

    def saturday_registry_office(data: dict[str, Any]) -> None:
        # One department live on this Saturday, one case per person, presence not
        # needed: a few chats fill it and the next one waits in the queue.
        data["routing"]["use_presence"] = False
        office = next(d for d in data["departments"] if d["id"] == "standesamt")
        office["hours"]["sa"] = ["00:00-24:00"]
        office["max_cases_per_staff"] = 1
        office["fallback"] = None

    s.edit_config("departments.yaml", saturday_registry_office)
    s.extra_env = {"BUERGERCHAT_NOW": SATURDAY}
    s.start()
    try:
        yield s
    finally:
        s.stop()


# --- helpers -----------------------------------------------------------------


def form(**extra: Any) -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()),
        "topic": "personalausweis",
        "description": "Mein Personalausweis ist abgelaufen.\nWas muss ich tun?",
        "name": "Eva Muster",
        "email": "eva@example.org",
        "phone": "0621 123-456",
        "consent": True,
        "language": "de",
        **extra,
    }


async def submit(stack: Stack, body: dict[str, Any], token: str | None = None) -> Any:
    return await api(stack, "POST", "/api/v1/offline-messages", json=body, token=token)


def body_of(message: EmailMessage) -> str:
    """The decoded text, with the line ends of the citizen's input."""
    return str(message.get_content()).replace("\r\n", "\n")


def of_case(smtp: Smtp, reference: str) -> list[EmailMessage]:
    return [
        r.message
        for r in smtp.received
        if r.message["X-Buergerchat-Reference"] == reference
    ]


async def wait_mails(
    smtp: Smtp, reference: str, count: int, where: Callable[[EmailMessage], bool]
) -> list[EmailMessage]:
    for _ in range(300):
        found = [m for m in of_case(smtp, reference) if where(m)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"{count} mail(s) for {reference} never arrived; got "
        f"{[str(m['Subject']) for m in of_case(smtp, reference)]}"
    )


def to(address: str) -> Callable[[EmailMessage], bool]:
    return lambda m: address in str(m["To"])


def subject_has(text: str) -> Callable[[EmailMessage], bool]:
    return lambda m: text in str(m["Subject"])


async def room_texts(stack: Stack, alias: str) -> list[str]:
    """Bodies in a bot-only room (team or admin room), read as the bot."""
    secrets = yaml.safe_load((stack.data_dir / "secrets.yaml").read_text())
    headers = {"Authorization": f"Bearer {secrets['as_token']}"}
    base = stack.homeserver_url + "/_matrix/client/v3"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{base}/directory/room/{quote(alias)}") as r:
            room_id = (await r.json())["room_id"]
        async with session.get(
            f"{base}/rooms/{quote(room_id)}/messages?dir=b&limit=200"
        ) as r:
            events = (await r.json())["chunk"]
    return [
        e["content"].get("body", "") for e in events if e["type"] == "m.room.message"
    ]


async def history_notice(
    stack: Stack, client: AsyncClient, room_id: str, *needles: str
) -> str:
    """A bot message in a room's history (also what came before the join)."""
    headers = {"Authorization": f"Bearer {client.access_token}"}
    url = (
        f"{stack.homeserver_url}/_matrix/client/v3/rooms/{quote(room_id)}"
        "/messages?dir=b&limit=100"
    )
    for _ in range(150):
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(url) as r:
                chunk = (await r.json())["chunk"]
        for e in chunk:
            body = e.get("content", {}).get("body", "")
            if e["sender"].startswith("@buergerchat") and all(
                n in body for n in needles
            ):
                return str(body)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no bot message with {needles} in {room_id}")


async def wait_room_text(stack: Stack, alias: str, *needles: str) -> str:
    for _ in range(150):
        for body in await room_texts(stack, alias):
            if all(n in body for n in needles):
                return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"no message with {needles} in {alias}")


async def events(stack: Stack, case: dict[str, Any]) -> list[dict[str, Any]]:
    status, body = await api(
        stack, "GET", f"/api/v1/cases/{case['case_id']}/events", token=case["token"]
    )
    assert status == 200, body
    return list(body["events"])


# --- the form and forwarding ---------------------------------------------------


async def test_offline_message_is_forwarded_by_mail_and_in_matrix(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """A message left on a Saturday becomes an offline case: the description is
    the citizen's first message with an offline_received event; the department's
    inbox gets a mail with reference and topic in the subject, concern and contact
    in the body and Reply-To the citizen; the citizen gets a confirmation; staff
    see notices in the team room and the case room."""
    status, case = await submit(offline_stack, form())
    assert status == 201, case
    assert case["state"] == "offline" and case["reference"].startswith("BC-")
    reference = case["reference"]

    timeline = await events(offline_stack, case)
    first = next(e for e in timeline if e["type"] == "message")
    assert first["sender"] == "citizen"
    assert first["body"] == "Mein Personalausweis ist abgelaufen.\nWas muss ich tun?"
    received = next(e for e in timeline if e.get("kind") == "offline_received")
    assert reference in received["body"] and "eva@example.org" in received["body"]

    [office] = await wait_mails(
        smtp, reference, 1, to("buergerbuero@musterstadt.example")
    )
    assert reference in office["Subject"]
    assert "Personalausweis und Reisepass" in office["Subject"]
    assert office["Reply-To"].addresses[0].addr_spec == "eva@example.org"
    assert "buergerchat@musterstadt.example" in str(office["From"])
    text = body_of(office)
    assert "Mein Personalausweis ist abgelaufen.\nWas muss ich tun?" in text
    assert "Eva Muster" in text and "0621 123-456" in text
    assert "eva@example.org" in text

    [confirmation] = await wait_mails(smtp, reference, 1, to("eva@example.org"))
    assert reference in confirmation["Subject"]
    assert reference in body_of(confirmation)
    assert "Mein Personalausweis" not in body_of(confirmation)
    assert "buergerbuero@musterstadt.example" in str(confirmation["Reply-To"])

    notice = await wait_room_text(
        offline_stack, "#team-buergerbuero:buergerchat.localhost", reference
    )
    assert "außerhalb der sprechzeiten" in notice.lower()
    assert "eva@example.org" in notice and "Antworten Sie einfach hier" in notice


async def test_phone_only_tells_staff_to_call(offline_stack: Stack, smtp: Smtp) -> None:
    """Without an e-mail address nobody gets a confirmation, the department still
    gets the message, and staff read in the case room whom to call."""
    status, case = await submit(
        offline_stack, form(email=None, phone="+49 621 987654", topic="bauantrag")
    )
    assert status == 201, case
    reference = case["reference"]
    [office] = await wait_mails(smtp, reference, 1, to("bauen@musterstadt.example"))
    assert office["Reply-To"] is None
    assert "+49 621 987654" in body_of(office)
    client = await staff_client(offline_stack, "@bernd.keller:buergerchat.localhost")
    try:
        room_id = await join_case_room(client, reference)
        body = await history_notice(offline_stack, client, room_id, "Bitte rufen Sie")
        assert "Eva Muster" in body and "+49 621 987654" in body
    finally:
        await client.close()
    assert len(of_case(smtp, reference)) == 1


async def test_same_client_id_gives_the_same_case(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """The same submission again answers 200 with the same case; three at once
    make one case; the department is mailed once; reusing the client id for other
    content is refused."""
    body = form()
    status, first = await submit(offline_stack, body)
    assert status == 201
    status, again = await submit(offline_stack, body)
    assert status == 200
    assert (again["case_id"], again["reference"]) == (
        first["case_id"],
        first["reference"],
    )
    assert again["state"] == "offline"
    assert any(
        e.get("kind") == "offline_received" for e in await events(offline_stack, again)
    )

    racing = form()
    answers = await asyncio.gather(*(submit(offline_stack, racing) for _ in range(3)))
    assert sorted(status for status, _ in answers) == [200, 200, 201]
    assert len({a["case_id"] for _, a in answers}) == 1

    status, error = await submit(
        offline_stack, {**body, "description": "Etwas anderes"}
    )
    assert status == 409 and error["errcode"] == "BC_CLIENT_ID_REUSED"

    for case in (first, answers[0][1]):
        await wait_mails(smtp, case["reference"], 2, lambda m: True)
        rows = query(
            offline_stack,
            "SELECT dedup_key FROM mail_outbox WHERE case_id = ?",
            case["case_id"],
        )
        assert len(rows) == 2
        assert (
            len(
                query(
                    offline_stack,
                    "SELECT 1 FROM cases WHERE reference = ?",
                    case["reference"],
                )
            )
            == 1
        )


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"description": "  "}, "description", "Ihr Anliegen"),
        ({"description": "x" * 4001}, "description", "4000"),
        ({"name": None}, "name", "Name"),
        ({"email": "eva@web"}, "email", "keine gültige E-Mail-Adresse"),
        ({"email": None, "phone": None}, "email", "Telefonnummer"),
        ({"phone": "bitte anrufen"}, "phone", "Telefonnummer"),
        ({"consent": False}, "consent", "Datenschutz"),
        ({"department": "zoo"}, "department", "buergerbuero"),
        ({"client_id": None}, "client_id", "client_id"),
        ({"language": "en", "description": ""}, "description", "Please fill in"),
        ({"language": "en", "email": "nope"}, "email", "not a valid e-mail"),
        ({"language": "fr"}, "language", "de, en, tr, ar, uk, ru"),
    ],
)
async def test_invalid_input_names_the_field(
    offline_stack: Stack, change: dict[str, Any], field: str, words: str
) -> None:
    """Each wrong field is answered with 400, the field's name and a message in the
    citizen's language; nothing is created."""
    before = query(offline_stack, "SELECT count(*) FROM cases")[0][0]
    status, error = await submit(offline_stack, form(**change))
    assert status == 400, error
    assert error["field"] == field and words in error["error"]
    assert query(offline_stack, "SELECT count(*) FROM cases")[0][0] == before


# --- the outbox -----------------------------------------------------------------


async def test_smtp_outage_loses_nothing_and_sends_each_mail_once(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """With the SMTP server down, messages are still accepted; their mails wait
    and are retried; once the server is back every mail arrives exactly once."""
    smtp.stop()
    try:
        cases = []
        for i in range(3):
            status, case = await submit(
                offline_stack, form(description=f"Nachricht {i} während der Störung")
            )
            assert status == 201
            cases.append(case)
        ids = tuple(c["case_id"] for c in cases)
        marks = ",".join("?" * len(ids))
        for _ in range(300):
            rows = query(
                offline_stack,
                f"SELECT state, attempts, last_error FROM mail_outbox "
                f"WHERE case_id IN ({marks})",
                *ids,
            )
            if len(rows) == 6 and all(a >= 1 for _, a, _ in rows):
                break
            await asyncio.sleep(0.2)
        assert len(rows) == 6 and all(a >= 1 for _, a, _ in rows), rows
        assert all(state in ("queued", "sending") for state, _, _ in rows)
        assert all(
            error and "not reachable" in error for s, _, error in rows if s == "queued"
        )
        assert not any(of_case(smtp, c["reference"]) for c in cases)
    finally:
        smtp.start()
    for case in cases:
        mails = await wait_mails(smtp, case["reference"], 2, lambda m: True)
        # the team mail names the sender; the confirmation carries no typed
        # name (a bare address), so a stranger's name never reaches a mailbox
        assert "eva@example.org" in [str(m["To"]) for m in mails]
        assert sorted(parseaddr(str(m["To"]))[1] for m in mails) == [
            "buergerbuero@musterstadt.example",
            "eva@example.org",
        ]
    for _ in range(300):
        states = query(
            offline_stack,
            f"SELECT state FROM mail_outbox WHERE case_id IN ({marks})",
            *ids,
        )
        if all(s == "sent" for (s,) in states):
            break
        await asyncio.sleep(0.2)
    assert [s for (s,) in states] == ["sent"] * 6
    for case in cases:  # all sent: nothing is left that could arrive again
        ids_seen = [m["Message-ID"] for m in of_case(smtp, case["reference"])]
        assert len(ids_seen) == 2 == len(set(ids_seen))


async def test_refused_mail_is_parked_and_admins_are_told(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """A 5xx answer parks the mail at once (no retries) and posts an alert in the
    admin room; the department's mail of the same message is still delivered."""
    status, case = await submit(offline_stack, form(email=REFUSED))
    assert status == 201
    reference = case["reference"]
    await wait_mails(smtp, reference, 1, to("buergerbuero@musterstadt.example"))
    alert = await wait_room_text(
        offline_stack, "#buergerchat-admin:buergerchat.localhost", reference, REFUSED
    )
    assert "nicht zugestellt" in alert and "550" in alert
    [(state, attempts)] = query(
        offline_stack,
        "SELECT state, attempts FROM mail_outbox WHERE case_id = ? AND recipients "
        "LIKE ?",
        case["case_id"],
        f"%{REFUSED}%",
    )
    assert (state, attempts) == ("parked", 1)
    assert not any(REFUSED in str(m["To"]) for m in of_case(smtp, reference))


# --- answered later ---------------------------------------------------------------


LINK = re.compile(r"#bc-resume=(c_[A-Za-z0-9_\-]+)\.([A-Za-z0-9_\-]+)")


async def test_staff_answer_mails_a_link_that_resumes_the_chat(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """Staff answer in the case room → one "there is an answer" mail with a
    personal link (not one per staff line); the link's token gets a new chat
    token, the answer is in the events, the citizen's reply reaches the room; the
    next staff answer after that mails a new link."""
    status, case = await submit(offline_stack, form())
    assert status == 201
    reference = case["reference"]
    anna = await staff_client(offline_stack, ANNA)
    try:
        room_id = await join_case_room(anna, reference)
        await history_notice(
            offline_stack, anna, room_id, "Antworten Sie einfach hier im Raum"
        )
        for line in ("Guten Tag Frau Muster,", "Ihr neuer Ausweis ist beantragt."):
            await anna.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": line}
            )
        # The bot answers !help after it handled both lines (one ordered inbox).
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "!help"}
        )
        await bot_notice(anna, room_id, "Befehle in diesem Raum")
        [notice] = await wait_mails(
            smtp, reference, 1, subject_has("Es gibt eine Antwort")
        )
        assert notice["To"].addresses[0].addr_spec == "eva@example.org"
        text = body_of(notice)
        assert "Ihr neuer Ausweis" not in text  # the answer itself stays in the chat
        match = LINK.search(text)
        assert match, text
        assert (
            text[: match.start()].rstrip().endswith(offline_stack.bridge_url + "/demo")
        )
        case_id, resume_token = match.groups()
        assert case_id == case["case_id"]
        answers = query(
            offline_stack,
            "SELECT count(*) FROM mail_outbox WHERE case_id = ? AND subject LIKE ?",
            case_id,
            "%Es gibt eine Antwort%",
        )
        assert answers == [(1,)]

        status, resumed = await api(
            offline_stack, "POST", f"/api/v1/cases/{case_id}/resume", token=resume_token
        )
        assert status == 200, resumed
        assert resumed["case_id"] == case_id and resumed["reference"] == reference
        assert resumed["token"] not in (resume_token, case["token"])
        staff_line, _ = await wait_for_event(
            offline_stack,
            resumed,
            lambda e: e.get("body") == "Ihr neuer Ausweis ist beantragt.",
        )
        assert staff_line["sender"] == "staff" and staff_line["type"] == "message"

        status, sent = await api(
            offline_stack,
            "POST",
            f"/api/v1/cases/{case_id}/messages",
            token=resumed["token"],
            json={"body": "Danke, wann kann ich ihn abholen?", "client_id": "r-1"},
        )
        assert status in (201, 202), sent
        await wait_for_message(anna, room_id, "Danke, wann kann ich ihn abholen?")

        await anna.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": "Ab nächstem Mittwoch."},
        )
        mails = await wait_mails(
            smtp, reference, 2, subject_has("Es gibt eine Antwort")
        )
        second = LINK.search(body_of(mails[1]))
        assert second and second.group(2) != resume_token
    finally:
        await anna.close()


async def answered(
    stack: Stack, smtp: Smtp, anna: AsyncClient, answer: str
) -> tuple[dict[str, Any], str, str]:
    """An offline message that Anna answers: the case, its room and the resume
    token from the "Es gibt eine Antwort" mail."""
    status, case = await submit(stack, form())
    assert status == 201
    room_id = await join_case_room(anna, case["reference"])
    await anna.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": answer}
    )
    [notice] = await wait_mails(
        smtp, case["reference"], 1, subject_has("Es gibt eine Antwort")
    )
    match = LINK.search(body_of(notice))
    assert match, body_of(notice)
    return case, room_id, match.group(2)


async def test_expired_or_unknown_link_is_refused(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """A resume token past its expiry answers 401 BC_LINK_EXPIRED with a clear
    text; an unknown token, or the chat token, answers 401 BC_UNKNOWN_TOKEN."""
    anna = await staff_client(offline_stack, ANNA)
    try:
        case, _, resume_token = await answered(offline_stack, smtp, anna, "Antwort.")
    finally:
        await anna.close()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    changed = query(
        offline_stack,
        "UPDATE case_tokens SET expires_at = ? WHERE token_hash = ? "
        "AND purpose = 'resume' RETURNING token_hash",
        yesterday,
        token_hash(resume_token),
    )
    assert len(changed) == 1
    path = f"/api/v1/cases/{case['case_id']}/resume"
    status, error = await api(offline_stack, "POST", path, token=resume_token)
    assert status == 401 and error["errcode"] == "BC_LINK_EXPIRED"
    assert "abgelaufen" in error["error"] and "neue Nachricht" in error["error"]
    for wrong in ("not-a-token", case["token"]):
        status, error = await api(offline_stack, "POST", path, token=wrong)
        assert status == 401 and error["errcode"] == "BC_UNKNOWN_TOKEN"
    status, error = await api(offline_stack, "POST", path)
    assert status == 401 and error["errcode"] == "BC_MISSING_TOKEN"


async def test_link_outlives_the_close_until_staff_revoke_it(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """Staff answer and close at once: the mailed link still opens the (now
    read-only) case with the answer; after !revoke it is refused."""
    anna = await staff_client(offline_stack, ANNA)
    try:
        case, room_id, token = await answered(offline_stack, smtp, anna, "Erledigt.")
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "!close"}
        )
        await wait_for_event(offline_stack, case, lambda e: e.get("kind") == "closed")
        path = f"/api/v1/cases/{case['case_id']}/resume"
        status, resumed = await api(offline_stack, "POST", path, token=token)
        assert status == 200, resumed
        answer, _ = await wait_for_event(
            offline_stack, resumed, lambda e: e.get("body") == "Erledigt."
        )
        assert answer["sender"] == "staff"
        status, refused = await api(
            offline_stack,
            "POST",
            f"/api/v1/cases/{case['case_id']}/messages",
            token=resumed["token"],
            json={"body": "Noch eine Frage", "client_id": "late-1"},
        )
        assert status == 409 and refused["errcode"] == "BC_CASE_CLOSED", refused

        # Staff left the closed case's room, so !revoke is tried on an open case.
        case, room_id, token = await answered(offline_stack, smtp, anna, "Antwort.")
        await anna.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "!revoke"}
        )
        await bot_notice(anna, room_id, "ungültig gemacht")
    finally:
        await anna.close()
    path = f"/api/v1/cases/{case['case_id']}/resume"
    status, error = await api(offline_stack, "POST", path, token=token)
    assert status == 401 and error["errcode"] == "BC_UNKNOWN_TOKEN", error


# --- a queued chat becomes a message ------------------------------------------------


async def test_queued_chat_becomes_an_offline_message(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """A citizen waiting in the queue leaves a message instead (case_id + chat
    token): the same case turns offline, the message is its citizen message, the
    department is mailed and all its staff are invited; another case's token, no
    token, or a case that is not queued are refused."""
    opened = []
    for _ in range(6):
        status, case = await api(
            offline_stack,
            "POST",
            "/api/v1/cases",
            json={"department": "standesamt", "consent": True, "name": "Eva"},
        )
        assert status == 201, case
        opened.append(case)
        if case["state"] == "queued":
            break
    queued = opened[-1]
    assert queued["state"] == "queued", opened
    live = opened[0]
    assert live["state"] == "live"

    body = form(
        case_id=queued["case_id"],
        department=None,
        topic=None,
        description="Ich warte zu lange; bitte rufen Sie mich zurück.",
    )
    status, error = await submit(offline_stack, body)
    assert status == 401 and error["errcode"] == "BC_MISSING_TOKEN"
    status, error = await submit(offline_stack, body, token=live["token"])
    assert status == 403, error
    status, error = await submit(
        offline_stack, form(case_id=live["case_id"]), token=live["token"]
    )
    assert status == 409 and error["errcode"] == "BC_NOT_QUEUED"

    status, converted = await submit(offline_stack, body, token=queued["token"])
    assert status == 201, converted
    assert converted["case_id"] == queued["case_id"]
    assert converted["reference"] == queued["reference"]
    assert converted["state"] == "offline"
    status, again = await submit(offline_stack, body, token=queued["token"])
    assert status == 200 and again["case_id"] == queued["case_id"]

    timeline = await events(offline_stack, converted)
    assert any(
        e["type"] == "message"
        and e["sender"] == "citizen"
        and e["body"] == "Ich warte zu lange; bitte rufen Sie mich zurück."
        for e in timeline
    )
    assert any(e.get("kind") == "offline_received" for e in timeline)
    [office] = await wait_mails(
        smtp, queued["reference"], 1, to("standesamt@musterstadt.example")
    )
    assert "Ich warte zu lange" in body_of(office)

    for mxid in (
        "@clara.wagner:buergerchat.localhost",
        "@dieter.braun:buergerchat.localhost",
    ):
        client = await staff_client(offline_stack, mxid)
        try:
            room_id = await join_case_room(client, queued["reference"])
            await history_notice(offline_stack, client, room_id, "eva@example.org")
        finally:
            await client.close()


# --- accessibility statement and feedback (BITV 2.0 § 7) ------------------------


async def test_statement_and_easy_language_pages_pass_axe(
    offline_stack: Stack,
    browser: Browser,  # noqa: F811
) -> None:
    """The statement (with its form) and the Leichte Sprache page: no axe
    violation at desktop and phone width, headings and the DGS gap said."""
    context = await new_context(browser)
    try:
        page = await context.new_page()
        await page.goto(offline_stack.bridge_url + "/accessibility")
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Erklärung zur Barrierefreiheit"
        )
        await expect(page.get_by_text("teilweise vereinbar")).to_be_visible()
        await expect(
            page.get_by_text("Deutscher Gebärdensprache (DGS)")
        ).to_be_visible()
        await assert_accessible(page, "accessibility statement", scope="page")
        await page.get_by_role(
            "link", name="Der Bürgerchat in Leichter Sprache"
        ).click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Der Bürger·chat in Leichter Sprache"
        )
        await assert_accessible(page, "Leichte Sprache", scope="page")
    finally:
        await context.close()


async def test_feedback_form_works_without_javascript(
    offline_stack: Stack,
    smtp: Smtp,
    browser: Browser,  # noqa: F811
) -> None:
    """With JavaScript off: an empty report is refused with the field marked and
    its error tied to it, nothing mailed; a filled one is thanked with a number
    and that number arrives by mail at the feedback address, replies to the
    sender; sent again (the browser's reload), still one mail."""
    context = await browser.new_context(java_script_enabled=False, locale="de-DE")
    try:
        page = await context.new_page()
        await page.goto(offline_stack.bridge_url + "/accessibility")
        await page.get_by_role("button", name="Rückmeldung senden").click()
        described = page.get_by_role("textbox", name="Was funktioniert nicht?")
        await expect(described).to_have_attribute("aria-invalid", "true")
        await expect(described).to_have_accessible_description(
            re.compile("Bitte füllen Sie das Feld")
        )
        await expect(page.get_by_role("alert")).to_contain_text("nicht gesendet")
        marker = uuid.uuid4().hex[:8]
        await described.fill(f"Kontrast zu schwach {marker}")
        await page.get_by_role("textbox", name="Wo ist das Problem?").fill("Auswahl")
        await page.get_by_role("textbox", name="Ihre E-Mail-Adresse").fill(
            "lea@example.org"
        )
        await page.get_by_role("checkbox").check()
        sent = {
            "description": f"Kontrast zu schwach {marker}",
            "where": "Auswahl",
            "email": "lea@example.org",
            "consent": "yes",
            "client_id": await page.locator("input[name=client_id]").input_value(),
        }
        await page.get_by_role("button", name="Rückmeldung senden").click()
        await expect(page.get_by_role("status")).to_contain_text("Vielen Dank")
        number = re.search(
            r"BF-[0-9A-F]{10}", await page.get_by_role("status").inner_text()
        )
        assert number is not None
        [mail] = await wait_mails(smtp, number[0], 1, to("barrierefreiheit@"))
        assert "lea@example.org" in str(mail["Reply-To"])
        assert f"Kontrast zu schwach {marker}" in body_of(mail)
        # The same form sent again (a reload of the answer): the same number.
        async with aiohttp.ClientSession() as session:
            async with session.post(
                offline_stack.bridge_url + "/accessibility", data=sent
            ) as again:
                assert again.status == 200
                assert number[0] in await again.text()
        await asyncio.sleep(1.5)
        assert len(of_case(smtp, number[0])) == 1
    finally:
        await context.close()


async def test_feedback_flood_is_limited_and_nothing_is_lost(
    offline_stack: Stack, smtp: Smtp
) -> None:
    """Twelve reports at once from one address: at most three a minute are
    taken, the rest answered 429 with Retry-After and nothing stored; every
    taken one arrives by mail exactly once. Wrong input is a 400 naming the
    field, in the sender's language."""
    marker = uuid.uuid4().hex[:8]

    async def report(n: int) -> tuple[int, Any]:
        return await api(
            offline_stack,
            "POST",
            "/api/v1/accessibility/feedback",
            json={"description": f"Flut {marker} {n}", "consent": True},
        )

    answers = await asyncio.gather(*(report(n) for n in range(12)))
    taken = [body["reference"] for status, body in answers if status == 202]
    refused = [body for status, body in answers if status == 429]
    assert 1 <= len(taken) <= 3 and len(taken) + len(refused) == 12, answers
    assert all(b["errcode"] == "BC_RATE_LIMITED" for b in refused)
    assert all(b["retry_after_seconds"] >= 1 for b in refused)
    for reference in taken:
        await wait_mails(smtp, reference, 1, to("barrierefreiheit@"))
    await asyncio.sleep(1.5)
    flood = [r for r in smtp.received if marker in body_of(r.message)]
    assert len(flood) == len(taken)

    status, body = await api(
        offline_stack,
        "POST",
        "/api/v1/accessibility/feedback",
        json={
            "description": "x",
            "consent": True,
            "email": "lea@web",
            "language": "en",
        },
    )
    assert status == 400 and body["field"] == "email" and "e-mail" in body["error"]
