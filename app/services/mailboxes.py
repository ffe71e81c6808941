"""Mailboxes: setting them up, testing the connection, and fetching their new mail."""
import logging
import re
import threading
from datetime import timedelta

from imapclient.exceptions import IMAPClientError

from app import events
from app.db import transaction
from app.intake import IntakeResult
from app.mail import imap
from app.mail.parse_ahead import ParseAhead
from app.mail.receive import own_addresses, receive_mail
from app.models import Brand, Mailbox, Message, SkippedMail, utcnow
from app.models.mail import IMAP_SECURITY
from app.numbers import whole_number

log = logging.getLogger(__name__)
FIELDS = ("brand", "imap_host", "imap_port", "imap_security", "username", "folder", "addresses",
          "mark_seen", "paused")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# One fetch per mailbox at a time in this process; other processes are kept from storing a
# mail twice by its unique channel reference.
_fetching: dict = {}
_fetching_lock = threading.Lock()


class MailboxError(ValueError):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def clean(values: dict) -> dict:
    cleaned = {}
    slug = str(values.get("brand") or "").strip()
    brand = Brand.get_or_none(Brand.slug == slug) if slug else None
    if brand is None:
        raise MailboxError(f"There is no brand {slug}." if slug
                           else "Choose the brand this mailbox belongs to.", "brand")
    cleaned["brand"] = brand
    host = str(values.get("imap_host") or "").strip()
    if not host or re.search(r"[\s/]", host):
        raise MailboxError("The IMAP host is a name like imap.example.com.", "imap_host")
    cleaned["imap_host"] = host
    security = str(values.get("imap_security") or "ssl").strip().lower()
    if security not in IMAP_SECURITY:
        raise MailboxError("The security is ssl, starttls or none.", "imap_security")
    if security == "none" and host not in ("127.0.0.1", "localhost", "::1"):
        raise MailboxError("Without TLS the password would cross the network in clear text: "
                           "use ssl or starttls (none is allowed on this machine only).",
                           "imap_security")
    cleaned["imap_security"] = security
    port = values.get("imap_port")
    port = ((993 if security == "ssl" else 143) if port in (None, "")
            else whole_number(str(port).strip()))  # 0 is no default
    if port is None or not 0 < port < 65536:
        raise MailboxError("The IMAP port is a number from 1 to 65535.", "imap_port")
    cleaned["imap_port"] = port
    username = str(values.get("username") or "").strip()
    if not username:
        raise MailboxError("Give the user name to log in with.", "username")
    cleaned["username"] = username
    cleaned["folder"] = str(values.get("folder") or "INBOX").strip() or "INBOX"
    addresses = [a.strip().lower() for a in str(values.get("addresses") or "").split(",") if a.strip()]
    if not addresses and "@" in username:
        addresses = [username.lower()]
    if any("@" not in a or " " in a for a in addresses):
        raise MailboxError("The addresses are email addresses separated by commas.", "addresses")
    cleaned["addresses"] = ", ".join(addresses)
    cleaned["mark_seen"] = bool(values.get("mark_seen", True))
    cleaned["paused"] = bool(values.get("paused", False))
    return cleaned


def create_mailbox(name: str, values: dict, password: str, by=None) -> Mailbox:
    name = name.strip()
    if not _NAME.match(name):
        raise MailboxError("The name uses letters, digits, dots, dashes and @, like support-acme.",
                           "name")
    if name.lower() == "new":  # /admin/mailboxes/new is the page for a new mailbox
        raise MailboxError("Choose another name: new is taken.", "name")
    cleaned = clean(values)
    with transaction():
        if Mailbox.select().where(Mailbox.name == name).exists():
            raise MailboxError(f"A mailbox named {name} already exists.", "name")
        mailbox = Mailbox.create(name=name, password=password, **cleaned)
        events.record("mailbox.created", agent=by, mailbox=name)
    return mailbox


def update_mailbox(name: str, values: dict, password: str | None = None, by=None) -> Mailbox:
    """Change a mailbox; a password of None keeps the stored one (it is never shown again)."""
    cleaned = clean(values)
    with transaction():
        mailbox = get_mailbox(name)
        for key, value in cleaned.items():
            setattr(mailbox, key, value)
        if password is not None:
            mailbox.password = password
        mailbox.save()
        events.record("mailbox.updated", agent=by, mailbox=name)
    return mailbox


def get_mailbox(name: str) -> Mailbox:
    mailbox = Mailbox.get_or_none(Mailbox.name == name)
    if mailbox is None:
        raise MailboxError(f"There is no mailbox {name}.", "name")
    return mailbox


def list_mailboxes() -> list[Mailbox]:
    return list(Mailbox.select(Mailbox, Brand).join(Brand).order_by(Mailbox.name))


def test_connection(mailbox: Mailbox, timeout: float) -> str:
    """Log in and open the folder; returns what was found, or raises imap.ImapError in words."""
    client = imap.connect(mailbox, timeout)
    try:
        status = client.folder_status(mailbox.folder, [b"MESSAGES", b"UNSEEN"])
        idle = client.has_capability("IDLE")
    finally:
        imap.logout(client)
    return (f"Connected: {status[b'MESSAGES']} mails in {mailbox.folder} "
            f"({status[b'UNSEEN']} unread){', IDLE supported' if idle else ''}.")


def _channel_ref(mailbox: Mailbox, uidvalidity: int, uid: int) -> str:
    return f"imap:{mailbox.id}:{uidvalidity}:{uid}"


def fetch(mailbox_id: int, settings, limit: int | None = None) -> imap.FetchReport:
    """Check one mailbox now and store what is new. Safe to stop at any point: what was stored
    stays stored, what was not is fetched next time, nothing twice."""
    with _fetching_lock:
        lock = _fetching.setdefault(mailbox_id, threading.Lock())
    with lock:
        return _fetch(Mailbox.get_by_id(mailbox_id), settings, limit)


def _fetch(mailbox: Mailbox, settings, limit: int | None) -> imap.FetchReport:
    Mailbox.update(last_check_at=utcnow()).where(Mailbox.id == mailbox.id).execute()
    try:
        client = imap.connect(mailbox, settings.imap_timeout)
    except imap.ImapError as exc:
        _record_error(mailbox, str(exc))
        return imap.FetchReport(error=str(exc))
    try:
        validity = imap.uidvalidity(client, mailbox.folder)
        if mailbox.uidvalidity != validity:
            # New UIDs for the whole folder: read it again from the start. Mail already stored
            # is recognised by its dedupe key and becomes no second message.
            if mailbox.uidvalidity is not None:
                log.warning("mailbox %s: UIDVALIDITY changed from %s to %s", mailbox.name,
                            mailbox.uidvalidity, validity)
            with transaction():
                Mailbox.update(uidvalidity=validity, last_uid=0).where(Mailbox.id == mailbox.id).execute()
                # Listed mail is listed again under its new number when the folder is re-read.
                SkippedMail.delete().where((SkippedMail.mailbox == mailbox.id)
                                           & (SkippedMail.uidvalidity != validity)).execute()
            mailbox.uidvalidity, mailbox.last_uid = validity, 0

        def stored_among(uids):
            refs = {_channel_ref(mailbox, validity, uid): uid for uid in uids}
            stored = {refs[row.channel_ref] for row in
                      Message.select(Message.channel_ref).where(Message.channel_ref.in_(list(refs)))}
            skipped = SkippedMail.select(SkippedMail.uid).where(
                (SkippedMail.mailbox == mailbox.id) & (SkippedMail.uidvalidity == validity)
                & (SkippedMail.uid.in_(uids)))
            return stored | {row.uid for row in skipped}

        def store(uid, raw):
            result = receive_mail(raw, mailbox, _channel_ref(mailbox, validity, uid), settings,
                                  own, ahead.result(uid, raw))
            return not (isinstance(result, IntakeResult) and result.duplicate)

        def record_skipped(uid, size, headers, reason=""):
            sender = headers.get("from_address", "")
            (SkippedMail.insert(mailbox=mailbox.id, uidvalidity=validity, uid=uid, size=size,
                                sender=sender[:255], subject=headers.get("subject", "")[:255],
                                reason=reason)
             .on_conflict_ignore().execute())

        def advance(uid):
            (Mailbox.update(last_uid=uid)
             .where((Mailbox.id == mailbox.id) & (Mailbox.last_uid < uid)).execute())
            mailbox.last_uid = max(mailbox.last_uid, uid)

        own = own_addresses()  # read once per fetch: they get no acknowledgement
        with ParseAhead() as ahead:
            report = imap.fetch_new(client, mailbox, store, stored_among, record_skipped,
                                    advance, settings.max_mail_bytes, limit, ahead.start)
    except (IMAPClientError, OSError) as exc:
        reason = f"Reading {mailbox.folder} on {mailbox.imap_host} failed: {imap.error_text(exc)}"
        _record_error(mailbox, reason)
        return imap.FetchReport(error=reason)
    finally:
        imap.logout(client)
    Mailbox.update(last_success_at=utcnow(), last_error="", error_since=None,
                   fetched_count=Mailbox.fetched_count + report.fetched) \
        .where(Mailbox.id == mailbox.id).execute()
    return report


def retry_skipped(skipped_id: int, settings) -> str:
    """Fetch one listed mail again (after a fix, or a larger size limit) and store it; returns
    what happened, in words. The listing goes once the mail is stored."""
    skipped = SkippedMail.get_or_none(SkippedMail.id == skipped_id)
    if skipped is None:
        raise MailboxError("That mail is no longer listed.")
    mailbox = skipped.mailbox
    client = imap.connect(mailbox, settings.imap_timeout)
    try:
        if imap.uidvalidity(client, mailbox.folder) != skipped.uidvalidity:
            raise MailboxError("The mailbox was renumbered since (UIDVALIDITY changed): the mail "
                               "can no longer be found by its number.")
        raw = client.fetch([skipped.uid], ["BODY.PEEK[]"]).get(skipped.uid, {}).get(b"BODY[]")
        if raw is None:
            raise MailboxError("The mail is no longer on the server.")
        receive_mail(bytes(raw), mailbox, _channel_ref(mailbox, skipped.uidvalidity, skipped.uid),
                     settings)
        if mailbox.mark_seen:
            client.add_flags([skipped.uid], [imap.SEEN])
    finally:
        imap.logout(client)
    skipped.delete_instance()
    return f"The mail from {skipped.sender or 'an unknown sender'} is stored now."


def _record_error(mailbox: Mailbox, reason: str) -> None:
    log.warning("mailbox %s: %s", mailbox.name, reason)
    (Mailbox.update(last_error=reason, error_since=mailbox.error_since or utcnow())
     .where(Mailbox.id == mailbox.id).execute())


def due_mailboxes(poll_seconds: float | None = None) -> list[int]:
    """Mailboxes not paused; with poll_seconds, only those not checked for that long."""
    query = Mailbox.select(Mailbox.id).where(~Mailbox.paused)
    if poll_seconds is not None:
        # A few seconds early: a poll every minute must not skip a mailbox checked 59 s ago.
        since = utcnow() - timedelta(seconds=max(0, poll_seconds - 5))
        query = query.where(Mailbox.last_check_at.is_null() | (Mailbox.last_check_at < since))
    return [m.id for m in query]
