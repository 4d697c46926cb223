"""The privacy notice of Art. 13 DSGVO at ``GET /privacy``, linked by the widget
at consent (unless ``citizen.privacy_url`` names the town's own page).

What the town must say (controller, contacts, purposes, legal basis,
recipients, the supervisory authority) comes from ``privacy:`` in
buergerchat.yaml, with defaults that fit a German town; what the product knows
itself (retention per department, which data is stored, the rights and how to
use them) is filled in from the settings, so the notice never says something
the software does not do. Every configured text is escaped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from string import Template

from aiohttp import web

from ..api.headers import content_security_policy
from ..config import Config
from ..yamlconf import Problems, Section
from .settings import CaseRetention, PrivacyNotice, read_privacy

#: The page, with $placeholders for what the settings say (all escaped).
TEMPLATE = Template((Path(__file__).parent / "notice.html").read_text(encoding="utf-8"))


def _notice(config: Config) -> PrivacyNotice:
    if config.privacy is not None:
        return config.privacy
    return read_privacy(Section("", None, "privacy", Problems()), config.town.name)


def _periods(retention: CaseRetention) -> str:
    return (
        f"Chats {retention.chats_days} Tage nach dem Ende; Nachrichten außerhalb "
        f"der Sprechzeiten {retention.offline_answered_days} Tage nach dem Ende, "
        f"unbeantwortet {retention.offline_unanswered_days} Tage nach Eingang; "
        f"Dateien {retention.files_days} Tage nach dem Ende"
    )


def render_notice(config: Config) -> str:
    notice = _notice(config)
    r = config.retention
    rows = [f"<li>Allgemein: {escape(_periods(r.cases))}.</li>"]
    for department in config.departments:
        own = config.case_retention(department.id)
        if own != r.cases:
            rows.append(f"<li>{escape(department.name)}: {escape(_periods(own))}.</li>")
    transcripts = (
        f"{r.transcripts_days} Tage nach dem Ende des Gesprächs"
        if r.transcripts_days is not None
        else "nach den Aufbewahrungsregeln der Verwaltung für Akten"
    )
    dpo = (
        f"<p>Datenschutzbeauftragte*r: {escape(notice.dpo_contact)}</p>"
        if notice.dpo_contact
        else ""
    )
    contact = (
        f"<p>{escape(notice.controller_contact)}</p>"
        if notice.controller_contact
        else ""
    )
    return TEMPLATE.substitute(
        town=escape(config.town.name),
        controller=escape(notice.controller),
        contact=contact,
        dpo=dpo,
        purposes=escape(notice.purposes),
        legal_basis=escape(notice.legal_basis),
        recipients=escape(notice.recipients) + _partners(config),
        periods="".join(rows),
        transcripts=escape(transcripts),
        prefix=escape(config.citizen.reference_prefix),
        authority=escape(notice.authority),
    )


def _partners(config: Config) -> str:
    """Federation: who may receive a case, only with the citizen's consent
    asked in the chat itself (bots/handover)."""
    partners = config.federation.partners
    if not partners:
        return ""
    names = ", ".join(escape(p.name) for p in partners)
    return (
        "</p><p>Ist für Ihr Anliegen eine andere Behörde zuständig, kann das Team "
        f"es an eine dieser Partnerbehörden weitergeben: {names}. Das geschieht nur, "
        "wenn Sie im Chat zustimmen; die Partnerbehörde erhält dann Ihren Namen und "
        "den bisherigen Chatverlauf und ist für alles Weitere selbst verantwortlich "
        "(ihre eigenen Hinweise nach Art. 13 DSGVO und Aufbewahrungsfristen). "
        "Rechtsgrundlage ist Ihre Einwilligung (Art. 6 Abs. 1 lit. a DSGVO); ohne "
        "sie bleibt Ihr Anliegen bei uns."
    )


def privacy_routes(config: Config) -> list[web.RouteDef]:
    async def page(request: web.Request) -> web.Response:
        # Rendered each time: the departments (and their periods) may be reloaded.
        body = render_notice(config)
        return web.Response(
            text=body,
            content_type="text/html",
            headers={"Content-Security-Policy": content_security_policy(body)},
        )

    return [web.get("/privacy", page)]
