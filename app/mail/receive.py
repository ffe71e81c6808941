"""One fetched mail, stored: a bounce on the mail it bounced, an answer on its ticket, or a new
ticket, with its original and files kept, and an acknowledgement when the rules allow one."""
import hashlib
from datetime import timedelta

from app import events
from app.db import transaction
from app.intake import Incoming, IntakeResult, receive
from app.mail import autoreply, threading
from app.mail.parse import ParsedMail
from app.mail.parse_ahead import parse_for_intake
from app.models import Agent, Brand, Mailbox, Message, Ticket, utcnow
from app.services import blobs

BODY_SEPARATORS = (b"\r\n\r\n", b"\n\n")


def dedupe_key(raw: bytes, mail: ParsedMail) -> str:
    """The same mail, whatever mailbox brought it: its Message-ID and a hash of its body and
    main headers, leaving out what each delivery adds (Received, Delivered-To)."""
    body = raw
    for separator in BODY_SEPARATORS:
        head, found, rest = raw.partition(separator)
        if found:
            body = rest
            break
    digest = hashlib.sha256()
    for part in (mail.message_id, mail.from_address, mail.subject, str(mail.date or "")):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    digest.update(body)
    return digest.hexdigest()


def own_addresses() -> set:
    """Brands', mailboxes' and agents' addresses: none of them gets an acknowledgement."""
    addresses = {b.address.lower() for b in Brand.select(Brand.address)}
    addresses.update(a.email.lower() for a in Agent.select(Agent.email))
    for mailbox in Mailbox.select(Mailbox.addresses, Mailbox.username):
        addresses.update(mailbox.address_list)
        if "@" in mailbox.username:
            addresses.add(mailbox.username.lower())
    return addresses


def acknowledged_recently(address: str, hours: float) -> bool:
    since = utcnow() - timedelta(hours=hours)
    return Message.select().where((Message.to_address == address) & Message.is_auto
                                  & (Message.created_at > since)).exists()


def _bounced_message(mail: ParsedMail) -> Message | None:
    if not mail.is_bounce or not mail.bounce_message_ids:
        return None
    return (Message.select().where((Message.message_id.in_(mail.bounce_message_ids))
                                   & (Message.direction == "outgoing")).first())


def _record_bounce(bounced: Message, mail: ParsedMail, channel_ref: str, raw_sha256: str,
                   key: str):
    """A bounce for mail we sent: that message failed, and the bounce joins its ticket."""
    reason = mail.bounce_reason or "the receiving server refused the mail"
    with transaction():
        if Message.select().where((Message.channel_ref == channel_ref)
                                  | (Message.dedupe_key == key)).exists():
            return bounced.ticket
        Message.update(state="failed", error=f"Bounced: {reason}", next_attempt_at=None) \
            .where(Message.id == bounced.id).execute()
        Message.create(ticket=bounced.ticket_id, direction="note", state="note",
                       body_text=f"Delivery failed for the mail to {bounced.to_address}: {reason}",
                       channel_ref=channel_ref, dedupe_key=key, raw_sha256=raw_sha256,
                       message_id=mail.message_id)
        events.record("message.bounced", ticket=bounced.ticket_id, message_id=bounced.id,
                      reason=reason)
    events.notify()
    return bounced.ticket


def _attachments(mail: ParsedMail, settings) -> tuple[list[dict], list[str]]:
    """Store the files within the size limit; say in words what was left out."""
    kept, notes, total = [], [], 0
    for attachment in mail.attachments:
        size = len(attachment.data)
        if total + size > settings.max_mail_bytes:
            notes.append(f"The file {attachment.filename} ({size:,} bytes) was over the size "
                         "limit and is only in the original mail.")
            continue
        total += size
        kept.append({"filename": attachment.filename, "content_type": attachment.content_type,
                     "size": size, "sha256": blobs.store(settings.data_dir, attachment.data),
                     "content_id": attachment.content_id, "inline": attachment.inline})
    return kept, notes


def receive_mail(raw: bytes, mailbox: Mailbox, channel_ref: str, settings,
                 own: set | None = None, mail: ParsedMail | None = None) -> IntakeResult | Ticket:
    """Store one mail exactly once (its channel reference and dedupe key are unique). `own`
    (our addresses, own_addresses()) and `mail` (the raw mail parsed) when the caller has them."""
    if mail is None:
        mail = parse_for_intake(raw)
    if mail.message_id:
        # A copy of mail we sent (a Bcc, an alias forwarding back) is no customer's message.
        sent = Message.get_or_none((Message.message_id == mail.message_id)
                                   & (Message.direction == "outgoing"))
        if sent is not None:
            return IntakeResult(ticket=sent.ticket, message=sent, created=False, duplicate=True)
    raw_sha256 = blobs.store(settings.data_dir, raw)
    key = dedupe_key(raw, mail)
    bounced = _bounced_message(mail)
    if bounced is not None:
        return _record_bounce(bounced, mail, channel_ref, raw_sha256, key)

    ticket = threading.find_ticket(mail, settings.secret_key)
    linked_ticket_id = None
    if ticket is not None and ticket.status == "closed" and \
            ticket.last_activity_at < utcnow() - timedelta(days=settings.reopen_closed_days):
        ticket, linked_ticket_id = None, ticket.id  # too old to reopen: a new ticket, linked
    brand = mailbox.brand
    acknowledge = ticket is None and brand.ack_enabled and not autoreply.refusal(
        mail, own if own is not None else own_addresses(), acknowledged_recently(mail.from_address, settings.ack_quiet_hours))
    attachments, notes = _attachments(mail, settings)
    text = mail.text
    if mail.calendar:
        text = f"Calendar invitation: {mail.calendar}\n\n{text}"
    return receive(Incoming(
        channel="email", brand=brand, sender_email=mail.from_address, sender_name=mail.from_name,
        subject=mail.subject, text=text, html=mail.html, channel_ref=channel_ref,
        message_id=mail.message_id, ticket_id=ticket.id if ticket else None,
        acknowledge=acknowledge, dedupe_key=key, raw_sha256=raw_sha256,
        attachments=attachments, notes="\n".join([*mail.problems, *notes]),
        linked_ticket_id=linked_ticket_id, reopens=not autoreply.is_automatic(mail),
    ), settings.secret_key)
