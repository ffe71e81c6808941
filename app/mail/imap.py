"""IMAP: connecting to a mailbox with failures explained in words, and fetching its new mail
exactly once (BODY.PEEK, stored before it is marked seen, resumable at any point)."""
import imaplib
import logging
import socket
import ssl
from dataclasses import dataclass, field

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from app.mail.parse import parse_headers

log = logging.getLogger(__name__)
SEEN = b"\\Seen"
HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT MESSAGE-ID)]"
BATCH = 50
# Bodies come several to a FETCH, up to this many bytes together: one round trip per mail
# cost more than storing a small mail.
GROUP_BYTES = 4 * 1024 * 1024


class ImapError(Exception):
    """What went wrong with a mailbox, in words for an admin."""


@dataclass
class FetchReport:
    fetched: int = 0  # stored as new messages (or bounces)
    duplicates: int = 0  # already stored (another UID, another mailbox, an earlier run)
    skipped: int = 0  # over the size limit, left on the server
    failed: list = field(default_factory=list)  # (uid, reason) that could not be stored
    error: str = ""  # the mailbox itself could not be read


def connect(mailbox, timeout: float) -> IMAPClient:
    """A logged-in client with the folder selected; raises ImapError in words."""
    where = f"{mailbox.imap_host}:{mailbox.imap_port}"
    try:
        # A TLS context only where TLS is used: making one reads the CA store (30 ms or so).
        use_ssl = mailbox.imap_security == "ssl"
        client = IMAPClient(mailbox.imap_host, port=mailbox.imap_port, ssl=use_ssl,
                            ssl_context=ssl.create_default_context() if use_ssl else None,
                            timeout=timeout)
    except ssl.SSLError as exc:
        raise ImapError(f"The secure connection (TLS) to {where} failed: {exc.reason or exc}. "
                        "Check the security setting and the port.") from None
    except ConnectionRefusedError:
        raise ImapError(f"Cannot connect to {where}: the connection was refused.") from None
    except socket.gaierror:
        raise ImapError(f"Cannot find the mail server {mailbox.imap_host}: the host name "
                        "does not resolve.") from None
    except (socket.timeout, TimeoutError):
        raise ImapError(f"The mail server {where} did not answer in time.") from None
    except OSError as exc:
        raise ImapError(f"Cannot connect to {where}: {exc.strerror or exc}.") from None
    try:
        if mailbox.imap_security == "starttls":
            client.starttls(ssl.create_default_context())
        client.login(mailbox.username, mailbox.password)
    except LoginError as exc:
        logout(client)
        raise ImapError(f"The mail server {where} refused the login for {mailbox.username}: "
                        f"{error_text(exc)}") from None
    except ssl.SSLError as exc:
        logout(client)
        raise ImapError(f"STARTTLS with {where} failed: {exc.reason or exc}.") from None
    except (IMAPClientError, imaplib.IMAP4.error) as exc:
        logout(client)
        raise ImapError(f"The mail server {where} answered: {error_text(exc)}") from None
    try:
        client.select_folder(mailbox.folder, readonly=not mailbox.mark_seen)
    except (IMAPClientError, imaplib.IMAP4.error) as exc:
        logout(client)
        raise ImapError(f"The folder {mailbox.folder!r} cannot be opened on {where}: "
                        f"{error_text(exc)}") from None
    return client


def error_text(exc: Exception) -> str:
    text = str(exc)
    return text[2:-1] if text.startswith(("b'", 'b"')) else text


def logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # the connection may already be gone; nothing more to do
        pass


def uidvalidity(client: IMAPClient, folder: str) -> int:
    return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])


def new_uids(client: IMAPClient, after_uid: int) -> list[int]:
    # "UID n:*" always matches the newest mail, even when its UID is below n.
    return sorted(uid for uid in client.search(["UID", f"{after_uid + 1}:*"]) if uid > after_uid)


def fetch_new(client: IMAPClient, mailbox, store, stored_among, record_skipped, advance,
              max_bytes: int, limit: int | None = None, downloaded=None) -> FetchReport:
    """Fetch what came after the mailbox's last UID, in UID order and in batches:
    stored_among(uids) -> the set of those already stored, store(uid, raw) -> bool (True: new),
    record_skipped(uid, size, headers, reason), then advance(uid) once a batch is safely
    stored. Marked \\Seen only after that; a fetch cut off halfway finds what it stored by
    stored_among and only marks it. downloaded(bodies), when given, sees each group of
    downloaded mails (uid -> raw) before they are stored."""
    report = FetchReport()
    uids = new_uids(client, mailbox.last_uid)[:limit]
    for start in range(0, len(uids), BATCH):
        batch = uids[start:start + BATCH]
        # Sizes and a few headers first: no download of what is stored or too big.
        heads = client.fetch(batch, ["RFC822.SIZE", HEADER_FIELDS])
        sizes = {uid: int(heads.get(uid, {}).get(b"RFC822.SIZE", 0)) for uid in batch}
        stored = stored_among(batch)
        wanted = [uid for uid in batch if uid not in stored and sizes[uid] <= max_bytes]
        bodies: dict = {}
        handled = []  # in the database now: to be marked seen
        for uid in batch:
            if uid in stored:
                report.duplicates += 1
                handled.append(uid)
                continue
            if sizes[uid] > max_bytes:
                # Left on the server as it is, for a person to handle in a mail program.
                record_skipped(uid, sizes[uid], parse_headers(_header_bytes(heads.get(uid, {}))),
                               reason=f"over the size limit ({sizes[uid]:,} bytes)")
                report.skipped += 1
                continue
            if uid not in bodies:
                bodies = _fetch_bodies(client, _next_group(wanted, uid, sizes))
                if downloaded is not None:
                    downloaded(bodies)
            body = bodies.pop(uid, None)
            if body is None:  # deleted by someone else in the meantime
                continue
            try:
                new = store(uid, body)
            except Exception as exc:  # one mail must not block the mailbox: noted, skipped
                log.exception("mail %s of mailbox %s could not be stored", uid, mailbox.name)
                report.failed.append((uid, f"{type(exc).__name__}: {exc}"))
                record_skipped(uid, sizes[uid], parse_headers(_header_bytes(heads.get(uid, {}))),
                               reason=f"could not be stored: {type(exc).__name__}: {exc}")
                continue
            report.fetched += new
            report.duplicates += not new
            handled.append(uid)
        if mailbox.mark_seen and handled:
            client.add_flags(handled, [SEEN])
        advance(batch[-1])
    return report


def _next_group(wanted: list[int], first: int, sizes: dict) -> list[int]:
    """UIDs from `first` on whose mails together stay within GROUP_BYTES (at least one)."""
    group, total = [], 0
    for uid in wanted[wanted.index(first):]:
        if group and total + sizes[uid] > GROUP_BYTES:
            break
        group.append(uid)
        total += sizes[uid]
    return group


def _fetch_bodies(client: IMAPClient, uids: list[int]) -> dict:
    fetched = client.fetch(uids, ["BODY.PEEK[]"])
    return {uid: bytes(data[b"BODY[]"]) for uid, data in fetched.items() if b"BODY[]" in data}


def _header_bytes(head: dict) -> bytes:
    for key, value in head.items():
        if key.startswith(b"BODY[HEADER"):
            return bytes(value or b"")
    return b""
