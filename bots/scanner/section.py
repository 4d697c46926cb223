"""The scanner's part of the configuration: its ``scanner:`` section, the Synapse
module it adds to homeserver.yaml, and what ``GET /status`` tells the widget.
The scanner bot's class offers these to the core (bridge.plugins.Bot)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .pipeline import ScannerSettings, read_settings

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.yamlconf import Section


def read_config(section: Section, config: Config) -> ScannerSettings:
    settings = read_settings(section, config.homeserver.max_upload_size_mb)
    if (
        not config.homeserver.embedded
        and not settings.admin_token_file
        and not config.homeserver.admin_token_file
    ):
        section.error(
            "required when homeserver.embedded is false (or homeserver."
            "admin_token_file): a file with a Synapse admin's access token, so "
            "infected staff uploads can be quarantined",
            "admin_token_file",
        )
    return settings


def synapse_modules(settings: ScannerSettings, config: Config) -> list[dict[str, Any]]:
    """synapse/modules/buergerchat_scan.py: Synapse asks the same clamd as the
    scanner bot and refuses infected or unscanned uploads."""
    if not settings.synapse_module:
        return []
    return [
        {
            "module": "buergerchat_scan.BuergerchatScan",
            "config": {
                "clamd": settings.clamd_address(config.data_dir),
                "scan_timeout_seconds": settings.scan_timeout,
                # The same limit as max_upload_size and clamd's StreamMaxLength.
                "max_upload_size": config.homeserver.max_upload_size_mb << 20,
            },
        }
    ]


def status_fields(settings: ScannerSettings, config: Config) -> dict[str, Any]:
    """The widget refuses a larger file, or one of another kind, before uploading."""
    return {
        "max_upload_bytes": settings.max_size,
        "allowed_file_kinds": sorted(settings.allowed),
    }
