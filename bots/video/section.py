"""The ``video:`` section of buergerchat.yaml: the Jitsi deployment (or none) and
the helpline a citizen can call when camera or microphone fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .jitsi import JitsiConfigError, JitsiSettings, load_secret

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.yamlconf import Section


@dataclass(frozen=True)
class VideoSettings:
    jitsi: JitsiSettings | None
    helpline: str | None


def csp_sources(settings: VideoSettings, config: Config) -> dict[str, list[str]]:
    """What the demo page's CSP must allow for a call: the Jitsi server's
    external_api.js and its conference frame."""
    if settings.jitsi is None:
        return {}
    origin = f"https://{settings.jitsi.domain}"
    return {"script-src": [origin], "frame-src": [origin]}


def read_config(section: Section, config: Config) -> VideoSettings:
    domain = section.get("jitsi_domain", str, "meet.jit.si")
    secret_file = section.get("jitsi_app_secret_file", str, None)
    secret = None
    if secret_file:
        try:
            secret = load_secret(config.config_dir / secret_file)
        except (OSError, ValueError) as e:
            section.error(str(e), "jitsi_app_secret_file")
    values = dict(
        domain=domain,
        app_id=section.get("jitsi_app_id", str, None),
        app_secret=secret,
        token_ttl_seconds=section.get("jitsi_token_ttl_seconds", int, 300),
        audience=section.get("jitsi_audience", str, "jitsi"),
        tenant=section.get("jitsi_tenant", str, None),
        element_url=section.get("element_url", str, "https://app.element.io/"),
        lobby=section.get("jitsi_lobby", bool, True),
    )
    helpline = section.get("helpline", str, None)
    section.finish()
    try:
        jitsi = JitsiSettings(**values) if domain else None
    except JitsiConfigError as e:
        key = {"app_secret": "jitsi_app_secret_file", "element_url": "element_url"}.get(
            e.key, f"jitsi_{e.key}"
        )
        section.error(str(e).split(": ", 1)[-1], key)
        jitsi = None
    return VideoSettings(jitsi=jitsi, helpline=helpline)
