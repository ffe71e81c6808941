"""Reading one incoming mail: headers, text, sanitized HTML, attachments, forwards, invites, bounces.

`parse(raw)` never raises: what it cannot read it says in `problems` and it returns the rest.
MIME, headers, encoded words and RFC 2231 parameters are read by the standard `email` package
(policy.default); winmail.dat by tnefparse (+ compressed-rtf); invites by icalendar; quoted
replies are split by app.mail.quotes (mail-parser-reply); HTML is cleaned by app.mail.sanitize
(nh3). This module only decides what is text, what is an attachment and how to decode it.
"""
import base64
import binascii
import codecs
import email
import email.errors
import email.header
import email.policy
import email.utils
import functools
import hashlib
import logging
import mimetypes
import quopri
import re
import struct
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from urllib.parse import unquote

from app.mail.quotes import split_reply
from app.mail.sanitize import clean_html, html_to_text

log = logging.getLogger(__name__)

POLICY = email.policy.default

# Guards against mail built to exhaust us: deeply nested parts, endless parts, forwards of
# forwards, enormous address headers (the stdlib's address parser slows down on them).
MAX_DEPTH = 30
MAX_PARTS = 500
MAX_BOUNDARY_LINES = 3000  # the stdlib parser needs about a millisecond per part
MAX_FORWARD_DEPTH = 3
MAX_ADDRESS_HEADER = 32_000
MAX_FILENAME = 150


@dataclass
class Attachment:
    """One file of a mail. The data is as sent; serve it as a download with a safe type."""
    filename: str          # decoded (RFC 2047/2231), no path separators or control characters, never empty
    content_type: str      # as declared, lowercased ("application/octet-stream" when unreadable)
    data: bytes
    content_id: str = ""   # without <>, "" if none
    inline: bool = False   # an image the HTML shows through cid:
    sha256: str = ""       # hex of data
    source: str = "part"   # "part", "tnef" (unpacked from winmail.dat), "forwarded" (.eml of a
                           # message/rfc822 part), "report" (parts of a bounce or receipt)

    def __post_init__(self):
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedMail:
    """What the email channel needs of one mail. Strings are "" and lists empty when absent."""
    message_id: str = ""                       # "<...>" as in the header, "" when missing
    in_reply_to: list[str] = field(default_factory=list)   # message ids "<...>"
    references: list[str] = field(default_factory=list)
    subject: str = ""                          # decoded, one line
    from_name: str = ""
    from_address: str = ""                     # lowercased
    reply_to: str = ""                         # first Reply-To address, lowercased, or ""
    to: list[str] = field(default_factory=list)            # lowercased addresses
    cc: list[str] = field(default_factory=list)
    date: datetime | None = None               # naive UTC
    text: str = ""                             # all text/plain body parts, or text read from the HTML
    new_text: str = ""                         # text without the quoted earlier mail
    quoted_text: str = ""                      # the quoted earlier mail that new_text leaves out
    html: str = ""                             # sanitized HTML (cid: images left for the caller)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list["ParsedMail"] = field(default_factory=list)  # message/rfc822 parts, parsed
    calendar: str = ""                         # summary of a text/calendar invite
    auto_submitted: str = ""                   # raw header values, "" if absent
    precedence: str = ""
    list_id: str = ""
    return_path: str = ""
    x_autoreply: bool = False                  # X-Autoreply, X-Autorespond or X-Auto-Response-Suppress
    is_bounce: bool = False                    # a delivery status notification
    bounce_message_ids: list[str] = field(default_factory=list)  # Message-IDs of the bounced mail
    bounce_reason: str = ""                    # Diagnostic-Code / Status in words
    content_hash: str = ""                     # sha256 hex of the raw bytes
    problems: list[str] = field(default_factory=list)           # what could not be read, in words


# --- entry points ------------------------------------------------------------------------------

def parse(raw: bytes, split_quotes: bool = True) -> ParsedMail:
    """Read a whole raw mail (RFC 5322 bytes). Never raises. split_quotes=False leaves
    new_text and quoted_text empty: finding the quote costs more than all the rest, and the
    ticket page splits what it shows anyway."""
    raw = _as_bytes(raw)
    mail = ParsedMail(content_hash=hashlib.sha256(raw).hexdigest())
    try:
        _Reader(mail, depth=0, split_quotes=split_quotes).read_bytes(raw)
    except Exception as exc:  # the last guard: each step below already guards itself
        log.exception("mail could not be parsed")
        mail.problems.append(f"The mail could not be read completely ({_why(exc)}).")
    return mail


def parse_headers(raw_headers: bytes) -> dict:
    """The threading and triage headers of a mail from its header block alone (as fetched with
    IMAP's BODY.PEEK[HEADER]), before the whole mail is fetched. Never raises.

    Keys: message_id, in_reply_to, references, subject, from_name, from_address, reply_to,
    to, cc, date, auto_submitted, precedence, list_id, return_path, x_autoreply, problems."""
    raw = _as_bytes(raw_headers)
    mail = ParsedMail()
    try:
        msg = BytesHeaderParser(policy=POLICY).parsebytes(raw)
        reader = _Reader(mail, depth=0)
        reader.charset_hint = reader.charset_of(msg)
        reader.read_headers(msg)
    except Exception as exc:
        log.exception("mail headers could not be parsed")
        mail.problems.append(f"The headers could not be read ({_why(exc)}).")
    names = ("message_id", "in_reply_to", "references", "subject", "from_name", "from_address",
             "reply_to", "to", "cc", "date", "auto_submitted", "precedence", "list_id",
             "return_path", "x_autoreply", "problems")
    return {name: getattr(mail, name) for name in names}


def _as_bytes(raw) -> bytes:
    if raw is None:
        return b""
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return bytes(raw)


def _why(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


# --- charsets ----------------------------------------------------------------------------------

# Labels that mail clients use for a larger charset than they name (as browsers read them):
# text declared gb2312 is usually GBK, shift_jis is usually Windows-31J, latin-1 is usually
# windows-1252, and so on. The superset reads everything the smaller one would.
_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
    "cp936": "gb18030", "csgb2312": "gb18030", "hz-gb-2312": "hz",
    "big5": "big5hkscs", "x-big5": "big5hkscs", "cn-big5": "big5hkscs",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "ms_kanji": "cp932", "csshiftjis": "cp932", "windows-31j": "cp932",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "ksc5601": "cp949",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252",
    "iso-8859-9": "cp1254", "latin5": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
}
# Tried after the declared charset fails: ISO-2022-JP mail often uses the JIS X 0201 kana
# or the 2004 extensions that the plain codec refuses.
_RETRIES = {"iso2022_jp": ["iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3"]}
# Labels that do not name a charset.
_NO_CHARSET = {"", "unknown", "unknown-8bit", "x-unknown", "default", "charset", "x-user-defined",
               "8bit", "none", "binary"}


@functools.lru_cache(maxsize=256)
def _codec(label: str | None) -> str | None:
    """Python's codec name for a charset label, superset first; None when unknown."""
    label = (label or "").strip().strip("\"'").lower()
    if label in _NO_CHARSET:
        return None
    label = _SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # unknown, or not a name at all (a NUL in it)
        return None


@functools.lru_cache(maxsize=256)
def _single_byte(codec: str) -> bool:
    try:
        return len(bytes(range(256)).decode(codec, "replace")) == 256
    except Exception:
        return False


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, str]:
    """(text, note): text read from bytes with the declared charset when it fits, else UTF-8,
    else windows-1252 with replacement characters. Never raises. The note says in words what
    was done when the declaration did not fit, "" otherwise."""
    if not data:
        return "", ""
    codec = _codec(declared)
    label = (declared or "").strip().strip("\"'")
    ascii_only = data.isascii()
    if codec:
        if _single_byte(codec) and not ascii_only:
            # A single-byte label on text that is valid UTF-8 is a wrong label: UTF-8's
            # multi-byte sequences practically never occur in single-byte text by chance.
            try:
                return data.decode("utf-8"), ""
            except UnicodeDecodeError:
                pass
        for name in [codec, *_RETRIES.get(codec, [])]:
            try:
                return data.decode(name), ""
            except (UnicodeDecodeError, LookupError):
                continue
    try:
        text = data.decode("utf-8")
        return text, (f"Text declared as {label!r} was not; it was read as UTF-8." if label else "")
    except UnicodeDecodeError:
        pass
    mostly = data.decode("utf-8", "replace")
    broken = mostly.count("\ufffd")
    readable = sum(1 for char in mostly if ord(char) > 127) - broken
    if readable > broken:
        return mostly, (f"Text declared as {label or 'UTF-8'!r} had {broken} undecodable "
                        "byte(s), shown as \ufffd.")
    return data.decode("cp1252", "replace"), (
        f"Text declared as {label!r} was not; it was read as windows-1252." if label else
        "Text without a declared charset was read as windows-1252.")


def _fix_8bit(value: str, hint: str | None) -> str:
    """A header value with raw 8-bit bytes (kept by the parser as surrogates) decoded: UTF-8,
    else the charset of the mail's text, else windows-1252."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = _codec(hint)
    if codec:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    return data.decode("cp1252", "replace")


# --- small helpers -----------------------------------------------------------------------------

_OLE_FILE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Outlook .msg (a compound file), not MIME
_MSGID = re.compile(r"<([^<>]+)>")
_SPACES = re.compile(r"\s+")
_FORWARD_SUBJECT = re.compile(
    r"^\s*\[?\s*(fwd?|wg|tr|rv|enc|doorst|vs|vb|pd|fs|trs|rif)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_BOUNCE_SENDER = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|delivery status notification|delivery (status )?fail|"
    r"returned mail|mail delivery (failed|system)|failure notice|non.?deliver|"
    r"delivery has failed|could not be delivered|unzustellbar|non remis|no entregado",
    re.IGNORECASE)
_SMTP_ERROR = re.compile(r"\b[45]\d\d[ -]|\b[45]\.\d{1,3}\.\d{1,3}\b")
_CID = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w:.-]+)""", re.IGNORECASE)
_CONTENT_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
_DEFECTS_IN_WORDS = {
    email.errors.StartBoundaryNotFoundDefect:
        "A multipart boundary was not found; that part was read as one block.",
    email.errors.MultipartInvariantViolationDefect:
        "A part said it was multipart but had no parts.",
    email.errors.InvalidBase64CharactersDefect:
        "Base64 data had invalid characters; they were skipped.",
    email.errors.InvalidBase64PaddingDefect:
        "Base64 data was cut short; the end of a part may be missing.",
    email.errors.InvalidBase64LengthDefect:
        "Base64 data had an impossible length; the end of a part may be missing.",
}


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", _no_controls(text)).strip()


def _no_controls(text: str) -> str:
    return "".join(char for char in text if char in "\t\n" or unicodedata.category(char) != "Cc")


def _message_ids(value: str) -> list[str]:
    ids = [f"<{_SPACES.sub('', found)}>" for found in _MSGID.findall(value or "")]
    if not ids:  # some clients leave out the angle brackets
        ids = [f"<{token.strip('<>,;')}>" for token in (value or "").split() if "@" in token]
    seen: list[str] = []
    for one in ids:
        if one not in seen and len(one) > 2:
            seen.append(one)
    return seen


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text_of(data: str) -> str:
    """Body text as stored: newlines normalised, no control characters (PostgreSQL's text
    refuses NUL; the others only garble a page)."""
    data = data.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", data).strip("\n").rstrip()


def _safe_filename(name: str, number: int, content_type: str) -> str:
    name = unicodedata.normalize("NFC", name or "")
    # Only the last path component; no control or format characters (such as the right-to-left
    # override that disguises "exe.pdf"), no leading dots (hidden files, "..").
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(char for char in name if unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp"))
    name = _SPACES.sub(" ", name).strip().lstrip(".").strip()
    name = re.sub(r'[<>:"|?*]', "_", name)
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        name = (stem if ext else name)[:MAX_FILENAME - len(ext) - 1].rstrip() + (f".{ext}" if ext else "")
    if not name:
        ext = mimetypes.guess_extension(content_type or "") or ".bin"
        name = f"attachment-{number}{ext}"
    return name


def _declared_type(part: Message) -> str:
    value = str(part.get("Content-Type", "") or "")
    declared = value.split(";", 1)[0].strip().lower()
    if _CONTENT_TYPE.match(declared):
        return declared
    return part.get_content_type() if not declared else "application/octet-stream"


# --- TNEF (winmail.dat) ------------------------------------------------------------------------

@dataclass
class TnefContents:
    """What a winmail.dat holds: its files and its body in the forms it has."""
    files: list[tuple[str, bytes]] = field(default_factory=list)   # (name as stored, data)
    text: str = ""
    html: str = ""
    rtf: bytes = b""     # decompressed RTF body


_MAPI_ATTACH_DATA_OBJ = 0x3701
_IMESSAGE = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"


def unpack_tnef(data: bytes) -> TnefContents:
    """The files and body of a TNEF stream (winmail.dat), read by tnefparse. Raises ValueError
    when the data is not TNEF."""
    import tnefparse
    from tnefparse.mapi import decode_mapi

    tnef = tnefparse.TNEF(data, do_checksum=False)
    contents = TnefContents()
    embedded = _embedded_objects(tnef, decode_mapi)
    for index, attachment in enumerate(tnef.attachments):
        name = attachment.long_filename() or attachment.name or ""
        if isinstance(name, bytes):
            name = name.decode("cp1252", "replace")
        contents.files.append((name.strip("\x00"), embedded.get(index, attachment.data or b"")))
    body = tnef.body
    if isinstance(body, bytes):
        body = decode_bytes(body, tnef.codepage)[0]
    contents.text = _text_of(body or "")
    html = tnef.htmlbody
    if isinstance(html, bytes):
        html = decode_bytes(html, tnef.codepage)[0]
    contents.html = (html or "").replace("\x00", "")
    try:
        rtf = tnef.rtfbody
    except Exception as exc:  # compressed-rtf refuses damaged data
        log.info("TNEF RTF body not readable: %s", exc)
        rtf = b""
    if rtf and not rtf.startswith(b"{\\rtf"):
        rtf = b""  # still compressed: compressed-rtf is missing or failed
    contents.rtf = rtf or b""
    return contents


def _embedded_objects(tnef, decode_mapi) -> dict[int, bytes]:
    """Exact data of attachments stored as MAPI objects (PR_ATTACH_DATA_OBJ). tnefparse strips
    trailing NUL bytes from them, which truncates binary files; the property's own length field
    (just before the data) says where the data really ends."""
    found: dict[int, bytes] = {}
    index = -1
    for obj in tnef.objects:
        if obj.name == tnef.ATTATTACHRENDDATA:
            index += 1
        elif obj.name == tnef.ATTATTACHMENT and index >= 0 and obj.level == tnef.LVL_ATTACHMENT:
            for prop in decode_mapi(obj.data, tnef.codepage):
                if prop.name != _MAPI_ATTACH_DATA_OBJ or not prop.raw_data:
                    continue
                padded = prop.raw_data[0]
                for length in range(len(padded), max(len(padded) - 4, -1), -1):
                    marker = struct.pack("<I", length) + padded[:64]
                    if obj.data.find(marker) >= 0:
                        exact = padded[:length]
                        # An embedded message: its TNEF stream, without the IMessage GUID.
                        found[index] = exact.removeprefix(_IMESSAGE)
                        break
    return found


# --- calendar invites --------------------------------------------------------------------------

_METHOD_WORDS = {"REQUEST": "Invitation", "CANCEL": "Cancelled", "REPLY": "Answer to an invitation",
                 "COUNTER": "Counter-proposal", "DECLINECOUNTER": "Counter-proposal declined",
                 "PUBLISH": "Event", "ADD": "Added to an event", "REFRESH": "Asks for an update"}


def summarize_calendar(data: bytes) -> str:
    """One or two lines about the first event of an iCalendar invite: what, when, where, who.
    Raises ValueError when the data is not iCalendar."""
    import icalendar

    calendar = icalendar.Calendar.from_ical(data)
    method = str(calendar.get("METHOD", "") or "").upper()
    events = list(calendar.walk("VEVENT")) or list(calendar.walk("VTODO"))
    if not events:
        raise ValueError("no event in the calendar")
    event = events[0]
    what = _one_line(str(event.get("SUMMARY", "") or "")) or "(no title)"
    head = f"{_METHOD_WORDS.get(method, 'Event')}: {what}"
    if method == "REPLY":
        answers = [str(attendee.params.get("PARTSTAT", "")).lower()
                   for attendee in _as_list(event.get("ATTENDEE"))]
        answers = [answer for answer in answers if answer]
        if answers:
            head += f" ({', '.join(answers)})"
    when = _when(event.get("DTSTART"), event.get("DTEND"))
    details = [when] if when else []
    location = _one_line(str(event.get("LOCATION", "") or ""))
    if location:
        details.append(f"at {location}")
    organizer = event.get("ORGANIZER")
    if organizer is not None:
        address = str(organizer)
        address = address[7:] if address.lower().startswith("mailto:") else address
        name = _one_line(str(organizer.params.get("CN", "") or ""))
        details.append(f"organizer {name} <{address}>" if name else f"organizer {address}")
    if len(events) > 1:
        details.append(f"and {len(events) - 1} more event(s)")
    return head + ("\n" + ", ".join(details) if details else "")


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _when(start, end) -> str:
    def show(value) -> str:
        moment = getattr(value, "dt", value)
        if isinstance(moment, datetime):
            if moment.tzinfo is not None:
                return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            return moment.strftime("%Y-%m-%d %H:%M")
        if isinstance(moment, date):
            return moment.isoformat()
        return ""

    first, last = show(start) if start is not None else "", show(end) if end is not None else ""
    if first and last and first != last:
        return f"{first} to {last}"
    return first


# --- the reader --------------------------------------------------------------------------------

@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def add(self, other: "_Body"):
        self.plain += other.plain
        self.html += other.html


class _Reader:
    """Fills one ParsedMail from one message; one instance per message (forwards get their own)."""

    def __init__(self, mail: ParsedMail, depth: int, split_quotes: bool = True):
        self.mail = mail
        self.depth = depth
        self.split_quotes = split_quotes
        self.parts = 0
        self.charset_hint: str | None = None
        self.delivery_status = False
        self.bounce_reasons: list[str] = []
        self.tnef: list[TnefContents] = []
        self.original_ids: list[str] = []  # Message-IDs of attached mails, the bounced one if any
        self.recovered: set[int] = set()  # multiparts read again with the boundary found in them

    @contextmanager
    def step(self, what: str):
        """Runs one step; an error there becomes a problem in words and the reading goes on."""
        try:
            yield
        except Exception as exc:
            log.info("mail: %s could not be read", what, exc_info=True)
            self.problem(f"{what[0].upper()}{what[1:]} could not be read ({_why(exc)}).")

    def problem(self, text: str):
        if text and text not in self.mail.problems:
            self.mail.problems.append(text)

    # whole message

    def read_bytes(self, raw: bytes):
        if raw.startswith(_OLE_FILE):
            self.problem("This is an Outlook .msg file, not an Internet mail; it is kept as an "
                         "attachment.")
            self.attach(None, raw, "message.msg", "application/vnd.ms-outlook")
            return
        if raw.count(b"\n--") > MAX_BOUNDARY_LINES:
            self.problem(f"The mail has more than {MAX_BOUNDARY_LINES} part boundaries; its "
                         "headers and text were read without its structure.")
            msg = self._headers_and_text(raw)
        else:
            try:
                msg = email.message_from_bytes(raw, policy=POLICY)
            except Exception as exc:  # e.g. RecursionError on absurd nesting
                self.problem(f"The mail's structure could not be read ({_why(exc)}); "
                             "its headers and text were read without it.")
                msg = self._headers_and_text(raw)
        self.read_message(msg)

    def _headers_and_text(self, raw: bytes) -> Message:
        """The mail read as headers and one block of text, for when its structure is unreadable."""
        msg = BytesHeaderParser(policy=POLICY).parsebytes(raw)
        body = msg.get_payload()
        body = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else b""
        del msg["Content-Type"]
        del msg["Content-Transfer-Encoding"]
        msg.set_payload(decode_bytes(body, None)[0])
        return msg

    def read_message(self, msg: Message):
        with self.step("the charset of the headers"):
            self.charset_hint = self.charset_of(msg)
        self.read_headers(msg)
        body = _Body()
        with self.step("the mail's body"):
            body = self.walk(msg, 0)
        with self.step("the mail's structure"):
            for defect in self._defects(msg):
                self.problem(defect)
        self.finish(msg, body)

    def _defects(self, msg: Message):
        for part in msg.walk():
            if id(part) in self.recovered:
                continue
            for defect in getattr(part, "defects", []):
                for kind, words in _DEFECTS_IN_WORDS.items():
                    if isinstance(defect, kind):
                        yield words

    def charset_of(self, msg: Message) -> str | None:
        """The first charset a part declares: raw 8-bit headers are most likely in it too."""
        for part in msg.walk():
            charset = part.get_param("charset")
            if isinstance(charset, tuple):  # RFC 2231 form
                charset = charset[2]
            if charset and _codec(str(charset)):
                return str(charset)
        return None

    # headers

    def header(self, msg: Message, name: str) -> str:
        """One header decoded to a string (RFC 2047, raw 8-bit), unfolded; "" when absent."""
        raw = self._raw(msg, name)
        if raw is None:
            return ""
        return self._decode_words(raw, msg, name)

    def _raw(self, msg: Message, name: str) -> str | None:
        lowered = name.lower()
        for key, value in msg.raw_items():
            if key.lower() == lowered:
                value = value if isinstance(value, str) else str(value)
                value = re.sub(r"\r?\n(?=[ \t])", "", value)
                return _fix_8bit(value, self.charset_hint)
        return None

    def _decode_words(self, raw: str, msg: Message, name: str) -> str:
        try:
            pieces = email.header.decode_header(raw)
            text = ""
            for piece, charset in pieces:
                if isinstance(piece, str):
                    text += piece
                elif charset is None:  # text between encoded words, escaped by decode_header
                    text += piece.decode("raw-unicode-escape", "replace")
                else:
                    text += decode_bytes(piece, charset)[0]
            return _one_line(text)
        except Exception:
            try:  # the modern parser is more forgiving with damaged encoded words
                return _one_line(str(POLICY.header_factory(name, raw)))
            except Exception:
                return _one_line(raw)

    def addresses(self, msg: Message, name: str) -> list[tuple[str, str]]:
        """(display name, lowercased address) pairs of an address header."""
        raw = self._raw(msg, name)
        if not raw:
            return []
        if len(raw) > MAX_ADDRESS_HEADER:
            self.problem(f"The {name} header was longer than {MAX_ADDRESS_HEADER:,} characters; "
                         "only its start was read.")
            raw = raw[:MAX_ADDRESS_HEADER].rpartition(",")[0] or raw[:MAX_ADDRESS_HEADER]
        found: list[tuple[str, str]] = []
        try:
            header = POLICY.header_factory(name, raw)
            for address in header.addresses:
                found.append((address.display_name or "", address.addr_spec or ""))
        except Exception:
            try:
                found = email.utils.getaddresses([raw])
            except Exception:
                found = []
        result = []
        for display, address in found:
            address = _one_line(address).strip("<>").lower()
            display = _one_line(self._decode_words(display, msg, name)) if "=?" in display else _one_line(display)
            if address and address != "<>":
                result.append((display, address))
        return result

    def read_headers(self, msg: Message):
        mail = self.mail
        with self.step("the Message-ID header"):
            ids = _message_ids(self.header(msg, "Message-ID"))
            mail.message_id = ids[0] if ids else ""
        with self.step("the In-Reply-To header"):
            mail.in_reply_to = _message_ids(self.header(msg, "In-Reply-To"))
        with self.step("the References header"):
            mail.references = _message_ids(self.header(msg, "References"))
        with self.step("the Subject header"):
            mail.subject = self.header(msg, "Subject")
        with self.step("the From header"):
            sender = self.addresses(msg, "From") or self.addresses(msg, "Sender")
            if sender:
                mail.from_name, mail.from_address = sender[0]
            elif self._raw(msg, "From"):
                self.problem("The From header names no address.")
        with self.step("the Reply-To header"):
            reply_to = self.addresses(msg, "Reply-To")
            mail.reply_to = reply_to[0][1] if reply_to else ""
        with self.step("the To header"):
            mail.to = _unique(address for _, address in self.addresses(msg, "To"))
        with self.step("the Cc header"):
            mail.cc = _unique(address for _, address in self.addresses(msg, "Cc"))
        with self.step("the Date header"):
            mail.date = self._date(msg)
        with self.step("the automatic-mail headers"):
            mail.auto_submitted = self.header(msg, "Auto-Submitted")
            mail.precedence = self.header(msg, "Precedence")
            mail.list_id = self.header(msg, "List-Id")
            mail.return_path = self.header(msg, "Return-Path")
            mail.x_autoreply = any(self._raw(msg, name) is not None for name in
                                   ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"))

    def _date(self, msg: Message) -> datetime | None:
        raw = self.header(msg, "Date")
        if not raw:
            return None
        try:
            moment = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError, OverflowError):
            moment = None
        if moment is None:
            self.problem(f"The Date header {raw[:80]!r} is not a date.")
            return None
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment

    # body

    def walk(self, part: Message, level: int) -> _Body:
        self.parts += 1
        if level > MAX_DEPTH:
            self.problem(f"Parts nested deeper than {MAX_DEPTH} levels were left out.")
            return _Body()
        if self.parts > MAX_PARTS:
            self.problem(f"The mail has more than {MAX_PARTS} parts; the rest were left out.")
            return _Body()
        ctype = part.get_content_type()
        maintype = ctype.split("/")[0]
        if maintype == "message" or ctype == "text/rfc822-headers":
            body = _Body()
            with self.step(f"a {ctype} part"):
                self.message_part(part, ctype)
            return body
        if part.is_multipart():
            return self.multipart(part, ctype, level)
        if maintype == "multipart":
            return self.broken_multipart(part, ctype, level)
        return self.leaf(part, ctype)

    def broken_multipart(self, part: Message, ctype: str, level: int) -> _Body:
        """A multipart whose declared boundary never occurs: read it again with the first line
        that looks like a boundary, else read it as text."""
        data = self._payload(part)
        found = re.search(rb"^--([0-9A-Za-z'()+_,./:=?-]{1,70}?)(--)?[ \t]*\r?$", data, re.MULTILINE)
        if found:
            header = b"Content-Type: " + ctype.encode() + b'; boundary="' + found.group(1) + b'"\r\n\r\n'
            inner = email.message_from_bytes(header + data, policy=POLICY)
            if inner.is_multipart() and inner.get_payload():
                self.recovered.add(id(part))
                self.problem("A multipart boundary was wrong; the parts were read from the "
                             "boundary lines found in the body.")
                return self.multipart(inner, ctype, level)
        body = _Body()
        text, _ = decode_bytes(data, None)
        if _text_of(text).strip():
            self.recovered.add(id(part))
            self.problem("A multipart part had no parts; its content was read as text.")
            body.plain.append(_text_of(text))
        return body

    def multipart(self, part: Message, ctype: str, level: int) -> _Body:
        children = part.get_payload()
        if not isinstance(children, list):
            children = []
        if ctype == "multipart/report" and str(part.get_param("report-type", "")).lower() == "delivery-status":
            self.delivery_status = True
        if ctype == "multipart/alternative" and children:
            bodies = []
            for child in children:
                body = _Body()
                with self.step("an alternative part"):
                    body = self.walk(child, level + 1)
                bodies.append(body)
            chosen = _Body()
            # Plain text from the first alternative that has it; HTML from the last (the richest).
            chosen.plain = next((body.plain for body in bodies if body.plain), [])
            chosen.html = next((body.html for body in reversed(bodies) if body.html), [])
            return chosen
        body = _Body()
        for child in children:
            with self.step("a part of the mail"):
                body.add(self.walk(child, level + 1))
        with self.step("the parts after the closing boundary"):
            body.add(self.after_closing_boundary(part, ctype, level))
        return body

    def after_closing_boundary(self, part: Message, ctype: str, level: int) -> _Body:
        """Parts after the closing boundary (a nested multipart that reused its parent's
        boundary closes the parent early): read them as more parts of this multipart."""
        epilogue, boundary = part.epilogue or "", part.get_boundary() or ""
        if not boundary or f"--{boundary}\n" not in epilogue.replace("\r\n", "\n") + "\n":
            return _Body()
        data = epilogue.encode("utf-8", "surrogateescape")
        if not re.search(rb"^--" + re.escape(boundary.encode("utf-8", "surrogateescape")) + rb"[ \t]*\r?$",
                         data, re.MULTILINE):
            return _Body()
        header = b"Content-Type: " + ctype.encode() + b'; boundary="' + boundary.encode() + b'"\r\n\r\n'
        inner = email.message_from_bytes(header + data, policy=POLICY)
        if not inner.is_multipart() or not inner.get_payload():
            return _Body()
        self.problem("Parts after the mail's closing boundary were read as well.")
        return self.multipart(inner, ctype, level + 1)

    def leaf(self, part: Message, ctype: str) -> _Body:
        body = _Body()
        filename = self._filename(part)
        disposition = (part.get_content_disposition() or "").lower()
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            with self.step(f"a {ctype} part"):
                text = self._text(part, ctype)
                if text.strip():
                    (body.plain if ctype == "text/plain" else body.html).append(text)
            return body
        data = self._payload(part)
        if ctype == "application/ms-tnef" or filename.lower() == "winmail.dat":
            if self._unpack_tnef(data):
                return body
        if ctype == "text/calendar" or filename.lower().endswith(".ics"):
            with self.step("the calendar invite"):
                if not self.mail.calendar:
                    self.mail.calendar = summarize_calendar(data)
        self.attach(part, data, filename, ctype)
        return body

    def _filename(self, part: Message) -> str:
        try:
            name = part.get_filename() or ""
        except Exception:
            name = ""
        if not name:
            try:
                name = part.get_param("name") or ""
                if isinstance(name, tuple):
                    name = email.utils.collapse_rfc2231_value(name)
            except Exception:
                name = ""
        name = _fix_8bit(str(name), self.charset_hint)
        if "=?" in name:  # RFC 2047 inside a parameter: wrong, but what Outlook sends
            name = self._decode_words(name, part, "Content-Type")
        return name.strip()

    def _payload(self, part: Message) -> bytes:
        try:
            data = part.get_payload(decode=True)
        except Exception as exc:
            self.problem(f"A part's data could not be decoded ({_why(exc)}); it was kept as sent.")
            data = None
        if data is None:
            payload = part.get_payload()
            data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
        return data

    def _text(self, part: Message, ctype: str) -> str:
        data = self._payload(part)
        declared = part.get_param("charset")
        if isinstance(declared, tuple):
            declared = declared[2]
        if not declared and ctype == "text/html":
            found = _META_CHARSET.search(data[:4096])
            declared = found.group(1).decode("ascii", "replace") if found else None
        text, note = decode_bytes(data, str(declared) if declared else None)
        if note:
            self.problem(note)
        return _text_of(text) if ctype == "text/plain" else text.replace("\x00", "")

    def attach(self, part: Message | None, data: bytes, filename: str, ctype: str,
               source: str = "part", content_id: str = "") -> Attachment:
        if part is not None:
            declared = _declared_type(part)
            try:
                content_id = str(part.get("Content-ID", "") or "").strip().strip("<>").strip()
            except Exception:
                content_id = ""
        else:
            declared = ctype
        number = len(self.mail.attachments) + 1
        attachment = Attachment(filename=_safe_filename(filename, number, declared),
                                content_type=declared, data=data, content_id=content_id,
                                source=source)
        self.mail.attachments.append(attachment)
        return attachment

    def _unpack_tnef(self, data: bytes) -> bool:
        try:
            contents = unpack_tnef(data)
        except Exception as exc:
            self.problem(f"The winmail.dat attachment could not be unpacked ({_why(exc)}); "
                         "it is kept as it is.")
            return False
        for name, file_data in contents.files:
            guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
            self.attach(None, file_data, name, guessed, source="tnef")
        self.tnef.append(contents)
        return True

    def message_part(self, part: Message, ctype: str):
        if ctype == "message/delivery-status":
            self.delivery_status = True
            text = self._delivery_status(part)
            self.attach(None, text.encode("utf-8"), "delivery-status.txt", "text/plain", "report")
            return
        if ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            # The bounced mail's headers (the second form is not standard, but sent).
            inner = self._inner_message(part) if ctype.startswith("message/") else None
            data = _message_bytes(inner) if inner is not None else self._payload(part)
            headers = BytesHeaderParser(policy=POLICY).parsebytes(data)
            self.original_ids += _message_ids(self.header(headers, "Message-ID"))
            self.attach(part, data, "original-headers.txt", "text/plain", "report")
            return
        inner = self._inner_message(part)
        data = _message_bytes(inner) if inner is not None else self._payload(part)
        if ctype in ("message/rfc822", "message/global") and inner is not None:
            forwarded = ParsedMail(content_hash=hashlib.sha256(data).hexdigest())
            if self.depth < MAX_FORWARD_DEPTH:
                reader = _Reader(forwarded, self.depth + 1, self.split_quotes)
                reader.read_message(inner)
            else:
                reader = _Reader(forwarded, self.depth + 1, self.split_quotes)
                reader.read_headers(inner)
                forwarded.problems.append("Forwarded too many times over to be read further.")
            self.mail.forwarded.append(forwarded)
            self.original_ids += _message_ids(forwarded.message_id)
            name = f"{forwarded.subject or 'forwarded message'}.eml"
            self.attach(part, data, name, ctype, "forwarded")
            return
        # Receipts (disposition-notification), abuse reports (feedback-report), fragments
        # (partial), external bodies: kept as files.
        name = self._filename(part) or f"{ctype.split('/')[1]}.txt"
        self.attach(part, data, name, ctype, "report")

    def _inner_message(self, part: Message) -> Message | None:
        """The message inside a message/* part, parsed."""
        payload = part.get_payload()
        cte = str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
        inner = payload[0] if isinstance(payload, list) and payload else None
        encoded = cte in ("base64", "quoted-printable")
        if inner is not None and not encoded:
            return inner
        if inner is not None:
            # Encoded (not allowed, but sent): the parser took the encoded lines for a message
            # without headers. Take them back, decode them, then parse the message.
            body = inner.get_payload()
            raw = (body.encode("ascii", "surrogateescape") if cte == "base64" and isinstance(body, str)
                   else _message_bytes(inner))
        elif isinstance(payload, str):
            raw = payload.encode("utf-8", "surrogateescape")
        else:
            raw = payload if isinstance(payload, bytes) else b""
        if cte == "base64":
            try:
                raw = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/]", b"", raw) + b"==")
            except (binascii.Error, ValueError):
                pass
        elif cte == "quoted-printable":
            raw = quopri.decodestring(raw)
        return email.message_from_bytes(raw, policy=POLICY) if raw.strip() else None

    def _delivery_status(self, part: Message) -> str:
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        if not blocks:
            data = self._payload(part).replace(b"\r\n", b"\n")
            blocks = [BytesHeaderParser(policy=POLICY).parsebytes(chunk + b"\n\n")
                      for chunk in re.split(rb"\n\s*\n", data) if chunk.strip()]
        texts = []
        for block in blocks:
            items = [(key, _one_line(_fix_8bit(str(value), None))) for key, value in block.raw_items()]
            fields = {key.lower(): value for key, value in items}
            texts.append("\n".join(f"{key}: {value}" for key, value in items))
            action = fields.get("action", "").lower()
            status = fields.get("status", "")
            diagnostic = re.sub(r"^(smtp|x-[\w-]+)\s*;\s*", "", fields.get("diagnostic-code", ""),
                                flags=re.IGNORECASE)
            recipient = re.sub(r"^rfc822\s*;\s*", "",
                               fields.get("final-recipient", fields.get("original-recipient", "")),
                               flags=re.IGNORECASE)
            if not (action or status or diagnostic):
                continue
            reason = diagnostic or (f"status {status}" if status else action)
            if diagnostic and status and status not in diagnostic:
                reason += f" (status {status})"
            if action and action not in ("failed",):
                reason = f"{action}: {reason}"
            self.bounce_reasons.append(f"{recipient}: {reason}" if recipient else reason)
        return "\n\n".join(texts)

    # putting it together

    def finish(self, msg: Message, body: _Body):
        mail = self.mail
        with self.step("the winmail.dat body"):
            for contents in self.tnef:
                if contents.text and not body.plain:
                    body.plain.append(contents.text)
                if contents.html and not body.html:
                    body.html.append(contents.html)
                if contents.rtf and not body.plain and not body.html:
                    self.attach(None, contents.rtf, "message.rtf", "application/rtf", "tnef")
        raw_html = "\n".join(body.html)
        with self.step("the HTML body"):
            mail.html = "\n".join(filter(None, (clean_html(html) for html in body.html)))
        with self.step("the text"):
            if body.plain:
                mail.text = "\n\n".join(body.plain)
            elif mail.html:
                mail.text = _text_of(html_to_text(mail.html))
        with self.step("the inline images"):
            referenced = {unquote(cid).strip("<>") for cid in _CID.findall(raw_html)}
            for attachment in mail.attachments:
                attachment.inline = bool(attachment.content_id) and attachment.content_id in referenced
        with self.step("the bounce"):
            self._finish_bounce(msg)
        with self.step("the quoted earlier mail"):
            if not self.split_quotes:
                pass
            elif _FORWARD_SUBJECT.match(mail.subject) or mail.is_bounce:
                mail.new_text = mail.text  # a forward or a bounce: the quoted part is the content
            else:
                mail.new_text, mail.quoted_text = split_reply(mail.text)

    def _finish_bounce(self, msg: Message):
        mail = self.mail
        local = mail.from_address.partition("@")[0]
        null_sender = mail.return_path.strip() in ("<>", "") and self._raw(msg, "Return-Path") is not None
        subject_says = bool(_BOUNCE_SUBJECT.search(mail.subject))
        mail.is_bounce = self.delivery_status or (subject_says and (local in _BOUNCE_SENDER or null_sender))
        if not mail.is_bounce:
            return
        mail.bounce_message_ids = _unique(self.original_ids)
        if self.bounce_reasons:
            mail.bounce_reason = "; ".join(_unique(self.bounce_reasons))[:1000]
            return
        for line in mail.text.splitlines():
            if _SMTP_ERROR.search(line) and len(line.strip()) > 5:
                mail.bounce_reason = _one_line(line)[:1000]
                return
        lines = [line.strip() for line in mail.text.splitlines() if line.strip()]
        mail.bounce_reason = _one_line(lines[0])[:1000] if lines else "The mail could not be delivered."


def _unique(values) -> list:
    seen: list = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


def _message_bytes(msg: Message) -> bytes:
    """A parsed message written back as bytes (for a forwarded message's .eml file)."""
    for policy in (POLICY, email.policy.compat32):
        try:
            return msg.as_bytes(policy=policy)
        except Exception:
            continue
    try:
        return msg.as_string(policy=email.policy.compat32).encode("utf-8", "surrogateescape")
    except Exception:
        return b""
