"""Every line a citizen reads in their chat timeline, in German and English.

One catalogue, so that a citizen who chose English reads every system line in
English (joined, claimed, transferred, closed, video, queue, …) and a new line
cannot be added in one language only (``tests/unit/test_messages.py`` checks
that both languages exist and use the same placeholders). Staff-facing text
(team notices, bot replies in Element) is German and lives with its bot.

:func:`say` picks the language of the case (``de`` for anything else) and fills
the placeholders.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("de", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    "opened": {
        "de": "Ihr Anliegen ist unter {reference} bei {department} eingegangen.",
        "en": "Your request has been received under {reference} by {department}.",
    },
    "opened_via_fallback": {
        "de": "{requested} ist gerade nicht besetzt – {department} hilft Ihnen weiter.",
        "en": "{requested} is not staffed right now – {department} will help you.",
    },
    "staff_joined": {
        "de": "{name} ({department}) ist dem Chat beigetreten.",
        "en": "{name} ({department}) has joined the chat.",
    },
    "claimed": {
        "de": "{name} ({department}) kümmert sich jetzt um Ihr Anliegen.",
        "en": "{name} ({department}) is now taking care of your request.",
    },
    "transferred": {
        "de": "Ihr Anliegen wurde an {department} weitergegeben.",
        "en": "Your request has been passed on to {department}.",
    },
    "closed": {
        "de": "Der Chat {reference} wurde beendet.",
        "en": "The chat {reference} has been closed.",
    },
    "closed_inactive": {
        "de": "Der Chat {reference} wurde nach {minutes} Minuten ohne Nachricht "
        "automatisch beendet.",
        "en": "The chat {reference} was closed automatically after {minutes} "
        "minutes without a message.",
    },
    "closed_by": {
        "de": "Der Chat {reference} wurde von {name} beendet.",
        "en": "The chat {reference} has been closed by {name}.",
    },
    "video_started": {
        "de": "{name} hat eine Videoberatung gestartet.",
        "en": "{name} has started a video consultation.",
    },
    "audio_started": {
        "de": "{name} hat ein Telefonat gestartet.",
        "en": "{name} has started a phone call.",
    },
    "video_ended": {
        "de": "Die Videoberatung wurde von {name} beendet.",
        "en": "The video consultation was ended by {name}.",
    },
    "audio_ended": {
        "de": "Das Telefonat wurde von {name} beendet.",
        "en": "The phone call was ended by {name}.",
    },
    "queue": {
        "de": "Alle Mitarbeitenden sind im Gespräch. Sie sind an Position "
        "{position} der Warteschlange; geschätzte Wartezeit etwa {minutes} "
        "Minuten. Sie können schon schreiben.",
        "en": "Everyone is busy. You are number {position} in the queue; "
        "estimated wait about {minutes} minutes. You can write already.",
    },
    "routed": {
        "de": "Sie sind an der Reihe: {department} ist gleich für Sie da.",
        "en": "It is your turn: {department} will be with you shortly.",
    },
    "queue_closed": {
        "de": "Die Sprechzeit ist zu Ende und niemand konnte Sie mehr übernehmen. "
        "Hinterlassen Sie uns eine Nachricht mit Ihren Kontaktdaten; wir "
        "antworten per E-Mail oder Telefon.",
        "en": "Live hours have ended before anyone could take your chat. Leave "
        "us a message with your contact details; we will answer by e-mail or "
        "phone.",
    },
    "offline_received": {
        "de": "Ihre Nachricht ist unter {reference} eingegangen. {department} "
        "antwortet während der Sprechzeiten {how}.",
        "en": "Your message has been received under {reference}. {department} "
        "will answer during office hours, {how}.",
    },
    "reply_by_email": {
        "de": "per E-Mail an {email}",
        "en": "by e-mail to {email}",
    },
    "reply_by_email_or_phone": {
        "de": "per E-Mail an {email} (oder telefonisch unter {phone})",
        "en": "by e-mail to {email} (or by phone on {phone})",
    },
    "reply_by_phone": {
        "de": "telefonisch unter {phone}",
        "en": "by phone on {phone}",
    },
}


def language_of(language: str | None) -> str:
    return language if language in LANGUAGES else "de"


def say(key: str, language: str | None, **values: Any) -> str:
    """The catalogue's line ``key`` in ``language`` (German unless English),
    with its placeholders filled."""
    return CATALOGUE[key][language_of(language)].format(**values)
