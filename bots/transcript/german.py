"""German wording and number/date formats, independent of the process locale."""

from __future__ import annotations

from datetime import datetime, tzinfo

_WEEKDAYS = (
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
)
_MONTHS = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)

SENDER_ROLES = {"citizen": "Bürger/in", "staff": "Verwaltung", "system": "System"}

VERDICTS = {
    "clean": "Virenprüfung: unauffällig",
    "infected": "Virenprüfung: Schadsoftware gefunden – Datei gesperrt",
    "pending": "Virenprüfung: noch nicht abgeschlossen",
    "refused": "Virenprüfung: nicht möglich – Datei nicht zugestellt",
}


def datetime_de(value: datetime, tz: tzinfo) -> str:
    """'21.11.2026, 14:05 Uhr' in the town's zone."""
    local = value.astimezone(tz)
    return f"{local:%d.%m.%Y, %H:%M} Uhr"


def time_de(value: datetime, tz: tzinfo) -> str:
    """'14:05' in the town's zone."""
    return f"{value.astimezone(tz):%H:%M}"


def day_de(value: datetime, tz: tzinfo) -> str:
    """'Samstag, 21. November 2026' in the town's zone."""
    local = value.astimezone(tz)
    return (
        f"{_WEEKDAYS[local.weekday()]}, {local.day}. "
        f"{_MONTHS[local.month - 1]} {local.year}"
    )


def _grouped(number: int) -> str:
    return f"{number:,}".replace(",", ".")


def size_de(size: int) -> str:
    """'2,3 MB (2.345.678 Bytes)': decimal units, exact count for checking."""
    exact = "1 Byte" if size == 1 else f"{_grouped(size)} Bytes"
    if size < 1000:
        return exact
    value = float(size)
    units = iter(("kB", "MB", "GB", "TB", "PB"))
    unit = next(units)
    value /= 1000
    # 999.95 would print as "1000,0", so it moves up a unit as well.
    while value >= 999.95 and unit != "PB":
        value /= 1000
        unit = next(units)
    return f"{value:.1f} {unit}".replace(".", ",") + f" ({exact})"


def verdict_de(verdict: str) -> str:
    """The scan verdict as a clerk reads it; unknown values are shown as given."""
    return VERDICTS.get(verdict, f"Virenprüfung: {verdict or 'unbekannt'}")
