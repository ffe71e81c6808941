"""Splitting a mail's text into what the sender wrote now and the earlier mail it quotes."""
import re

from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

# mail-parser-reply finds reply headers ("On ... wrote:", "Am ... schrieb:", Outlook's
# "From: / Sent:" block, "-----Original Message-----") with regular expressions, some of which
# backtrack badly on long lines (a 10,000-character line starting with "On " takes seconds).
# So the library reads only a probe of the text: at most PROBE_CHARS, each line at most PROBE_LINE characters
# (its start and its end are kept, which is where a header's words are). The probe has the same
# lines as the text, so the line where the library splits is the line where we split the text.
# A header beyond the probe is not found, and then the whole text counts as new: nothing is lost.
PROBE_CHARS = 4_000
PROBE_LINE = 160
_HEAD, _TAIL = 120, 40

# Every language the library knows, so a reply from a German or Japanese mail client splits too.
LANGUAGES = list(MAIL_LANGUAGES)

# A line of 32 or more underscores or hyphens: the library deletes such lines while it normalises
# (which would shift our line numbers), and it only uses them for signatures, which we keep.
_SEPARATOR = re.compile(r"^ ?[_-]{32,}$")
_QUOTED_LINE = re.compile(r"^\s*>")
# A rule that closes a reply above the quoted mail ("-----", "_____"), moved with the quote.
_RULE_LINE = re.compile(r"^\s*[-_=*]{5,}\s*$")
# An attribution line names when or who: a digit or an address.
_NAMES_WHEN = re.compile(r"[0-9@]")
_ATTRIBUTION_CHARS = 300
# Lines a reply header may take before its quoted lines begin.
_HEADER_LINES = 4


def _probe_line(line: str) -> str:
    line = line.strip()
    if _SEPARATOR.match(line):
        return line[:31]
    if len(line) > PROBE_LINE:
        return line[:_HEAD] + line[-_TAIL:]
    return line


def _probe(lines: list[str]) -> list[str]:
    probe, size = [], 0
    for line in lines:
        short = _probe_line(line)
        size += len(short) + 1
        if size > PROBE_CHARS:
            break
        probe.append(short)
    return probe


def _header_line(probe: list[str]) -> int | None:
    """Index of the probe line where the first quoted earlier mail begins, or None."""
    message = EmailMessage(text="\n".join(probe), languages=list(LANGUAGES)).read()
    first = message.replies[0]
    leading_blank = next((i for i, line in enumerate(probe) if line), len(probe))
    if first.headers:
        # The text starts with a header: the library dropped the empty part before it.
        return leading_blank
    if len(message.replies) < 2:
        return None
    # The library's first reply is the probe up to the header, stripped: count its lines.
    return leading_blank + first.content.count("\n") + 1


def _trailing_quote_start(lines: list[str]) -> int:
    """Where a closing block of "> " lines, rules and blank lines starts; len(lines) if none.

    The library only knows some languages' reply headers; a quote at the end of the mail is
    an earlier mail in any language, and so is its attribution line just above it (a line
    ending in ":" that names a date or an address, like "02.04.2012 14:20 ... написал:"),
    which a mail client may have wrapped onto two lines.
    """
    start = len(lines)
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if _QUOTED_LINE.match(line) or _RULE_LINE.match(line):
            start = index
        elif line.strip():
            break
    if start == len(lines) or not any(_QUOTED_LINE.match(line) for line in lines[start:]):
        return start
    above = start
    while above > 0 and not lines[above - 1].strip():
        above -= 1
    if above == 0 or not lines[above - 1].rstrip().endswith(":"):
        return start
    last = lines[above - 1].strip()
    before = lines[above - 2].strip() if above >= 2 else ""
    if before and (before.endswith(("<", ",")) or (_NAMES_WHEN.search(before)
                                                   and not _NAMES_WHEN.search(last))):
        if len(before) + len(last) <= _ATTRIBUTION_CHARS:
            return above - 2
    if _NAMES_WHEN.search(last) and len(last) <= _ATTRIBUTION_CHARS:
        return above - 1
    return start


def _answer_below(lines: list[str], header: int) -> tuple[int, bool] | None:
    """When the header at `header` is followed by a "> " quote and then by more unquoted text:
    (where that text starts, whether quoted lines follow again). None otherwise, and when
    what follows the quote is a signature or a mailing list's footer."""
    first_quoted = next((i for i in range(header, min(header + _HEADER_LINES, len(lines)))
                         if _QUOTED_LINE.match(lines[i])), None)
    if first_quoted is None:
        return None
    end = first_quoted
    while end < len(lines) and (_QUOTED_LINE.match(lines[end]) or not lines[end].strip()):
        end += 1
    rest = [line for line in lines[end:] if line.strip()]
    if not rest or _RULE_LINE.match(rest[0]) or rest[0].strip() == "--":
        return None  # nothing, or a signature or a mailing list's footer below the quote
    return end, any(_QUOTED_LINE.match(line) for line in rest)


def _join(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n").rstrip()


def split_reply(text: str) -> tuple[str, str]:
    """(new part, quoted earlier part) of a mail's plain text.

    The new part is what the sender wrote above the first reply header or quoted block; the
    sender's signature stays in it (signature guesses such as "Thanks," cut real text). An
    answer written below the quote (bottom-posting) is the new part instead. When the answer
    is spread between quoted lines, or nothing new stands beside the quote (a forward), the
    whole text is the new part: answers between quoted lines need the quotes to be read.
    Lines keep their original form; only blank lines at the start and end of each part are
    dropped.
    """
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    header = _header_line(_probe(lines))
    if header is not None:
        below = _answer_below(lines, header)
        if below:
            end, quoted_again = below
            above = _join(lines[:header])
            if above.strip() or quoted_again:
                return _join(lines), ""
            return _join(lines[end:]), _join(lines[header:end])
    split = len(lines) if header is None else header
    split = min(split, _trailing_quote_start(lines[:split]))
    new, quoted = _join(lines[:split]), _join(lines[split:])
    if new.strip():
        return new, quoted
    return _join(lines), ""
