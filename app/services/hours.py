"""Business hours: reading "mon-fri 09:00-17:00, sat 10:00-14:00" and telling whether a
moment falls inside them, in a brand's time zone."""
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ENTRY = re.compile(r"^([a-z]+)(?:\s*-\s*([a-z]+))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
EXAMPLE = "mon-fri 09:00-17:00, sat 10:00-14:00"


class HoursError(ValueError):
    """Business hours or a time zone that cannot be read, in words."""


def _day(name: str, entry: str) -> int:
    for names in (DAYS, FULL_DAYS):
        if name in names:
            return names.index(name)
    raise HoursError(f"“{name}” in “{entry}” is not a day; use mon, tue, wed, thu, fri, sat, sun.")


def _minutes(hours: str, minutes: str, entry: str) -> int:
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise HoursError(f"“{hours}:{minutes}” in “{entry}” is not a time of day.")
    return value


def parse(text: str) -> list[tuple[int, int, int]]:
    """(weekday, first minute, end minute) for each day the hours name; [] means always open."""
    spans = []
    for raw in re.split(r"[,;\n]", (text or "").lower()):
        entry = raw.strip()
        if not entry:
            continue
        match = _ENTRY.match(entry)
        if not match:
            raise HoursError(f"“{entry}” is not like “{EXAMPLE}”.")
        first_name, last_name, h1, m1, h2, m2 = match.groups()
        first = _day(first_name, entry)
        last = _day(last_name, entry) if last_name else first
        start, end = _minutes(h1, m1, entry), _minutes(h2, m2, entry)
        if end <= start:
            raise HoursError(f"In “{entry}” the end comes before the start; hours over midnight "
                             "are two entries, like “fri 20:00-24:00, sat 00:00-02:00”.")
        day = first
        while True:  # a range may wrap around the week: fri-mon
            spans.append((day, start, end))
            if day == last:
                break
            day = (day + 1) % 7
    return spans


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo((name or "").strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise HoursError(f"“{name}” is not a time zone; use a name like Europe/Berlin or "
                         "America/New_York (or UTC).") from None


def is_open(text: str, zone_name: str, now: datetime) -> bool:
    """Whether `now` (naive UTC) is within the hours, read in the time zone."""
    spans = parse(text)
    if not spans:
        return True
    local = now.replace(tzinfo=timezone.utc).astimezone(zone(zone_name))
    minute = local.hour * 60 + local.minute
    return any(day == local.weekday() and start <= minute < end for day, start, end in spans)
