"""Which ticket an incoming mail answers: by our signed Message-IDs, by the Message-IDs of mail
received on a ticket, then by the [#123] reference in the subject. Never by subject text alone,
and only for the ticket's own customer: a stranger who quotes an id gets a new ticket."""
import re

from app.mail.ids import ticket_of_message_id
from app.models import CustomerIdentity, Message, Ticket

REFERENCE_IN_SUBJECT = re.compile(r"\[#(\d{1,12})\]")
MAX_IDS = 50


def _belongs_to_customer(ticket: Ticket, sender: str) -> bool:
    if not sender:
        return False
    return CustomerIdentity.select().where(
        (CustomerIdentity.customer == ticket.customer_id) & (CustomerIdentity.kind == "email")
        & (CustomerIdentity.value == sender)).exists()


def candidates(mail, secret_key: str) -> list[int]:
    """Ticket ids the mail points at, the most trustworthy first."""
    ids = list(dict.fromkeys(reversed([*mail.references, *mail.in_reply_to])))[:MAX_IDS]
    found = [t for t in (ticket_of_message_id(secret_key, mid) for mid in ids) if t]
    if ids:
        received = (Message.select(Message.ticket).where(Message.message_id.in_(ids))
                    .order_by(Message.id.desc()).limit(MAX_IDS))
        found += [m.ticket_id for m in received]
    found += [int(n) for n in REFERENCE_IN_SUBJECT.findall(mail.subject)]
    return list(dict.fromkeys(found))


def find_ticket(mail, secret_key: str) -> Ticket | None:
    for ticket_id in candidates(mail, secret_key):
        ticket = Ticket.get_or_none(Ticket.id == ticket_id)
        if ticket is not None and _belongs_to_customer(ticket, mail.from_address):
            return ticket
    return None
