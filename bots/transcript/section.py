"""The ``transcripts:`` section of buergerchat.yaml: where closed cases' PDFs are
archived (relative paths are inside the data folder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.yamlconf import Section


@dataclass(frozen=True)
class TranscriptSettings:
    archive_dir: Path


def read_config(section: Section, config: Config) -> TranscriptSettings:
    archive = Path(section.get("archive_dir", str, "transcripts"))
    section.finish()
    return TranscriptSettings(
        archive_dir=archive if archive.is_absolute() else config.data_dir / archive
    )
