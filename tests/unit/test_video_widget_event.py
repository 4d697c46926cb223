"""The Jitsi widget state event, compared with what Element Web writes."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from bots.video.jitsi import JitsiSettings, new_conference_id
from bots.video.widget_event import (
    REMOVE_CONTENT,
    WIDGET_EVENT_TYPE,
    element_jitsi_widget_url,
    jitsi_widget_content,
    new_widget_id,
    removal_content,
    widget_state_key,
)

CONFERENCE = "k5xq3m7vbn2wd4hz6pjt5rcy7ufsg3ea"
WIDGET_ID = "aB3dE5gH7jK9mN1pQ3sT5vW7"
BOT = "@buergerchat:stadt.example.de"


@pytest.fixture
def settings() -> JitsiSettings:
    return JitsiSettings(
        domain="meet.stadt.example.de", element_url="https://element.stadt.example.de/"
    )


def test_content_matches_element_web_field_by_field(settings: JitsiSettings) -> None:
    """Content equals Element's addJitsiWidget/setRoomWidget output plus id/creator.

    Expected value written out from element-hq/element-web src/utils/WidgetUtils.ts
    (addJitsiWidget, setRoomWidget, getLocalJitsiWrapperUrl); ``id`` and
    ``creatorUserId`` as element-android JitsiService.kt writes them.
    """
    content = jitsi_widget_content(
        settings,
        CONFERENCE,
        audio_only=False,
        creator_user_id=BOT,
        room_name="BC-2026-000123 Bürgerbüro",
        widget_id=WIDGET_ID,
    )
    assert content == {
        "type": "jitsi",
        "url": (
            "https://element.stadt.example.de/jitsi.html"
            "?confId=k5xq3m7vbn2wd4hz6pjt5rcy7ufsg3ea"
            "#conferenceDomain=$domain"
            "&conferenceId=$conferenceId"
            "&isAudioOnly=$isAudioOnly"
            "&startWithAudioMuted=$startWithAudioMuted"
            "&startWithVideoMuted=$startWithVideoMuted"
            "&isVideoChannel=$isVideoChannel"
            "&displayName=$matrix_display_name"
            "&avatarUrl=$matrix_avatar_url"
            "&userId=$matrix_user_id"
            "&roomId=$matrix_room_id"
            "&theme=$theme"
            "&roomName=$roomName"
            "&supportsScreensharing=true"
            "&language=$org.matrix.msc2873.client_language"
        ),
        "name": "Jitsi",
        "data": {
            "conferenceId": "k5xq3m7vbn2wd4hz6pjt5rcy7ufsg3ea",
            "roomName": "BC-2026-000123 Bürgerbüro",
            "isAudioOnly": False,
            "isVideoChannel": False,
            "domain": "meet.stadt.example.de",
        },
        "id": "aB3dE5gH7jK9mN1pQ3sT5vW7",
        "creatorUserId": "@buergerchat:stadt.example.de",
    }
    assert WIDGET_EVENT_TYPE == "im.vector.modular.widgets"


def test_audio_only_call_sets_is_audio_only(settings: JitsiSettings) -> None:
    """A voice-only escalation sets data.isAudioOnly to true (a JSON boolean)."""
    content = jitsi_widget_content(
        settings,
        CONFERENCE,
        audio_only=True,
        creator_user_id=BOT,
        room_name="BC-2026-000124",
        widget_id=WIDGET_ID,
    )
    assert content["data"]["isAudioOnly"] is True


def test_template_variables_resolve_from_the_widget_data(
    settings: JitsiSettings,
) -> None:
    """Filling $domain etc. from data, as clients do, yields the real conference."""
    content = jitsi_widget_content(
        settings,
        CONFERENCE,
        audio_only=False,
        creator_user_id=BOT,
        room_name="BC-2026-000125",
        widget_id=WIDGET_ID,
    )
    url = content["url"]
    for key, value in content["data"].items():
        url = url.replace(
            f"${key}", str(value).lower() if isinstance(value, bool) else value
        )
    fragment = parse_qs(urlsplit(url).fragment)
    assert fragment["conferenceDomain"] == ["meet.stadt.example.de"]
    assert fragment["conferenceId"] == [CONFERENCE]
    assert fragment["isAudioOnly"] == ["false"]
    assert fragment["roomName"] == ["BC-2026-000125"]
    assert parse_qs(urlsplit(url).query) == {"confId": [CONFERENCE]}


@pytest.mark.parametrize(
    ("element_url", "wrapper"),
    [
        ("https://chat.example.de/", "https://chat.example.de/jitsi.html"),
        (
            "https://chat.example.de/element/",
            "https://chat.example.de/element/jitsi.html",
        ),
        ("https://chat.example.de/#/room/!abc:x", "https://chat.example.de/jitsi.html"),
    ],
)
def test_wrapper_url_resolves_like_element(element_url: str, wrapper: str) -> None:
    """jitsi.html resolves against the Element URL as new URL('jitsi.html', base)."""
    settings = JitsiSettings(domain="meet.example.de", element_url=element_url)
    url = element_jitsi_widget_url(settings, CONFERENCE)
    assert url.startswith(f"{wrapper}?confId={CONFERENCE}#conferenceDomain=$domain&")


def test_state_key_is_the_widget_id() -> None:
    """Element sends the widget event with state_key = widget id."""
    assert widget_state_key(WIDGET_ID) == WIDGET_ID
    with pytest.raises(ValueError):
        widget_state_key("")


def test_widget_ids_look_like_elements_and_never_repeat() -> None:
    """Widget ids are 24 characters of A-Z a-z 0-9 and unique over many calls."""
    ids = [new_widget_id() for _ in range(5_000)]
    assert all(re.fullmatch(r"[A-Za-z0-9]{24}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_remove_content_is_empty_and_cannot_be_changed() -> None:
    """Ending a call sends {}; the shared constant cannot be mutated by accident."""
    assert dict(REMOVE_CONTENT) == {}
    with pytest.raises(TypeError):
        REMOVE_CONTENT["url"] = "x"  # type: ignore[index]
    first, second = removal_content(), removal_content()
    assert first == {} and first is not second


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("conference_id", "*"),
        ("creator_user_id", "buergerchat"),
        ("widget_id", "a b"),
    ],
)
def test_malformed_inputs_are_refused(
    settings: JitsiSettings, field: str, value: str
) -> None:
    """A wildcard conference, a non-Matrix creator or a bad widget id raise."""
    args = {
        "conference_id": new_conference_id(),
        "creator_user_id": BOT,
        "widget_id": WIDGET_ID,
    }
    args[field] = value
    with pytest.raises(ValueError):
        jitsi_widget_content(
            settings,
            args["conference_id"],
            audio_only=False,
            creator_user_id=args["creator_user_id"],
            room_name="BC-2026-000126",
            widget_id=args["widget_id"],
        )
