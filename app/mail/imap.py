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


def fetch_new(client: IMAPClient, mailbox, store, already_stored, record_skipped, advance,
              max_bytes: int, limit: int | None = None) -> FetchReport:
    """Fetch what came after the mailbox's last UID. For each mail, in UID order:
    already_stored(uid) -> bool, store(uid, raw) -> bool (True: new), record_skipped(uid, size,
    headers), then advance(uid) once it is safely stored. Marked \\Seen only after that."""
    report = FetchReport()
    uids = new_uids(client, mailbox.last_uid)[:limit]
    for start in range(0, len(uids), BATCH):
        batch = uids[start:start + BATCH]
        # Sizes and a few headers first: no download of what is stored or too big.
        heads = client.fetch(batch, ["RFC822.SIZE", HEADER_FIELDS])
        for uid in batch:
            head = heads.get(uid, {})
            size = int(head.get(b"RFC822.SIZE", 0))
            if already_stored(uid):
                report.duplicates += 1
            elif size > max_bytes:
                # Left on the server as it is, for a person to handle in a mail program.
                record_skipped(uid, size, parse_headers(_header_bytes(head)),
                               reason=f"over the size limit ({size:,} bytes)")
                report.skipped += 1
                advance(uid)
                continue
            else:
                body = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
                if body is None:  # deleted by someone else in the meantime
                    advance(uid)
                    continue
                try:
                    new = store(uid, bytes(body))
                except Exception as exc:  # one mail must not block the mailbox: noted, skipped
                    log.exception("mail %s of mailbox %s could not be stored", uid, mailbox.name)
                    report.failed.append((uid, f"{type(exc).__name__}: {exc}"))
                    record_skipped(uid, size, parse_headers(_header_bytes(head)),
                                   reason=f"could not be stored: {type(exc).__name__}: {exc}")
                    advance(uid)
                    continue
                if new:
                    report.fetched += 1
                else:
                    report.duplicates += 1
            if mailbox.mark_seen:
                client.add_flags([uid], [SEEN])
            advance(uid)
    return report


def _header_bytes(head: dict) -> bytes:
    for key, value in head.items():
        if key.startswith(b"BODY[HEADER"):
            return bytes(value or b"")
    return b""
