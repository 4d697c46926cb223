"""Jitsi conference ids, participant JWTs and URLs (bots.video.jitsi)."""

from __future__ import annotations

import base64
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from bots.video.jitsi import (
    CLOCK_SKEW_SECONDS,
    JitsiConfigError,
    JitsiSettings,
    check_conference_id,
    conference_url,
    iframe_api_url,
    load_secret,
    new_conference_id,
    participant_token,
    room_path,
    token_claims,
)

SECRET = "4f1c0e6b9a2d47c3b8e5f0a1d2c3b4a5f6e7d8c9b0a1f2e3"
APP_ID = "buergerchat"
STAFF = "@sachbearbeitung.meier:stadt.example.de"
CITIZEN = "@bc_3f9a:stadt.example.de"


@pytest.fixture
def settings() -> JitsiSettings:
    return JitsiSettings(
        domain="meet.stadt.example.de", app_id=APP_ID, app_secret=SECRET
    )


def decode(token: str, audience: str = "jitsi") -> dict:
    return jwt.decode(
        token, SECRET, algorithms=["HS256"], audience=audience, issuer=APP_ID
    )


def mint(
    settings: JitsiSettings,
    conference_id: str,
    *,
    name: str = "Erika Mustermann",
    user_id: str = CITIZEN,
    moderator: bool = False,
    now: datetime | None = None,
) -> str:
    token = participant_token(
        settings,
        conference_id,
        name,
        user_id,
        moderator,
        now or datetime.now(UTC),
    )
    assert token is not None
    return token


# --- conference ids ---------------------------------------------------------------


def test_conference_ids_are_unique_over_many_calls() -> None:
    """Twenty thousand fresh conference ids never repeat."""
    ids = [new_conference_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)


def test_conference_id_is_lowercase_base32_of_160_random_bits() -> None:
    """An id is 32 base32 characters that decode to 20 bytes (160 bits > 128)."""
    conference_id = new_conference_id()
    assert re.fullmatch(r"[a-z2-7]{32}", conference_id)
    raw = base64.b32decode(conference_id.upper() + "=" * (-len(conference_id) % 8))
    assert len(raw) * 8 == 160


def test_conference_ids_use_the_whole_alphabet_in_every_position() -> None:
    """No fixed prefix or biased position: each position takes many values."""
    ids = [new_conference_id() for _ in range(4_000)]
    for position in (0, 15, 30):
        seen = Counter(i[position] for i in ids)
        assert len(seen) >= 30
    # Position 31 holds only the last bit of the 20 bytes (160 = 31*5 + 5): all 32.
    assert len(Counter(i[31] for i in ids)) == 32


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "",
        "Abcdefghijklmnopqrstuvwxyz234567",
        "tenant/abcdefghijklmnopqrstuvwxyz",
        "kurz",
    ],
)
def test_wildcard_and_malformed_conference_ids_are_refused(
    settings: JitsiSettings, bad: str
) -> None:
    """A token can never be issued for '*', a path, upper case or a short name."""
    with pytest.raises(ValueError):
        check_conference_id(bad)
    with pytest.raises(ValueError):
        participant_token(settings, bad, "X", CITIZEN, False, datetime.now(UTC))


# --- tokens -----------------------------------------------------------------------


def test_token_verifies_with_the_secret_and_audience(settings: JitsiSettings) -> None:
    """The token is HS256 with typ JWT and verifies with app secret, iss and aud."""
    token = mint(settings, new_conference_id())
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert decode(token)["iss"] == APP_ID


def test_token_fails_with_another_secret_or_audience(settings: JitsiSettings) -> None:
    """A wrong secret or an unexpected audience makes verification fail."""
    token = mint(settings, new_conference_id())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET + "x", algorithms=["HS256"], audience="jitsi")
    with pytest.raises(jwt.InvalidAudienceError):
        decode(token, audience="other-app")


def test_claims_follow_jitsi_token_auth(settings: JitsiSettings) -> None:
    """iss/aud/sub/room/iat/nbf/exp carry exactly the values Jitsi checks."""
    now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    conference_id = new_conference_id()
    claims = jwt.decode(
        mint(settings, conference_id, now=now),
        SECRET,
        algorithms=["HS256"],
        audience="jitsi",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    stamp = int(now.timestamp())
    assert claims["iss"] == APP_ID
    assert claims["aud"] == "jitsi"
    assert claims["sub"] == "meet.stadt.example.de"
    assert claims["room"] == conference_id
    assert claims["iat"] == stamp
    assert claims["nbf"] == stamp - CLOCK_SKEW_SECONDS
    assert claims["exp"] == stamp + 300


def test_token_expires_after_its_ttl(settings: JitsiSettings) -> None:
    """A token minted one TTL (plus a second) ago is rejected as expired."""
    real_now = datetime.now(UTC)
    stale = mint(settings, new_conference_id(), now=real_now - timedelta(seconds=301))
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(stale)
    fresh = mint(settings, new_conference_id(), now=real_now - timedelta(seconds=290))
    assert decode(fresh)["exp"] > real_now.timestamp()


def test_token_names_only_its_own_conference(settings: JitsiSettings) -> None:
    """A token for conference A names A as room and mentions B nowhere."""
    a, b = new_conference_id(), new_conference_id()
    token = mint(settings, a)
    claims = decode(token)
    assert claims["room"] == a
    assert claims["room"] != "*"
    assert b not in str(claims)
    assert decode(mint(settings, b))["room"] == b


def test_staff_token_is_moderator_and_citizen_token_is_not(
    settings: JitsiSettings,
) -> None:
    """Staff get owner/moderator in every form Jitsi reads; citizens get member."""
    conference_id = new_conference_id()
    staff = decode(mint(settings, conference_id, user_id=STAFF, moderator=True))
    citizen = decode(mint(settings, conference_id, user_id=CITIZEN, moderator=False))
    assert staff["moderator"] is True
    assert staff["context"]["user"]["moderator"] == "true"
    assert staff["context"]["user"]["affiliation"] == "owner"
    assert citizen["moderator"] is False
    assert citizen["context"]["user"]["moderator"] == "false"
    assert citizen["context"]["user"]["affiliation"] == "member"
    assert staff["context"]["user"]["id"] == STAFF
    assert citizen["context"]["user"]["id"] == CITIZEN


def test_context_user_holds_strings_only(settings: JitsiSettings) -> None:
    """Every context.user value is a string (Prosody raises on numbers and null)."""
    user = decode(mint(settings, new_conference_id(), moderator=True))["context"][
        "user"
    ]
    # lobby_bypass is the one boolean: jitsi-contrib's token_lobby_bypass reads
    # `true` (its README's sample token); the lobby keeps out everyone else.
    assert user.pop("lobby_bypass") is True
    assert set(user) == {"id", "name", "moderator", "affiliation"}
    assert all(isinstance(value, str) for value in user.values())


def test_without_the_lobby_no_bypass_claim(settings: JitsiSettings) -> None:
    open_lobby = replace(settings, lobby=False)
    user = decode(mint(open_lobby, new_conference_id(), moderator=False))["context"][
        "user"
    ]
    assert "lobby_bypass" not in user


def test_display_name_with_umlauts_round_trips(settings: JitsiSettings) -> None:
    """'Jürgen Öztürk-Weiß' comes back unchanged as a string."""
    name = "Jürgen Öztürk-Weiß"
    claims = decode(mint(settings, new_conference_id(), name=name))
    assert claims["context"]["user"]["name"] == name
    assert isinstance(claims["context"]["user"]["name"], str)


def test_display_name_loses_control_characters_and_excess_length(
    settings: JitsiSettings,
) -> None:
    """Line breaks, bidi overrides and names over 100 characters are cleaned."""
    claims = decode(mint(settings, new_conference_id(), name="Eve\n\u202eAdmin\t "))
    assert claims["context"]["user"]["name"] == "Eve Admin"
    long = decode(mint(settings, new_conference_id(), name="ä" * 500))
    assert long["context"]["user"]["name"] == "ä" * 100


def test_naive_now_is_refused(settings: JitsiSettings) -> None:
    """A timestamp without time zone would shift exp by hours; it is rejected."""
    with pytest.raises(ValueError, match="timezone"):
        participant_token(
            settings, new_conference_id(), "X", CITIZEN, False, datetime(2026, 1, 1)
        )


def test_tenant_and_subject_override_set_sub(settings: JitsiSettings) -> None:
    """sub is the tenant when one is set, or the explicit jwt_subject."""
    conference_id = new_conference_id()
    now = datetime.now(UTC)
    tenant = JitsiSettings(
        domain="meet.example.de", app_id=APP_ID, app_secret=SECRET, tenant="stadt"
    )
    docker = JitsiSettings(
        domain="meet.example.de",
        app_id=APP_ID,
        app_secret=SECRET,
        jwt_subject="meet.jitsi",
    )
    assert token_claims(tenant, conference_id, "X", CITIZEN, False, now)["sub"] == (
        "stadt"
    )
    assert token_claims(docker, conference_id, "X", CITIZEN, False, now)["sub"] == (
        "meet.jitsi"
    )


# --- open Jitsi and settings --------------------------------------------------------


def test_open_jitsi_gets_no_token_and_a_plain_url() -> None:
    """Without app id and secret there is no token and the URL has no jwt."""
    open_jitsi = JitsiSettings(domain="meet.example.de")
    conference_id = new_conference_id()
    assert not open_jitsi.tokens_enabled
    token = participant_token(
        open_jitsi, conference_id, "X", CITIZEN, False, datetime.now(UTC)
    )
    assert token is None
    assert conference_url(open_jitsi, conference_id, token) == (
        f"https://meet.example.de/{conference_id}"
    )


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"app_id": APP_ID}, "app_secret"),
        ({"app_secret": SECRET}, "app_id"),
        ({"app_id": APP_ID, "app_secret": "example_app_secret"}, "app_secret"),
        ({"app_id": APP_ID, "app_secret": "too-short"}, "app_secret"),
        ({"token_ttl_seconds": 0}, "token_ttl_seconds"),
        ({"tenant": "Stadt/Amt"}, "tenant"),
        ({"element_url": "element.example.de"}, "element_url"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(kwargs: dict, key: str) -> None:
    """Half token config, placeholder or short secrets and bad values name their key."""
    with pytest.raises(JitsiConfigError) as info:
        JitsiSettings(domain="meet.example.de", **kwargs)
    assert info.value.key == key
    assert f"jitsi.{key}" in str(info.value)


@pytest.mark.parametrize(
    "domain", ["https://meet.example.de", "meet.example.de/room", "", "MEET..de"]
)
def test_domain_must_be_a_bare_host(domain: str) -> None:
    """A scheme, a path or garbage in the domain is refused."""
    with pytest.raises(JitsiConfigError) as info:
        JitsiSettings(domain=domain)
    assert info.value.key == "domain"


def test_secret_does_not_appear_in_repr(settings: JitsiSettings) -> None:
    """Logging the settings never prints the app secret."""
    assert SECRET not in repr(settings)
    assert APP_ID in repr(settings)


def test_load_secret_reads_the_file_without_newline(tmp_path: Path) -> None:
    """A secret file written by 'openssl rand -hex 32 > file' loads without '\\n'."""
    path = tmp_path / "jitsi_secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    assert load_secret(path) == SECRET


def test_load_secret_names_a_missing_path(tmp_path: Path) -> None:
    """A missing secret file gives an error that names the path."""
    path = tmp_path / "nicht-da"
    with pytest.raises(JitsiConfigError, match=re.escape(str(path))) as info:
        load_secret(path)
    assert info.value.key == "app_secret_path"


def test_load_secret_names_an_empty_file(tmp_path: Path) -> None:
    """An empty secret file is an error naming the path, not an empty key."""
    path = tmp_path / "leer"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(JitsiConfigError, match=re.escape(str(path))):
        load_secret(path)


# --- URLs -------------------------------------------------------------------------


def test_conference_url_carries_the_token_as_jwt_parameter(
    settings: JitsiSettings,
) -> None:
    """The new-tab link is https://domain/<conference>?jwt=<token>."""
    conference_id = new_conference_id()
    token = mint(settings, conference_id)
    parts = urlsplit(conference_url(settings, conference_id, token))
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "meet.stadt.example.de",
        f"/{conference_id}",
    )
    assert parse_qs(parts.query) == {"jwt": [token]}


def test_tenant_goes_into_url_and_room_path() -> None:
    """With a tenant the conference lives at /<tenant>/<conference>."""
    tenant = JitsiSettings(domain="meet.example.de", tenant="stadt")
    conference_id = new_conference_id()
    assert room_path(tenant, conference_id) == f"stadt/{conference_id}"
    assert conference_url(tenant, conference_id) == (
        f"https://meet.example.de/stadt/{conference_id}"
    )


def test_iframe_api_url_points_at_external_api_js(settings: JitsiSettings) -> None:
    """The widget loads the iframe API from the Jitsi domain itself."""
    assert iframe_api_url(settings) == "https://meet.stadt.example.de/external_api.js"


def test_a_guest_token_knocks_at_the_lobby(settings: JitsiSettings) -> None:
    """!invite-guest's token: no lobby bypass (a link can be passed on)."""
    token = participant_token(
        settings,
        new_conference_id(),
        "Gast",
        "guest:c_1",
        moderator=False,
        now=datetime.now(UTC),
        lobby_bypass=False,
    )
    assert token is not None
    assert "lobby_bypass" not in decode(token)["context"]["user"]
