"""Bounces (delivery status notifications) of mail we sent: they mark that mail failed with the
reason and join its ticket as a note, instead of opening a ticket for the mailer daemon."""
import pytest

from app.models import Message, Ticket
from tests.email.conftest import SUPPORT, SUPPORT_PASSWORD
from tests.email.mailtools import append, fetch

pytest_plugins = ["tests.email.mailfixtures"]

REASON = "550 5.1.1 <maria@example.org>: Recipient address rejected: User unknown"


def delivery_status_notification(original, form: str = "headers") -> bytes:
    """A DSN as Postfix sends it (RFC 3464): multipart/report with a human part, the
    message/delivery-status part, and the original's headers (or the whole original)."""
    raw = original.as_bytes()
    head = raw.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if form == "headers":
        third = b"Content-Type: text/rfc822-headers\r\n\r\n" + head + b"\r\n"
    else:
        third = (b"Content-Type: message/rfc822\r\n\r\n"
                 + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n")
    return (
        b"Return-Path: <>\r\n"
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        b"To: support@example.test\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        b"Message-ID: <dsn-4711@mx.example.org>\r\n"
        b"Auto-Submitted: auto-replied\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN-BOUNDARY"\r\n'
        b"\r\n"
        b"--DSN-BOUNDARY\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"\r\n"
        b"This is the mail system at host mx.example.org.\r\n"
        b"I'm sorry to have to inform you that your message could not be delivered.\r\n"
        b"\r\n"
        b"--DSN-BOUNDARY\r\n"
        b"Content-Type: message/delivery-status\r\n"
        b"\r\n"
        b"Reporting-MTA: dns; mx.example.org\r\n"
        b"\r\n"
        b"Final-Recipient: rfc822; maria@example.org\r\n"
        b"Original-Recipient: rfc822;maria@example.org\r\n"
        b"Action: failed\r\n"
        b"Status: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; " + REASON.encode() + b"\r\n"
        b"\r\n"
        b"--DSN-BOUNDARY\r\n" + third + b"--DSN-BOUNDARY--\r\n"
    )


@pytest.mark.parametrize("form", ["headers", "whole original"])
def test_bounce_of_our_reply_marks_it_failed_on_its_ticket_instead_of_a_new_ticket(
        replied, mailbox, dovecot, settings, form):
    ticket, reply, sent = replied
    tickets_before = Ticket.select().count()
    append(dovecot, delivery_status_notification(sent, form))

    report = fetch(mailbox, settings)

    assert report.fetched == 1
    assert Ticket.select().count() == tickets_before
    failed = Message.get_by_id(reply.id)
    assert failed.state == "failed"
    assert "User unknown" in failed.error and failed.error.startswith("Bounced:")
    note = Message.get((Message.ticket == ticket.id) & (Message.direction == "note"))
    assert "Delivery failed for the mail to maria@example.org" in note.body_text
    assert "User unknown" in note.body_text
    assert not Message.select().where((Message.direction == "outgoing") & Message.is_auto
                                      & (Message.to_address.contains("mailer-daemon"))).exists()


def test_bounce_fetched_twice_adds_one_note(replied, mailbox, dovecot, settings):
    ticket, _, sent = replied
    append(dovecot, delivery_status_notification(sent))
    fetch(mailbox, settings)

    assert fetch(mailbox, settings).fetched == 0

    assert Message.select().where((Message.ticket == ticket.id)
                                  & (Message.direction == "note")).count() == 1


def test_bounce_is_not_noted_again_after_uidvalidity_changes(replied, mailbox, dovecot, settings):
    ticket, _, sent = replied
    append(dovecot, delivery_status_notification(sent))
    fetch(mailbox, settings)
    dovecot.change_uidvalidity(SUPPORT, SUPPORT_PASSWORD)

    fetch(mailbox, settings)

    assert Message.select().where((Message.ticket == ticket.id)
                                  & (Message.direction == "note")).count() == 1
