"""The accessibility statement with its feedback form, and the Leichte Sprache
page. Everything the town configures is escaped where it meets HTML."""

from __future__ import annotations

import logging
import secrets
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from aiohttp import web

from ..api.citizen import MAX_JSON_BYTES, read_json
from ..api.fields import MAX_EMAIL, MAX_NAME
from ..api.headers import content_security_policy
from ..config import Config
from ..errors import BuergerchatError, TooLarge
from ..i18n import LANGUAGES, language_name
from ..limits import Limits
from ..mail.outbox import Outbox
from .feedback import MAX_MESSAGE, MAX_WHERE, FeedbackChannel, parse_feedback
from .settings import COMPLIANCE, feedback_address

log = logging.getLogger("buergerchat.accessibility")
HERE = Path(__file__).parent
CSS = (HERE / "page.css").read_text(encoding="utf-8")
STATEMENT = Template((HERE / "statement.html").read_text(encoding="utf-8"))
EASY = Template((HERE / "leichte-sprache.html").read_text(encoding="utf-8"))
FIELDS = ("description", "where", "name", "email")
#: The statement's own form posts to the page itself.
FORM_POLICY = {"form-action": ["'self'"]}

#: When the product's own part of the statement was last checked against the
#: widget (update with the gaps below).
PRODUCT_REVIEWED = "2026-12-03"

#: What the product knows is not accessible (its own parts, whatever the town).
PRODUCT_GAPS = (
    "Die Gesprächsverläufe als PDF (Download im Chat-Fenster) sind keine "
    "getaggten PDF-Dokumente nach PDF/UA; Screenreader lesen sie nur "
    "eingeschränkt vor. Der vollständige Verlauf steht barrierefrei im "
    "Chat-Fenster, solange der Chat offen ist.",
    "Die Videoberatung läuft über Jitsi Meet. Dessen Oberfläche ist nicht "
    "vollständig barrierefrei, Untertitel gibt es nicht. Jedes Anliegen lässt "
    "sich auch schriftlich im Chat klären.",
    "Bilder, die Mitarbeitende im Chat schicken, haben nur ihren Dateinamen als "
    "Textalternative.",
)


def _gaps(config: Config) -> str:
    a = config.accessibility
    items = [*PRODUCT_GAPS, *a.known_issues]
    if a.sign_language_url is None:
        items.append(
            f"Informationen zum Bürgerchat in Deutscher Gebärdensprache (DGS) "
            f"bietet {config.town.name} noch nicht an (§ 4 BITV 2.0)."
        )
    return "\n".join(f"<li>{escape(item)}</li>" for item in items)


def render_statement(
    config: Config,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    result: str = "",
) -> str:
    a = config.accessibility
    values = values or {}
    errors = errors or {}
    inbox = feedback_address(a, config.routing) or ""
    reviewed = (
        f"Diese Erklärung wurde am {_date(a.reviewed)} zuletzt überprüft."
        if a.reviewed
        else f"Diese Erklärung wurde am {_date(PRODUCT_REVIEWED)} mit der Software "
        "Bürgerchat erstellt."
    )
    sign = (
        f'<li><a href="{escape(a.sign_language_url, quote=True)}">'
        "Der Bürgerchat in Deutscher Gebärdensprache (Video)</a></li>"
        if a.sign_language_url
        else ""
    )
    link = (
        f'<p><a href="{escape(a.enforcement_url, quote=True)}">'
        "Zur Schlichtungsstelle</a></p>"
        if a.enforcement_url
        else ""
    )
    fields = _form_fields(values, errors)
    return _template(config).safe_substitute(
        title="Fehler:" if errors else "",
        css=CSS,
        result=result,
        town=escape(config.town.name),
        compliance=COMPLIANCE[a.compliance],
        gaps=_gaps(config),
        reviewed=reviewed,
        easy_url=escape(config.accessibility_links["easy_language_url"] or "", True),
        sign=sign,
        email=escape(inbox, quote=True),
        phone=f" oder telefonisch unter {escape(a.feedback_phone)}"
        if a.feedback_phone
        else "",
        action="/accessibility#feedback",
        max_message=MAX_MESSAGE,
        max_where=MAX_WHERE,
        max_name=MAX_NAME,
        max_email=MAX_EMAIL,
        checked="checked" if values.get("consent") else "",
        client_id=escape(values.get("client_id") or secrets.token_hex(12), True),
        privacy_url=escape(config.privacy_url, quote=True),
        enforcement=escape(a.enforcement),
        enforcement_link=link,
        **fields,
    )


def _template(config: Config) -> Template:
    """The town's template (checked at load; read each time, so edits show at
    once), else the built-in one."""
    path = config.accessibility.template
    if path is not None:
        try:
            return Template(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            log.warning("%s unreadable: the built-in statement is served", path)
    return STATEMENT


def _form_fields(values: dict[str, str], errors: dict[str, str]) -> dict[str, str]:
    """The form's values (escaped) and, for a wrong field, its error tied to it."""
    fields: dict[str, str] = {}
    for name in (*FIELDS, "consent"):
        problem = errors.get(name)
        fields[f"error_{name}"] = (
            f'<p class="error" id="{name}-error">{escape(problem)}</p>'
            if problem
            else ""
        )
        fields[f"invalid_{name}"] = (
            f'aria-invalid="true" aria-describedby="{name}-error"' if problem else ""
        )
    for name in FIELDS:
        fields[f"value_{name}"] = escape(values.get(name, ""), quote=True)
    return fields


def _date(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{day}.{month}.{year}"


def render_easy_language(config: Config) -> str:
    names = [language_name(code, "de") for code in LANGUAGES]
    return EASY.substitute(
        css=CSS,
        town=escape(config.town.name),
        languages=escape(", ".join(names[:-1]) + " und " + names[-1]),
        days=config.retention.cases.chats_days,
        privacy_url=escape(config.privacy_url, quote=True),
        statement_url=escape(
            (config.accessibility_links["accessibility_url"] or "") + "#feedback", True
        ),
    )


def _html(body: str, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        headers={
            "Content-Security-Policy": content_security_policy(body, [FORM_POLICY]),
            **headers,
        },
    )


def accessibility_routes(
    config: Config, limits: Limits, outbox: Outbox
) -> list[web.RouteDef]:
    channel = FeedbackChannel(config, limits, outbox)

    async def statement(request: web.Request) -> web.Response:
        return _html(render_statement(config))

    async def form_post(request: web.Request) -> web.Response:
        """The form without JavaScript: the page again, with the outcome."""
        if (request.content_length or 0) > MAX_JSON_BYTES:
            raise TooLarge(f"The form is larger than {MAX_JSON_BYTES // 1024} kB.")
        posted = await request.post()
        values = {k: str(v) for k, v in posted.items() if isinstance(v, str)}
        data: dict[str, Any] = {k: values.get(k) for k in (*FIELDS, "client_id")}
        data["consent"] = values.get("consent") == "yes"
        try:
            reference = await channel.submit(request, parse_feedback(data))
        except BuergerchatError as e:
            field = e.extra.get("field")
            if field in (*FIELDS, "consent"):
                errors, why = {str(field): e.message}, "Bitte prüfen Sie die Angaben."
            else:  # over a limit, blocked: the German half, as the page
                errors, why = {}, e.message.split(" / ")[0]
            page = render_statement(
                config,
                values=values,
                errors=errors,
                result='<p class="error" role="alert">Ihre Rückmeldung wurde nicht '
                f"gesendet. {escape(why)}</p>",
            )
            return _html(page, e.status, **e.headers)
        done = (
            '<p class="ok" role="status">Vielen Dank! Ihre Rückmeldung ist '
            f"angekommen (Nummer {escape(reference)}).</p>"
        )
        return _html(render_statement(config, result=done))

    async def feedback_api(request: web.Request) -> web.Response:
        form = parse_feedback(await read_json(request))
        reference = await channel.submit(request, form)
        return web.json_response({"reference": reference}, status=202)

    async def easy_language(request: web.Request) -> web.Response:
        return _html(render_easy_language(config))

    return [
        web.get("/accessibility", statement),
        web.post("/accessibility", form_post),
        web.post("/api/v1/accessibility/feedback", feedback_api),
        web.get("/leichte-sprache", easy_language),
    ]
