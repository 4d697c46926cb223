"""Where an outgoing mail is handed over: an SMTP server or a local Maildir.

Both backends sit behind :class:`MailBackend`, and both raise only
:class:`TemporaryFailure` (try again later) or :class:`PermanentFailure` (trying
again cannot help). The outbox decides what to do with either.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import aiosmtplib

from bridge.mail.settings import MailSettings, SmtpSettings

log = logging.getLogger("buergerchat.mail")


class DeliveryError(Exception):
    """A mail was not handed over; ``permanent`` says whether a retry can help."""

    permanent: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemporaryFailure(DeliveryError):
    """Server down, refused connection, timeout or a 4xx answer: retry later."""


class PermanentFailure(DeliveryError):
    """A 5xx answer to this mail (sender, recipients or content refused)."""

    permanent = True


class MailBackend(Protocol):
    """Hands one finished message to its next hop."""

    @property
    def deadline_seconds(self) -> float:
        """The longest one :meth:`send` may take, connection to answer."""
        ...

    def describe(self) -> str:
        """Where mail goes, for logs and alerts (no secrets)."""
        ...

    async def send(
        self, raw: bytes, *, sender: str, recipients: Sequence[str]
    ) -> str | None:
        """Hand the mail over; return a remark worth keeping (e.g. refused
        recipients when others were accepted) or None. Raise DeliveryError."""
        ...


def _response_text(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


def classify(exc: BaseException, where: str) -> DeliveryError:
    """Turn an aiosmtplib (or socket) exception into a temporary/permanent failure.

    Only a 5xx answer about *this* mail (MAIL FROM, RCPT TO, DATA) is permanent.
    A refused login is temporary: it is a configuration problem of the whole
    outbox, not of one mail, and once an admin fixes the password the queued
    mails should still go out (after ``max_attempts`` they are parked anyway).
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        texts = [
            f"{r.recipient}: {_response_text(r.code, r.message)}"
            for r in exc.recipients
        ]
        permanent = all(500 <= r.code < 600 for r in exc.recipients)
        return _failure(
            permanent, f"{where} refused the recipients: " + "; ".join(texts)
        )
    if isinstance(
        exc,
        aiosmtplib.SMTPSenderRefused
        | aiosmtplib.SMTPRecipientRefused
        | aiosmtplib.SMTPDataError,
    ):
        text = _response_text(exc.code, exc.message)
        return _failure(500 <= exc.code < 600, f"{where} refused the mail: {text}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        text = _response_text(exc.code, exc.message)
        return TemporaryFailure(
            f"{where} refused the login ({text}); check mail.smtp.username and "
            "the password"
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = _response_text(exc.code, exc.message)
        return TemporaryFailure(f"{where} answered {text}")
    if isinstance(exc, TimeoutError):
        return TemporaryFailure(f"{where} did not answer in time")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return TemporaryFailure(f"TLS with {where} failed: {exc}")
    if isinstance(exc, OSError | aiosmtplib.SMTPException):
        return TemporaryFailure(f"{where} is not reachable: {exc}")
    if isinstance(exc, ValueError):
        # aiosmtplib refuses addresses it cannot put into MAIL FROM / RCPT TO.
        return PermanentFailure(f"cannot send to {where}: {exc}")
    return TemporaryFailure(f"unexpected error with {where}: {exc!r}")


def _failure(permanent: bool, message: str) -> DeliveryError:
    return PermanentFailure(message) if permanent else TemporaryFailure(message)


class SmtpBackend:
    """Sends over SMTP with STARTTLS, implicit TLS or (on loopback) plain.

    Each mail opens its own connection: the outbox sends one mail at a time, and
    a fresh connection cannot be left half-broken by the previous mail.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float = 30.0,
        ca_file: Path | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"unknown SMTP security {security!r}")
        if timeout_seconds <= 0:
            raise ValueError("the SMTP timeout must be positive")
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.timeout_seconds = timeout_seconds
        self._tls_context: ssl.SSLContext | None = None
        if security != "none":
            self._tls_context = ssl.create_default_context(
                cafile=str(ca_file) if ca_file else None
            )

    @classmethod
    def from_settings(cls, settings: SmtpSettings) -> SmtpBackend:
        return cls(
            settings.host,
            settings.port,
            security=settings.security,
            username=settings.username,
            password=settings.password,
            timeout_seconds=settings.timeout_seconds,
            ca_file=settings.ca_file,
        )

    @property
    def deadline_seconds(self) -> float:
        # aiosmtplib's timeout bounds each step (connect, TLS, login, MAIL, RCPT,
        # DATA); the whole exchange gets a few of them.
        return self.timeout_seconds * 4

    def describe(self) -> str:
        return f"SMTP server {self.host}:{self.port} ({self.security})"

    async def send(
        self, raw: bytes, *, sender: str, recipients: Sequence[str]
    ) -> str | None:
        where = f"the SMTP server {self.host}:{self.port}"
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            timeout=self.timeout_seconds,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self._tls_context,
        )
        try:
            async with asyncio.timeout(self.deadline_seconds):
                async with client:
                    refused, _ = await client.sendmail(sender, list(recipients), raw)
        except Exception as exc:  # every failure is classified, none escapes raw
            raise classify(exc, where) from exc
        if refused:
            texts = [
                f"{rcpt}: {_response_text(r.code, r.message)}"
                for rcpt, r in refused.items()
            ]
            remark = f"{where} refused some recipients: " + "; ".join(texts)
            log.warning("%s", remark)
            return remark
        return None


class MaildirBackend:
    """Writes each mail into a local Maildir: the embedded default, no server.

    The envelope is kept as ``Return-Path`` and ``X-Envelope-To`` headers, so an
    admin reading the folder sees whom the mail was for. Files are fsynced before
    the outbox marks the mail sent.
    """

    def __init__(self, path: Path, timeout_seconds: float = 30.0) -> None:
        self.path = path
        self.timeout_seconds = timeout_seconds

    @property
    def deadline_seconds(self) -> float:
        return self.timeout_seconds

    def describe(self) -> str:
        return f"Maildir {self.path}"

    async def send(
        self, raw: bytes, *, sender: str, recipients: Sequence[str]
    ) -> str | None:
        try:
            async with asyncio.timeout(self.deadline_seconds):
                await asyncio.to_thread(self._deliver, raw, sender, recipients)
        except TimeoutError as exc:
            message = f"writing to {self.describe()} took too long"
            raise TemporaryFailure(message) from exc
        except OSError as exc:
            message = f"cannot write to {self.describe()}: {exc}"
            raise TemporaryFailure(message) from exc
        return None

    def forget(self, message_ids: Sequence[str]) -> int:
        """Delete the delivered copies of these mails (by ``Message-ID``) from
        the Maildir, as erasure asks; how many files went."""
        wanted = {m.strip() for m in message_ids}
        if not wanted or not self.path.is_dir():
            return 0
        removed = 0
        for folder in ("new", "cur", "tmp"):
            for path in (self.path / folder).glob("*"):
                try:
                    with path.open("rb") as f:
                        head = f.read(16384)
                except OSError:
                    continue
                message_id = _header(head, b"message-id")
                if message_id in wanted:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def _deliver(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        envelope = f"Return-Path: <{sender}>\nX-Envelope-To: {', '.join(recipients)}\n"
        data = envelope.encode("ascii", "replace") + raw.replace(b"\r\n", b"\n")
        box = mailbox.Maildir(self.path, factory=None, create=True)
        key = box.add(data)
        # Maildir.add renames tmp/<key> to new/<key>; make both durable.
        _fsync(self.path / "new" / key)
        _fsync(self.path / "new")


def _header(head: bytes, name: bytes) -> str | None:
    """One header's value from the start of a stored mail (no unfolding: the
    headers looked for here are short)."""
    for line in head.split(b"\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("ascii", "replace")
    return None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_backend(settings: MailSettings) -> MailBackend:
    """The backend the settings choose."""
    if settings.backend == "smtp":
        if settings.smtp is None:
            raise ValueError("backend smtp needs mail.smtp settings")
        return SmtpBackend.from_settings(settings.smtp)
    return MaildirBackend(settings.maildir)
