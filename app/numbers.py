"""Whole numbers read from what browsers and people send: query strings, form fields, headers,
ids in paths."""
from starlette.convertors import Convertor

MAX_DIGITS = 18  # fits a 64-bit database integer; a longer number is no id or port of ours


def whole_number(raw: str | None) -> int | None:
    """The number written in ASCII digits 0-9, or None for anything else. str.isdigit() alone
    also passes "²", which int() refuses, and a number too long for the database."""
    if raw and len(raw) <= MAX_DIGITS and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


class IdConvertor(Convertor):
    """Route paths' {name:id}: an id as whole_number() reads it. A longer number matches no
    route (404), where Starlette's int would hand the database one it cannot take."""

    regex = "[0-9]{1,%d}" % MAX_DIGITS

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)
