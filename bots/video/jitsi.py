"""Jitsi Meet conferences and the JWTs that let one person into exactly one of them.

Pure functions over :class:`JitsiSettings`; no network. The claim layout follows
Jitsi's token authentication as its sources define it:

* ``jitsi/lib-jitsi-meet`` ``doc/tokens.md``: ``iss`` = application id, ``aud``
  negotiated with the server, ``sub`` = lower-case tenant or domain, ``room`` = the
  bare conference name (not the MUC address), ``exp``; ``context.user`` with
  ``id``/``name``/``email``/``avatar``, where every present field must be a string
  (numbers or ``null`` raise in Prosody). The token travels as ``?jwt=`` in the
  Jitsi Meet URL or as the ``jwt`` option of the iframe API.
* ``jitsi/jitsi-meet`` ``resources/prosody-plugins/token/util.lib.lua``: ``iss`` must
  be in ``asap_accepted_issuers`` (default ``{app_id}``), ``aud`` in
  ``asap_accepted_audiences`` (default ``{"*"}``), ``room`` is required and is
  compared as ``room == string.lower(claims.room)`` unless it is ``"*"``.
* ``jitsi/jitsi-meet`` ``resources/prosody-plugins/luajwtjitsi.lib.lua``: header
  ``typ`` must be ``"JWT"``, ``exp``/``nbf`` must be numbers, checked against the
  server clock; ``aud`` is compared as one string.
* ``jitsi/jitsi-meet`` ``resources/prosody-plugins/mod_token_affiliation.lua``:
  owner (moderator) when ``context.user.affiliation`` is ``"owner"`` or
  ``"moderator"`` or ``context.user.moderator`` is ``"true"``/``true``; every other
  authenticated occupant becomes ``"member"``.
* ``nvonahsen/jitsi-token-moderation-plugin`` ``mod_token_moderation.lua``: reads a
  top-level boolean ``moderator`` claim instead.
"""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import jwt

#: Jitsi's HS256 mode (``app_secret`` in Prosody); RS256 via a key server is unused.
ALGORITHM: Final = "HS256"

#: ``nbf`` lies this far before ``iat`` so a Prosody clock that runs a little behind
#: ours does not reject a fresh token with "Not acceptable by nbf".
CLOCK_SKEW_SECONDS: Final = 60

#: Longest display name put into a token; it also ends up in a URL.
MAX_DISPLAY_NAME_LENGTH: Final = 100

#: HS256 keys shorter than the hash output weaken the MAC (RFC 7518, 3.2).
MIN_SECRET_LENGTH: Final = 32

#: Secrets copied from Jitsi's and docker-jitsi-meet's examples.
PLACEHOLDER_SECRETS: Final = frozenset(
    {"example_app_secret", "jwt-secret-here", "changeme", "secret", "app_secret"}
)

#: 20 random bytes = 160 bits, base32 without padding = 32 characters.
CONFERENCE_ID_BYTES: Final = 20

# Lower case only: Prosody lower-cases the MUC room name before comparing it with the
# token's ``room``; letters and digits need no escaping in a URL or a JID.
_CONFERENCE_ID_RE: Final = re.compile(r"[a-z0-9]{26,64}")
_HOST_RE: Final = re.compile(
    r"(?=.{1,253}(:|$))[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?"
)
_TENANT_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class JitsiConfigError(ValueError):
    """A Jitsi setting is missing or wrong; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"jitsi.{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class JitsiSettings:
    """How to reach the town's Jitsi Meet and how to sign tokens for it.

    Without ``app_id`` and ``app_secret`` the Jitsi server is taken to be open
    (no token authentication) and :func:`participant_token` returns ``None``.
    """

    #: Public host name of Jitsi Meet, optionally with a port: ``meet.example.de``.
    domain: str
    #: Prosody ``app_id``; becomes the ``iss`` claim.
    app_id: str | None = None
    #: Prosody ``app_secret`` (HS256 key); see :func:`load_secret`.
    app_secret: str | None = field(default=None, repr=False)
    #: Lifetime of a token. Jitsi checks it only while connecting, so a short one
    #: is enough; a reconnect after expiry needs a fresh token.
    token_ttl_seconds: int = 300
    #: ``aud``: must be in Prosody's ``asap_accepted_audiences``. "jitsi" is the value
    #: in lib-jitsi-meet's doc/tokens.md example (Prosody's default accepts any).
    audience: str = "jitsi"
    #: Jitsi tenant (``https://domain/<tenant>/<room>``); also becomes ``sub``.
    tenant: str | None = None
    #: ``sub`` when the server expects something else than tenant or domain, e.g. the
    #: internal XMPP domain ``meet.jitsi`` of docker-jitsi-meet.
    jwt_subject: str | None = None
    #: Element Web whose ``jitsi.html`` wrapper the widget URL points at (other
    #: clients open it; Element Web itself always renders its own wrapper).
    element_url: str = "https://app.element.io/"
    #: The Jitsi lobby is on for every conference (Prosody's lobby_autostart
    #: from jitsi-contrib): only holders of our tokens, which carry
    #: ``context.user.lobby_bypass`` (token_lobby_bypass), go straight in;
    #: anyone else knocks and a moderator admits them.
    lobby: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.domain, str) or not _HOST_RE.fullmatch(self.domain):
            raise JitsiConfigError(
                "domain",
                f"{self.domain!r} is not a host name; write it in lower case, "
                "without https:// and without a path, e.g. 'meet.example.de'",
            )
        if (self.app_id is None) != (self.app_secret is None):
            raise JitsiConfigError(
                "app_secret" if self.app_secret is None else "app_id",
                "app_id and app_secret go together: set both for token "
                "authentication, or neither for an open Jitsi server",
            )
        if self.app_id is not None and not self.app_id.strip():
            raise JitsiConfigError("app_id", "must not be empty")
        if self.app_secret is not None:
            _check_secret(self.app_secret)
        if not 30 <= self.token_ttl_seconds <= 86_400:
            raise JitsiConfigError(
                "token_ttl_seconds",
                f"{self.token_ttl_seconds} is out of range; use 30 to 86400 seconds",
            )
        if not self.audience:
            raise JitsiConfigError("audience", "must not be empty")
        if self.tenant is not None and not _TENANT_RE.fullmatch(self.tenant):
            raise JitsiConfigError(
                "tenant",
                f"{self.tenant!r} is not a tenant name; use lower-case letters, "
                "digits, '-' and '_'",
            )
        if self.jwt_subject is not None and not self.jwt_subject:
            raise JitsiConfigError("jwt_subject", "must not be empty when set")
        parts = urlsplit(self.element_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise JitsiConfigError(
                "element_url",
                f"{self.element_url!r} is not an http(s) URL of Element Web",
            )

    @property
    def tokens_enabled(self) -> bool:
        """True when the Jitsi server wants a JWT from every participant."""
        return self.app_id is not None and self.app_secret is not None

    @property
    def subject(self) -> str:
        """The ``sub`` claim: the explicit setting, else tenant, else domain."""
        if self.jwt_subject is not None:
            return self.jwt_subject
        if self.tenant is not None:
            return self.tenant.lower()
        return self.domain.split(":", 1)[0].lower()


def _check_secret(secret: str) -> None:
    if secret.strip().lower() in PLACEHOLDER_SECRETS:
        raise JitsiConfigError(
            "app_secret",
            "is an example value; generate one with 'openssl rand -hex 32' and "
            "set the same value as app_secret in Prosody",
        )
    if len(secret.encode()) < MIN_SECRET_LENGTH:
        raise JitsiConfigError(
            "app_secret",
            f"is shorter than {MIN_SECRET_LENGTH} bytes; generate one with "
            "'openssl rand -hex 32'",
        )


def load_secret(path: str | Path) -> str:
    """Read a secret from a file (one line; surrounding whitespace is dropped).

    Raises :class:`JitsiConfigError` naming the path when it cannot be read or is
    empty.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JitsiConfigError(
            "app_secret_path", f"secret file {str(p)!r} does not exist"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JitsiConfigError(
            "app_secret_path", f"cannot read secret file {str(p)!r}: {exc}"
        ) from None
    secret = text.strip()
    if not secret:
        raise JitsiConfigError("app_secret_path", f"secret file {str(p)!r} is empty")
    return secret


def new_conference_id() -> str:
    """A fresh, unguessable conference (room) name: 160 random bits, 32 characters.

    Only ``a-z`` and ``2-7`` (base32), so it is the same in a URL, a Jitsi room
    name and the lower-cased MUC JID Prosody compares with the token's ``room``.
    """
    raw = secrets.token_bytes(CONFERENCE_ID_BYTES)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def check_conference_id(conference_id: str) -> str:
    """Return ``conference_id`` if it names exactly one room, else raise ValueError.

    Refuses ``"*"`` (all rooms), upper case, separators and short names.
    """
    if not isinstance(conference_id, str) or not _CONFERENCE_ID_RE.fullmatch(
        conference_id
    ):
        raise ValueError(
            f"{conference_id!r} is not a conference id made by new_conference_id()"
        )
    return conference_id


def clean_display_name(display_name: str) -> str:
    """The name as shown in Jitsi: no control characters, trimmed, at most 100 chars."""
    text = unicodedata.normalize("NFC", str(display_name))
    # Line breaks and tabs become spaces; other control and format characters
    # (e.g. bidi overrides that reorder what staff see) are dropped.
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    return " ".join(text.split())[:MAX_DISPLAY_NAME_LENGTH]


def token_claims(
    settings: JitsiSettings,
    conference_id: str,
    display_name: str,
    user_id: str,
    moderator: bool,
    now: datetime,
    ttl_seconds: int | None = None,
    lobby_bypass: bool = True,
) -> dict[str, Any]:
    """The JWT payload for one participant of one conference (not yet signed);
    ``ttl_seconds`` instead of the settings' lifetime (a guest's link);
    ``lobby_bypass`` False: this one knocks at the lobby like anyone (a guest
    link may be passed on)."""
    if settings.app_id is None:
        raise ValueError("token claims need jitsi.app_id; this Jitsi is open")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    issued_at = int(now.timestamp())
    user: dict[str, Any] = {
        # Strings only: lib-jitsi-meet doc/tokens.md.
        "id": str(user_id),
        "name": clean_display_name(display_name),
        # Read by mod_token_affiliation.lua (jitsi-meet).
        "moderator": "true" if moderator else "false",
        "affiliation": "owner" if moderator else "member",
    }
    if settings.lobby and lobby_bypass:
        # Read by jitsi-contrib's mod_token_lobby_bypass.lua (a boolean).
        user["lobby_bypass"] = True
    return {
        "iss": settings.app_id,
        "aud": settings.audience,
        "sub": settings.subject,
        "room": check_conference_id(conference_id),
        "iat": issued_at,
        "nbf": issued_at - CLOCK_SKEW_SECONDS,
        "exp": issued_at + (ttl_seconds or settings.token_ttl_seconds),
        # Read by nvonahsen/jitsi-token-moderation-plugin.
        "moderator": bool(moderator),
        "context": {"user": user},
    }


def participant_token(
    settings: JitsiSettings,
    conference_id: str,
    display_name: str,
    user_id: str,
    moderator: bool,
    now: datetime,
    ttl_seconds: int | None = None,
    lobby_bypass: bool = True,
) -> str | None:
    """A signed HS256 JWT admitting one person to ``conference_id`` only.

    Returns ``None`` when the settings carry no app id/secret (open Jitsi), so
    callers can pass the result straight to :func:`conference_url`.
    """
    if settings.app_id is None or settings.app_secret is None:
        return None
    claims = token_claims(
        settings,
        conference_id,
        display_name,
        user_id,
        moderator,
        now,
        ttl_seconds,
        lobby_bypass,
    )
    # PyJWT writes {"alg": "HS256", "typ": "JWT"}; luajwtjitsi requires typ == "JWT".
    return jwt.encode(claims, settings.app_secret, algorithm=ALGORITHM)


def room_path(settings: JitsiSettings, conference_id: str) -> str:
    """Room name for the iframe API: ``tenant/conference`` or ``conference``."""
    check_conference_id(conference_id)
    if settings.tenant is None:
        return conference_id
    return f"{settings.tenant}/{conference_id}"


def conference_url(
    settings: JitsiSettings, conference_id: str, token: str | None = None
) -> str:
    """The Jitsi Meet URL to open in a new tab, with ``?jwt=`` when there is a token.

    lib-jitsi-meet doc/tokens.md ("Jitsi-meet options") passes the token as the
    ``jwt`` URL parameter.
    """
    url = f"https://{settings.domain}/{room_path(settings, conference_id)}"
    if token is not None:
        url += "?jwt=" + quote(token, safe="")
    return url


def iframe_api_url(settings: JitsiSettings) -> str:
    """Where the citizen widget loads ``JitsiMeetExternalAPI`` from."""
    return f"https://{settings.domain}/external_api.js"
