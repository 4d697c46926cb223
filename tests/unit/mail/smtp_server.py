"""A real SMTP server (aiosmtpd) on loopback that records what it received.

It runs in the test's own event loop, so a test can stop it (connections are then
refused, as with a crashed mail server), start it again on the same port, and make
it answer RCPT or DATA with a chosen 4xx/5xx reply.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """aiosmtpd handler: keeps accepted mails; optional forced replies."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None
    refuse: set[str] = field(default_factory=set)
    data_reply: str | None = None
    data_delay: float = 0.0

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        await asyncio.sleep(self.data_delay)
        if self.data_reply is not None:
            return self.data_reply
        login = session.auth_data.login.decode() if session.auth_data else None
        assert isinstance(envelope.content, bytes)
        self.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=envelope.content,
                login=login,
            )
        )
        return "250 2.0.0 Message accepted"

    def message_ids(self) -> list[str]:
        return [str(r.message["Message-ID"]) for r in self.received]


class SmtpServer:
    """Start/stop a recording aiosmtpd on 127.0.0.1; the port stays the same."""

    def __init__(
        self,
        *,
        implicit_tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        **smtp_options: Any,
    ) -> None:
        self.handler = Recorder()
        self.host = "127.0.0.1"
        self.port = 0
        self._implicit_tls = implicit_tls
        self._users = users
        self._options = smtp_options
        self._server: asyncio.Server | None = None

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self._users is not None
            and self._users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _protocol(self) -> SMTP:
        extra: dict[str, Any] = {}
        if self._users is not None:
            extra["authenticator"] = self._authenticate
        return SMTP(self.handler, hostname="mx.test", **extra, **self._options)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self.host, self.port, ssl=self._implicit_tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the certificate file to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "mx-cert.pem"
    key_file = folder / "mx-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
