"""One error hierarchy and one error catalogue for the whole product.

Every error a citizen, a staff member or an admin can cause is a subclass of
:class:`BuergerchatError`: a stable ``errcode``, its HTTP status in
:data:`CATALOGUE` and a message that says what was wrong and what to do; the API
middleware answers ``{"errcode": ..., "error": ...}``, anything else is a logged
500. :data:`CATALOGUE` is the one list of codes: status (``None``: an operator's
error, never answered over HTTP), German and English default texts, and whether
citizens can meet it; the OpenAPI error schema and the README's table are tested
against it (tests/unit/test_error_catalogue.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from aiohttp import ClientError
from mautrix.errors import MatrixError

#: What a call to Synapse fails with when it is away, slow or answers an error:
#: mautrix raises MatrixError for answers, aiohttp's errors (a dropped connection
#: is a ClientError, not an OSError) and timeouts pass through as they are.
HOMESERVER_ERRORS: tuple[type[BaseException], ...] = (
    MatrixError,
    ClientError,
    OSError,
    TimeoutError,
)

#: The status of an operator's error (catalogue status ``None``) should one ever
#: escape into a request handler: a fault on our side.
OPERATOR_ERROR_STATUS = 500


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One catalogue entry: what the code means and how it is answered."""

    #: The HTTP status, or None: never answered over HTTP (printed or logged).
    status: int | None
    #: Default texts, what was wrong and what to do; a raise site may be specific.
    de: str
    en: str
    #: Whether a citizen using the widget can meet it (else: a faulty client
    #: program, or the operator).
    citizen: bool

    @property
    def http_status(self) -> int:
        return OPERATOR_ERROR_STATUS if self.status is None else self.status

    @property
    def text(self) -> str:
        """The default message, German and English as elsewhere in the API."""
        return f"{self.de} / {self.en}"


def _spec(status: int | None, citizen: bool, de: str, en: str) -> ErrorSpec:
    return ErrorSpec(status=status, de=de, en=en, citizen=citizen)


CATALOGUE: Mapping[str, ErrorSpec] = MappingProxyType(
    {
        # --- answered over HTTP ---------------------------------------------
        "BC_BAD_REQUEST": _spec(
            400,
            False,
            "Die Anfrage ist fehlerhaft. Prüfen Sie Adresse, Kopfzeilen und Inhalt.",
            "The request is malformed. Check its address, headers and body.",
        ),
        "BC_NOT_JSON": _spec(
            400,
            False,
            "Der Inhalt ist kein gültiges JSON. Senden Sie ein JSON-Objekt mit "
            "Content-Type: application/json.",
            "The body is not valid JSON. Send a JSON object with Content-Type: "
            "application/json.",
        ),
        "BC_INVALID_FIELD": _spec(
            400,
            True,
            "Ein Feld fehlt oder ist falsch; „field“ nennt es. Korrigieren Sie es "
            "und senden Sie erneut.",
            "A field is missing or wrong; 'field' names it. Correct it and send again.",
        ),
        "BC_CONSENT_REQUIRED": _spec(
            400,
            True,
            "Bitte stimmen Sie zuerst dem Datenschutzhinweis zu; ohne Zustimmung "
            "dürfen wir Ihre Nachrichten nicht speichern.",
            "Please agree to the privacy notice first ('consent': true); without "
            "it we may not store your messages.",
        ),
        "BC_MISSING_TOKEN": _spec(
            401,
            True,
            "Hier fehlt der Token: Senden Sie die Kopfzeile „Authorization: "
            "Bearer <token>“.",
            "This needs a token: send the header 'Authorization: Bearer <token>'.",
        ),
        "BC_UNKNOWN_TOKEN": _spec(
            401,
            True,
            "Dieser Link ist nicht (mehr) gültig. Beginnen Sie einen neuen Chat.",
            "This link is not valid (any more). Start a new chat.",
        ),
        "BC_LINK_EXPIRED": _spec(
            401,
            True,
            "Dieser persönliche Link ist abgelaufen. Schreiben Sie uns eine neue "
            "Nachricht; Sie erhalten dann einen neuen Link.",
            "This personal link has expired. Send us a new message; you will then "
            "get a new link.",
        ),
        "BC_FORBIDDEN": _spec(
            403,
            True,
            "Das ist nicht erlaubt. Verwenden Sie den Token dieses Falls.",
            "This is not allowed. Use the token of this case.",
        ),
        "BC_NOT_FOUND": _spec(
            404,
            True,
            "Unter dieser Adresse gibt es nichts. Prüfen Sie die URL.",
            "There is nothing at this address. Check the URL.",
        ),
        "BC_METHOD_NOT_ALLOWED": _spec(
            405,
            False,
            "Diese Adresse nimmt diese HTTP-Methode nicht an. Prüfen Sie die Methode.",
            "This address does not take that HTTP method. Check the method.",
        ),
        "BC_CASE_CLOSED": _spec(
            409,
            True,
            "Dieser Fall ist abgeschlossen. Beginnen Sie für ein neues Anliegen "
            "einen neuen Chat.",
            "This case is closed. Start a new chat for a new concern.",
        ),
        "BC_OFFLINE": _spec(
            409,
            True,
            "Gerade ist niemand im Live-Chat erreichbar; nichts wurde angelegt. "
            "Hinterlassen Sie eine Nachricht (POST /api/v1/offline-messages).",
            "Nobody can chat live right now; nothing was created. Leave a message "
            "(POST /api/v1/offline-messages).",
        ),
        "BC_NOT_QUEUED": _spec(
            409,
            True,
            "Nur ein wartender Chat kann zur Nachricht werden. Schreiben Sie im "
            "Chat weiter.",
            "Only a queued chat can become a message; keep writing in the chat.",
        ),
        "BC_CLIENT_ID_REUSED": _spec(
            409,
            True,
            "Diese client_id gehört schon zu einer anderen Nachricht; bitte eine "
            "neue erzeugen.",
            "This client_id already belongs to another message; generate a new one.",
        ),
        "BC_SLOT_TAKEN": _spec(
            409,
            True,
            "Dieser Termin ist inzwischen vergeben; nichts wurde gebucht.",
            "This time has just been taken; nothing was booked.",
        ),
        "BC_NOT_BOOKED": _spec(
            409,
            True,
            "Dieser Termin ist nicht (mehr) gebucht.",
            "This appointment is not booked (any more).",
        ),
        "BC_TOO_EARLY": _spec(
            425,
            True,
            "Der Warteraum ist noch nicht offen (opens_at).",
            "The waiting room is not open yet (opens_at).",
        ),
        "BC_NO_WALK_IN": _spec(
            409,
            True,
            "Gerade ist niemand bald frei; bitte einen Termin buchen.",
            "Nobody is free soon; please book an appointment.",
        ),
        "BC_NO_HANDOVER": _spec(
            409,
            True,
            "Es wartet keine Weitergabe auf Ihre Zustimmung.",
            "No hand-over is waiting for your answer.",
        ),
        "BC_TOO_LARGE": _spec(
            413,
            True,
            "Die Anfrage ist zu groß. Senden Sie eine kürzere Nachricht oder eine "
            "kleinere Datei.",
            "The request body is too large. Send a shorter message or a smaller file.",
        ),
        "BC_UNSUPPORTED_MEDIA_TYPE": _spec(
            415,
            True,
            "Diese Art von Datei ist nicht erlaubt (nach ihrem Inhalt geprüft). "
            "Senden Sie eine Datei einer erlaubten Art.",
            "This kind of file is not allowed (judged by its content). Send a file "
            "of an allowed kind.",
        ),
        "BC_INFECTED": _spec(
            422,
            True,
            "Die Datei enthält Schadsoftware und wurde nicht übermittelt. Prüfen "
            "Sie Ihr Gerät und senden Sie eine saubere Datei.",
            "The file contains malware and was not delivered. Check your device "
            "and send a clean file.",
        ),
        "BC_INTERNAL": _spec(
            500,
            True,
            "Bei uns ist etwas schiefgegangen. Bitte versuchen Sie es gleich noch "
            "einmal.",
            "Something went wrong on our side. Please try again in a moment.",
        ),
        "BC_TRANSCRIPT_FONT_MISSING": _spec(
            500,
            True,
            "Dem Server fehlt eine Schrift für den Gesprächsverlauf. Der Betrieb "
            "muss fonts-dejavu-core installieren.",
            "The server lacks a font for the transcript. Its operator must install "
            "fonts-dejavu-core.",
        ),
        "BC_BLOCKED": _spec(
            403,
            True,
            "Von diesem Anschluss sind vorübergehend keine neuen Chats und "
            "Nachrichten möglich. Bitte wenden Sie sich telefonisch oder per E-Mail "
            "an die Verwaltung.",
            "No new chats or messages are possible from this connection for a "
            "while. Please contact the administration by phone or e-mail.",
        ),
        "BC_PROOF_REQUIRED": _spec(
            428,
            True,
            "Gerade ist viel los. Ihr Browser löst kurz eine Rechenaufgabe; danach "
            "geht es weiter (die Anfrage mit der Lösung in X-Buergerchat-Proof "
            "erneut senden).",
            "It is busy right now. Your browser solves a short computation, then it "
            "goes on (send the request again with the solution in "
            "X-Buergerchat-Proof).",
        ),
        "BC_RATE_LIMITED": _spec(
            429,
            True,
            "Zu viele Anfragen in kurzer Zeit. Bitte versuchen Sie es in "
            "retry_after_seconds Sekunden noch einmal; Ihr Text bleibt erhalten.",
            "Too many requests in a short time. Please try again in "
            "retry_after_seconds seconds; your text is kept.",
        ),
        "BC_UNAVAILABLE": _spec(
            503,
            True,
            "Das ist gerade nicht verfügbar. Bitte versuchen Sie es gleich noch "
            "einmal.",
            "This is not available right now. Please try again in a moment.",
        ),
        # --- the operator's: printed or logged, never answered over HTTP ------
        "BC_HOMESERVER": _spec(
            None,
            False,
            "Synapse ließ sich nicht starten oder einrichten; die Meldung nennt den "
            "Grund. Beheben Sie ihn und starten Sie neu.",
            "Synapse could not be started or set up; the message says why. Fix "
            "that and start again.",
        ),
        "BC_CHILD_FAILED": _spec(
            None,
            False,
            "Ein Hilfsprozess (Synapse, clamd) startete nicht. Siehe sein Protokoll "
            "im Datenordner.",
            "A child process (Synapse, clamd) did not start. See its log in the "
            "data folder.",
        ),
        "BC_NGINX_MISSING": _spec(
            None,
            False,
            "Für Synapse-Worker fehlt nginx (Debian: apt install nginx-light), "
            "oder homeserver.workers.enabled auf false setzen.",
            "Synapse workers need nginx (Debian: apt install nginx-light), or set "
            "homeserver.workers.enabled to false.",
        ),
        "BC_SCHEMA_TOO_NEW": _spec(
            None,
            False,
            "Die Datenbank stammt von einer neueren Bürgerchat-Version. Installieren "
            "Sie diese wieder oder spielen Sie die passende Sicherung ein.",
            "The database comes from a newer Bürgerchat. Install that version "
            "again, or restore the matching backup.",
        ),
        "BC_LIMITS_INCONSISTENT": _spec(
            None,
            False,
            "Die Upload-Grenze passt nicht zu den Grenzen von clamd oder Synapse; "
            "der Start wurde verweigert. Gleichen Sie die Grenzen an.",
            "The upload limit disagrees with clamd's or Synapse's limits; start "
            "refused. Make the limits agree.",
        ),
        "BC_SCANNER_ADMIN_TOKEN": _spec(
            None,
            False,
            "Der Scanner hat kein brauchbares Admin-Token von Synapse. Legen Sie das "
            "Token eines Server-Admins in homeserver.admin_token_file ab.",
            "The scanner has no usable Synapse admin token. Put a server admin's "
            "token into homeserver.admin_token_file.",
        ),
        "BC_SYNAPSE_ADMIN": _spec(
            None,
            False,
            "Synapse hat einen Admin-Aufruf (Raum, Datei oder Nutzer löschen) "
            "abgelehnt oder nicht beantwortet; er wird später wiederholt. Prüfen "
            "Sie Synapse und das Admin-Token.",
            "Synapse refused or did not answer an admin call (deleting a room, a "
            "file or a user); it is tried again later. Check Synapse and the "
            "admin token.",
        ),
        "BC_PRIVACY_REQUEST": _spec(
            None,
            False,
            "Die Anfrage nennt keinen Fall: Aktenzeichen oder E-Mail-Adresse prüfen.",
            "The request names no case: check the reference or e-mail address.",
        ),
        "BC_QUARANTINE_FAILED": _spec(
            None,
            False,
            "Synapse hat die Quarantäne einer Datei abgelehnt oder nicht "
            "beantwortet. Prüfen Sie Synapse und das Admin-Token.",
            "Synapse refused or did not answer the quarantine of a file. Check "
            "Synapse and the admin token.",
        ),
        "BC_SCAN_FAILED": _spec(
            None,
            False,
            "clamd gab kein Urteil; die Datei bleibt zurückgehalten und wird später "
            "erneut geprüft.",
            "clamd gave no verdict; the file stays held and is scanned again later.",
        ),
        "BC_SCAN_UNAVAILABLE": _spec(
            None,
            False,
            "clamd ist nicht erreichbar; Dateien bleiben zurückgehalten. Prüfen "
            "Sie, ob clamd läuft und die Adresse stimmt.",
            "clamd cannot be reached; files stay held. Check that clamd runs and "
            "its address is right.",
        ),
        "BC_SCAN_TIMEOUT": _spec(
            None,
            False,
            "clamd antwortete nicht rechtzeitig; die Datei bleibt zurückgehalten "
            "und wird später erneut geprüft.",
            "clamd did not answer in time; the file stays held and is scanned "
            "again later.",
        ),
        "BC_SCAN_TOO_LARGE": _spec(
            None,
            False,
            "clamd lehnt die Datei als zu lang ab. Setzen Sie StreamMaxLength und "
            "MaxFileSize in clamd.conf mindestens auf die Upload-Grenze.",
            "clamd refused the file as too long. Set StreamMaxLength and "
            "MaxFileSize in clamd.conf to at least the upload limit.",
        ),
    }
)


class BuergerchatError(Exception):
    """Subclasses name their ``errcode``; ``status`` comes from the catalogue."""

    errcode: ClassVar[str] = "BC_INTERNAL"
    status: ClassVar[int] = CATALOGUE["BC_INTERNAL"].http_status

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "status" in vars(cls):
            raise TypeError(
                f"{cls.__qualname__} sets status: it comes from the catalogue "
                "(bridge/errors.py CATALOGUE), name only the errcode"
            )
        spec = CATALOGUE.get(cls.errcode)
        if spec is None:
            raise TypeError(
                f"{cls.__qualname__}.errcode {cls.errcode!r} is not in the catalogue "
                "(bridge/errors.py CATALOGUE)"
            )
        cls.status = spec.http_status

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        if message is None:
            message = CATALOGUE[self.errcode].text
        super().__init__(message)
        self.message = message
        self.extra = extra
        #: HTTP headers of the answer (Retry-After of a 429).
        self.headers: dict[str, str] = {}

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.message, **self.extra}


class BadRequest(BuergerchatError):
    errcode = "BC_BAD_REQUEST"


class NotJSON(BadRequest):
    errcode = "BC_NOT_JSON"


class InvalidField(BadRequest):
    """A field of the request body is missing or wrong; ``field`` names it."""

    errcode = "BC_INVALID_FIELD"

    def __init__(self, field: str, message: str | None = None) -> None:
        super().__init__(message, field=field)


class ConsentRequired(BadRequest):
    errcode = "BC_CONSENT_REQUIRED"


class MissingToken(BuergerchatError):
    errcode = "BC_MISSING_TOKEN"


class UnknownToken(BuergerchatError):
    errcode = "BC_UNKNOWN_TOKEN"


class LinkExpired(BuergerchatError):
    """A personal link from an e-mail that ran out; a new message is the way on."""

    errcode = "BC_LINK_EXPIRED"


class Forbidden(BuergerchatError):
    errcode = "BC_FORBIDDEN"


class NotFound(BuergerchatError):
    errcode = "BC_NOT_FOUND"


class CaseClosed(BuergerchatError):
    errcode = "BC_CASE_CLOSED"


class TooLarge(BuergerchatError):
    errcode = "BC_TOO_LARGE"


class UnsupportedMediaType(BuergerchatError):
    errcode = "BC_UNSUPPORTED_MEDIA_TYPE"


class Blocked(BuergerchatError):
    """An admin blocked this address (``!block``); ``until`` says how long."""

    errcode = "BC_BLOCKED"


class ProofRequired(BuergerchatError):
    """Unusual load: the same request again with a solved ``challenge``
    (bridge.proof)."""

    errcode = "BC_PROOF_REQUIRED"

    def __init__(self, challenge: dict[str, Any], why: str) -> None:
        super().__init__(challenge=challenge, why=why)


class RateLimited(BuergerchatError):
    """Over one of the abuse limits (bridge.limits): ``retry_after_seconds``
    says when the same request will be taken; also sent as ``Retry-After``."""

    errcode = "BC_RATE_LIMITED"

    def __init__(self, retry_after: int, limit: str) -> None:
        seconds = max(1, int(retry_after))
        super().__init__(
            f"Zu viele Anfragen in kurzer Zeit. Bitte versuchen Sie es in {seconds} "
            f"Sekunden noch einmal; Ihr Text bleibt erhalten. / Too many requests in "
            f"a short time. Please try again in {seconds} seconds; your text is "
            "kept.",
            retry_after_seconds=seconds,
            limit=limit,
        )
        self.headers = {"Retry-After": str(seconds)}


class Unavailable(BuergerchatError):
    errcode = "BC_UNAVAILABLE"
