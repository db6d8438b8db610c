"""Human-readable output as the Docker CLI prints it: sizes, ages, aligned tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float, precision: int = 3) -> str:
    """Decimal units with ``precision`` significant digits: ``1.2MB``, ``4.26MB``, ``0B``."""
    value = float(size)
    unit = 0
    while unit < len(_UNITS) - 1 and float(f"{value:.{precision}g}") >= 1000:
        value /= 1000
        unit += 1
    return f"{value:.{precision}g}{_UNITS[unit]}"


def human_duration(elapsed: dt.timedelta) -> str:
    """How long ago, in words: ``Less than a second``, ``2 minutes``, ``About an hour``."""
    seconds = int(elapsed.total_seconds())
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(elapsed.total_seconds() / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // (24 * 7)} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // (24 * 30)} months"
    return f"{int(elapsed.total_seconds() // 3600) // (24 * 365)} years"


def human_age(moment: dt.datetime, now: dt.datetime) -> str:
    """``moment`` relative to ``now``: ``2 minutes ago``."""
    return human_duration(now - moment) + " ago"


def short_id(image_id: str) -> str:
    """The 12-hex short form of a ``sha256:<hex>`` id."""
    return image_id.partition(":")[2][:12] if ":" in image_id else image_id[:12]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], gap: int = 3) -> str:
    """Left-aligned columns separated by at least ``gap`` spaces, header first."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(width + gap) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append(("".join(cells) + row[-1]).rstrip())
    return "\n".join(lines)
