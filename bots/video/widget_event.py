"""The Jitsi widget state event staff see in Element, built the way Element builds it.

Sources (read, not guessed):

* ``element-hq/element-web`` ``src/utils/WidgetUtils.ts`` (commit 30429df9):
  ``addJitsiWidget`` sends ``im.vector.modular.widgets`` with ``state_key`` = the
  widget id (``randomString(24)``, "must be globally unique") via
  ``setRoomWidget``, whose content is ``{type: WidgetType.JITSI.legacy, url, name,
  data, avatar_url}``; ``data`` is ``{conferenceId, roomName, isAudioOnly,
  isVideoChannel, domain, auth}``. ``avatar_url`` and ``auth`` are ``undefined``
  without an avatar or a ``/.well-known/element/jitsi`` auth and are therefore
  absent in the JSON. ``url`` comes from ``getLocalJitsiWrapperUrl``: Element's
  ``jitsi.html`` with ``?confId=<id>`` and the template fragment below. Removing a
  widget sends empty content (``setRoomWidget`` without url).
* ``element-hq/element-web`` ``src/widgets/WidgetType.ts``:
  ``JITSI = new WidgetType("m.jitsi", "jitsi")``; rooms get the legacy ``"jitsi"``.
* ``element-hq/element-web`` ``src/LegacyCallHandler.tsx``: a call button adds the
  widget with name ``"Jitsi"`` and ``isVideoChannel`` false.
* ``matrix-org/matrix-js-sdk`` ``src/randomstring.ts``: ``randomString`` draws the
  widget id from ``A-Z a-z 0-9``.
* ``matrix-org/matrix-widget-api`` ``src/interfaces/IWidget.ts`` declares ``id`` and
  ``creatorUserId`` as required widget properties, and
  ``element-hq/element-android`` ``.../call/conference/JitsiService.kt`` writes both
  into the room widget content. Element Web does not write them (it derives them
  from ``state_key`` and ``sender`` in ``WidgetUtils.makeAppConfig``), so adding
  them changes nothing for Element Web and helps the other readers.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import quote, urljoin

from bots.video.jitsi import JitsiSettings, check_conference_id

#: The state event type Element reads and writes for room widgets.
WIDGET_EVENT_TYPE: Final = "im.vector.modular.widgets"

#: ``WidgetType.JITSI.legacy``; Element also accepts ``"m.jitsi"`` when reading.
JITSI_WIDGET_TYPE: Final = "jitsi"

#: Widget name Element gives a Jitsi call started from the call button.
DEFAULT_WIDGET_NAME: Final = "Jitsi"

#: Content that removes the widget (ends the call in the room's UI). Read-only;
#: send ``dict(REMOVE_CONTENT)`` or :func:`removal_content`.
REMOVE_CONTENT: Final[Mapping[str, Any]] = MappingProxyType({})

#: ``randomString(24)`` in Element: 24 of ``A-Z a-z 0-9`` (about 142 bits).
WIDGET_ID_LENGTH: Final = 24
_WIDGET_ID_ALPHABET: Final = string.ascii_letters + string.digits
_WIDGET_ID_RE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,255}")

#: Template variables of Element's ``getLocalJitsiWrapperUrl`` in order; the client
#: fills ``$domain`` etc. from ``data`` and ``$matrix_*`` from the viewing user.
#: ``supportsScreensharing`` is ``PlatformPeg.get().supportsJitsiScreensharing()``,
#: which is true on the web platform.
ELEMENT_JITSI_TEMPLATE: Final = "&".join(
    (
        "conferenceDomain=$domain",
        "conferenceId=$conferenceId",
        "isAudioOnly=$isAudioOnly",
        "startWithAudioMuted=$startWithAudioMuted",
        "startWithVideoMuted=$startWithVideoMuted",
        "isVideoChannel=$isVideoChannel",
        "displayName=$matrix_display_name",
        "avatarUrl=$matrix_avatar_url",
        "userId=$matrix_user_id",
        "roomId=$matrix_room_id",
        "theme=$theme",
        "roomName=$roomName",
        "supportsScreensharing=true",
        "language=$org.matrix.msc2873.client_language",
    )
)


def new_widget_id() -> str:
    """A fresh widget id like Element's ``randomString(24)``, from a CSPRNG."""
    return "".join(secrets.choice(_WIDGET_ID_ALPHABET) for _ in range(WIDGET_ID_LENGTH))


def widget_id_for(event_id: str) -> str:
    """The widget id of the call a command event starts: the same each time that
    event is worked off again (an appservice transaction retried after a crash or a
    locked database), so a retry finds its own call instead of a stranger's."""
    digest = hashlib.sha256(f"buergerchat-widget:{event_id}".encode()).digest()
    size = len(_WIDGET_ID_ALPHABET)
    return "".join(_WIDGET_ID_ALPHABET[b % size] for b in digest[:WIDGET_ID_LENGTH])


def widget_state_key(widget_id: str) -> str:
    """The state key of the widget event: the widget id itself, as Element sends it."""
    if not isinstance(widget_id, str) or not _WIDGET_ID_RE.fullmatch(widget_id):
        raise ValueError(f"{widget_id!r} is not a usable widget id")
    return widget_id


def element_jitsi_widget_url(settings: JitsiSettings, conference_id: str) -> str:
    """The widget ``url``: Element's ``jitsi.html`` with ``confId`` and the template.

    ``new URL("jitsi.html#…", base)`` resolves against the Element location, then
    ``search`` is replaced by ``confId``; ``$`` stays literal in the fragment.
    """
    check_conference_id(conference_id)
    wrapper = urljoin(settings.element_url, "jitsi.html")
    return f"{wrapper}?confId={quote(conference_id, safe='')}#{ELEMENT_JITSI_TEMPLATE}"


def jitsi_widget_content(
    settings: JitsiSettings,
    conference_id: str,
    *,
    audio_only: bool,
    creator_user_id: str,
    room_name: str,
    widget_id: str,
    name: str = DEFAULT_WIDGET_NAME,
) -> dict[str, Any]:
    """Content of the ``im.vector.modular.widgets`` state event for one conference.

    ``room_name`` becomes ``data.roomName``, which Element's wrapper shows as the
    Jitsi subject; send the event with ``state_key=widget_state_key(widget_id)``.
    """
    check_conference_id(conference_id)
    widget_state_key(widget_id)
    if not creator_user_id.startswith("@") or ":" not in creator_user_id:
        raise ValueError(f"{creator_user_id!r} is not a Matrix user id")
    return {
        "type": JITSI_WIDGET_TYPE,
        "url": element_jitsi_widget_url(settings, conference_id),
        "name": name,
        "data": {
            "conferenceId": conference_id,
            "roomName": room_name,
            "isAudioOnly": bool(audio_only),
            "isVideoChannel": False,
            "domain": settings.domain,
        },
        "id": widget_id,
        "creatorUserId": creator_user_id,
    }


def removal_content() -> dict[str, Any]:
    """A fresh empty content that removes the widget, as Element's setRoomWidget."""
    return dict(REMOVE_CONTENT)
