"""What the email-channel tests share: mails built as a mail client would send them, delivered
into the test Dovecot, fetched, replied to; and running the `helpdesk` command. The fixtures
built on these are in tests/email/mailfixtures.py."""
import hashlib
import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path

from app.models import Customer, Message, Ticket
from app.services import mailboxes, tickets
from tests.conftest import wait_for_state
from tests.email.conftest import SUPPORT, SUPPORT_PASSWORD
from tests.helpers import wait_until

HELPDESK = str(Path(sys.executable).parent / "helpdesk")
CUSTOMER = "maria@example.org"
_numbers = itertools.count(1)


def build_mail(sender: str = f"Maria Lopez <{CUSTOMER}>", subject: str = "Where is my parcel?",
               body: str = "It has not arrived yet.", *, to: str = SUPPORT, cc: str = "",
               message_id: str | None = "new", headers: dict | list = (),
               date: datetime | None = None) -> bytes:
    """A plain-text mail as bytes with CRLF line ends, as it travels. message_id "new" makes a
    fresh one, None leaves the header out; headers are added as given (name, value)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    if cc:
        mail["Cc"] = cc
    mail["Subject"] = subject
    mail["Date"] = format_datetime(date or datetime.now(UTC))
    if message_id == "new":
        message_id = make_msgid(f"m{next(_numbers)}", domain="mail.example.org")
    if message_id:
        mail["Message-ID"] = message_id
    for name, value in (headers.items() if isinstance(headers, dict) else headers):
        mail[name] = value
    mail.set_content(body)
    return mail.as_bytes(policy=SMTP)


def with_trace(raw: bytes, *lines: str) -> bytes:
    """The mail as one delivery stored it: trace lines (Received, Delivered-To) put on top."""
    return "".join(line + "\r\n" for line in lines).encode() + raw


def append(dovecot, raw: bytes, user: str = SUPPORT, password: str = SUPPORT_PASSWORD) -> int:
    """Deliver a mail into the user's INBOX; returns its UID."""
    return dovecot.append(user, password, raw)[1]


def seen(dovecot, uid: int, user: str = SUPPORT, password: str = SUPPORT_PASSWORD) -> bool:
    return "\\Seen" in dovecot.flags_of(user, password, uid)


def add_mailbox(dovecot, name: str = "support", username: str = SUPPORT,
                password: str = SUPPORT_PASSWORD, brand: str = "acme", **values):
    return mailboxes.create_mailbox(name, {
        "brand": brand, "imap_host": dovecot.host, "imap_port": dovecot.port,
        "imap_security": "none", "username": username, **values}, password)


def fetch(mailbox, settings, **changes):
    """Check the mailbox now, as the worker and `helpdesk mailbox fetch` do."""
    report = mailboxes.fetch(mailbox.id, settings.with_changes(**changes) if changes else settings)
    assert not report.error, report.error
    return report


def acknowledgements(ticket=None) -> list:
    query = Message.select().where((Message.direction == "outgoing") & Message.is_auto)
    if ticket is not None:
        query = query.where(Message.ticket == ticket)
    return list(query.order_by(Message.id))


def incoming(message_id: str | None = None) -> list:
    query = Message.select().where(Message.direction == "incoming")
    if message_id is not None:
        query = query.where(Message.message_id == message_id)
    return list(query.order_by(Message.id))


def sent_to(smtp_server, address: str) -> list:
    """The mails the SMTP server got for this address."""
    return [m for m in smtp_server.messages if m["To"].addresses[0].addr_spec == address]


def tickets_from(address: str) -> list:
    return list(Ticket.select().join(Customer).where(Customer.email == address).order_by(Ticket.id))


def helpdesk_env(data_dir, secret_key: str = "") -> dict:
    """The environment for a `helpdesk` subprocess working on this data directory (and this
    secret key; without one it makes its own there)."""
    env = {**os.environ, "HELPDESK_DATA_DIR": str(data_dir)}
    for name in ("HELPDESK_DATABASE_URL", "HELPDESK_HUEY_URL", "HELPDESK_SECRET_KEY"):
        env.pop(name, None)
    if secret_key:
        env["HELPDESK_SECRET_KEY"] = secret_key
    return env


def run_helpdesk(env: dict, *args, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([HELPDESK, *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def open_ticket(mailbox, dovecot, settings, **mail) -> Ticket:
    """A customer's mail, fetched: the ticket it opened."""
    raw = build_mail(**mail)
    append(dovecot, raw)
    assert fetch(mailbox, settings).fetched == 1
    sha256 = hashlib.sha256(raw).hexdigest()
    return Message.get((Message.raw_sha256 == sha256) & (Message.direction == "incoming")).ticket


def send_reply(ticket, agent, settings, smtp_server, text: str = "Your parcel left yesterday."):
    """An agent's reply, sent by the worker: (the stored message, the mail as the SMTP server
    received it)."""
    message = tickets.reply(ticket.id, text, agent, settings.secret_key)
    wait_for_state(message.id, "sent")
    received = wait_until(lambda: next((m for m in smtp_server.messages
                                        if m["Message-ID"] == message.message_id), None),
                          message=f"the SMTP server never got {message.message_id}")
    return Message.get_by_id(message.id), received
