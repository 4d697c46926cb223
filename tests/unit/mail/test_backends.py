"""The two backends against real servers and folders, and how their failures are
classified: temporary (retry later) or permanent (park)."""

from __future__ import annotations

import asyncio
import mailbox
import time
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from bridge.mail.backends import (
    MaildirBackend,
    PermanentFailure,
    SmtpBackend,
    TemporaryFailure,
    make_backend,
)
from bridge.mail.settings import MailSettings, Sender, SmtpSettings
from tests.unit.mail.smtp_server import SmtpServer, self_signed_tls

SENDER = "buergerchat@hockenheim.de"


def _raw(to: str = "amt@hockenheim.de", subject: str = "Grüße aus Hockenheim") -> bytes:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<m1@hockenheim.de>"
    msg.set_content("Schöne Grüße\n", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes(policy=policy.SMTP)


def _plain(server: SmtpServer, **options: object) -> SmtpBackend:
    return SmtpBackend(server.host, server.port, security="none", **options)  # type: ignore[arg-type]


async def test_smtp_delivers_the_bytes_with_the_envelope(smtp: SmtpServer) -> None:
    """The server gets the message, envelope sender and recipients as given."""
    remark = await _plain(smtp).send(
        _raw(), sender=SENDER, recipients=["amt@hockenheim.de"]
    )
    assert remark is None
    [got] = smtp.received
    assert (got.mail_from, got.rcpt_tos) == (SENDER, ["amt@hockenheim.de"])
    assert got.message["Subject"] == "Grüße aus Hockenheim"
    assert got.message["Message-ID"] == "<m1@hockenheim.de>"


async def test_smtp_server_down_is_temporary(smtp: SmtpServer) -> None:
    """Connection refused (server stopped) is a temporary failure."""
    await smtp.stop()
    with pytest.raises(TemporaryFailure, match="not reachable"):
        await _plain(smtp).send(_raw(), sender=SENDER, recipients=["a@b.de"])


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_smtp_silent_server_times_out_as_temporary(silent_server: int) -> None:
    """A server that never greets is given up on after the timeout, temporarily."""
    backend = SmtpBackend(
        "127.0.0.1", silent_server, security="none", timeout_seconds=0.3
    )
    started = time.monotonic()
    with pytest.raises(TemporaryFailure, match="did not answer in time"):
        await backend.send(_raw(), sender=SENDER, recipients=["a@b.de"])
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("where", "reply", "failure"),
    [
        ("rcpt", "550 5.1.1 User unknown", PermanentFailure),
        ("rcpt", "451 4.7.1 Greylisted, try again later", TemporaryFailure),
        ("data", "552 5.3.4 Message too big", PermanentFailure),
        ("data", "452 4.3.1 Insufficient system storage", TemporaryFailure),
    ],
)
async def test_smtp_answers_are_classified_by_code(
    smtp: SmtpServer, where: str, reply: str, failure: type[Exception]
) -> None:
    """5xx to RCPT or DATA is permanent, 4xx temporary; the reply is kept."""
    setattr(smtp.handler, f"{where}_reply", reply)
    with pytest.raises(failure) as info:
        await _plain(smtp).send(_raw(), sender=SENDER, recipients=["a@b.de"])
    assert reply.split()[0] in str(info.value)
    assert smtp.received == []


async def test_smtp_partly_refused_recipients_are_a_remark(smtp: SmtpServer) -> None:
    """One refused recipient of two: the mail goes to the other, with a remark."""
    smtp.handler.refuse = {"weg@hockenheim.de"}
    remark = await _plain(smtp).send(
        _raw(), sender=SENDER, recipients=["amt@hockenheim.de", "weg@hockenheim.de"]
    )
    assert remark is not None and "weg@hockenheim.de: 550" in remark
    assert [r.rcpt_tos for r in smtp.received] == [["amt@hockenheim.de"]]


@pytest.fixture
def tls(tmp_path: Path) -> tuple[object, Path]:
    return self_signed_tls(tmp_path)


async def test_starttls_with_login_and_own_ca(tls: tuple[object, Path]) -> None:
    """STARTTLS, then login; the server's certificate is trusted via ca_file."""
    context, ca_file = tls
    server = SmtpServer(
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        users={"chat": "r1chtig"},
    )
    await server.start()
    try:
        backend = SmtpBackend(
            "127.0.0.1",
            server.port,
            security="starttls",
            username="chat",
            password="r1chtig",
            ca_file=ca_file,
        )
        await backend.send(_raw(), sender=SENDER, recipients=["amt@hockenheim.de"])
        [got] = server.received
        assert got.login == "chat"

        wrong = SmtpBackend(
            "127.0.0.1",
            server.port,
            username="chat",
            password="falsch",
            ca_file=ca_file,
        )
        with pytest.raises(TemporaryFailure, match="refused the login"):
            await wrong.send(_raw(), sender=SENDER, recipients=["a@b.de"])
    finally:
        await server.stop()


async def test_implicit_tls_and_untrusted_certificate(
    tls: tuple[object, Path],
) -> None:
    """Implicit TLS works with the CA given, and fails (temporarily) without it."""
    context, ca_file = tls
    server = SmtpServer(implicit_tls=context)  # type: ignore[arg-type]
    await server.start()
    try:
        trusted = SmtpBackend("127.0.0.1", server.port, security="tls", ca_file=ca_file)
        await trusted.send(_raw(), sender=SENDER, recipients=["amt@hockenheim.de"])
        assert len(server.received) == 1

        untrusted = SmtpBackend(
            "127.0.0.1", server.port, security="tls", timeout_seconds=5
        )
        with pytest.raises(TemporaryFailure, match="(?i)certificate|TLS"):
            await untrusted.send(_raw(), sender=SENDER, recipients=["a@b.de"])
        assert len(server.received) == 1
    finally:
        await server.stop()


async def test_maildir_writes_files_mailbox_can_read(tmp_path: Path) -> None:
    """Each mail becomes one file in new/, readable by mailbox.Maildir, with
    the envelope as Return-Path and X-Envelope-To."""
    folder = tmp_path / "mail"
    backend = MaildirBackend(folder)
    await backend.send(_raw(), sender=SENDER, recipients=["amt@hockenheim.de"])
    await backend.send(
        _raw(subject="Zweite"), sender=SENDER, recipients=["x@hockenheim.de"]
    )
    box = mailbox.Maildir(folder, create=False)
    messages = {str(m["Subject"]): m for m in map(_parse, box.values())}
    assert set(messages) == {"Grüße aus Hockenheim", "Zweite"}
    first = messages["Grüße aus Hockenheim"]
    assert first["Return-Path"] == f"<{SENDER}>"
    assert first["X-Envelope-To"] == "amt@hockenheim.de"
    assert first.get_content() == "Schöne Grüße\n"
    files = list((folder / "new").iterdir())
    assert len(files) == 2
    assert all(b"\r\n" not in f.read_bytes() for f in files)


def _parse(stored: mailbox.MaildirMessage) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(stored.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_maildir_unwritable_is_temporary(tmp_path: Path) -> None:
    """A Maildir path that cannot be created is a temporary failure, not a crash."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TemporaryFailure, match="cannot write"):
        await MaildirBackend(blocker / "mail").send(
            _raw(), sender=SENDER, recipients=["a@b.de"]
        )


def test_make_backend_follows_the_settings(tmp_path: Path) -> None:
    """backend: maildir gives the Maildir backend, backend: smtp the SMTP one."""
    sender = Sender(SENDER, "Bürgerchat")
    smtp = SmtpSettings("mx.example.org", 465, "tls", None, None, 10.0)
    maildir = make_backend(MailSettings(sender, "maildir", tmp_path, smtp))
    assert isinstance(maildir, MaildirBackend) and maildir.path == tmp_path
    remote = make_backend(MailSettings(sender, "smtp", tmp_path, smtp))
    assert isinstance(remote, SmtpBackend)
    assert remote.describe() == "SMTP server mx.example.org:465 (tls)"
    assert remote.deadline_seconds == 40.0
