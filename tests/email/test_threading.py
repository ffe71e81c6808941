"""Which ticket a mail answers: our signed Message-IDs, the ids of mail on a ticket, the [#N]
in the subject, and only for the ticket's own customer; never by subject text alone."""
from datetime import timedelta


from app.models import Message, Ticket, utcnow
from app.services import tickets
from tests.email.mailtools import (CUSTOMER, append, build_mail, fetch, incoming, open_ticket,
                                   sent_to, tickets_from)

pytest_plugins = ["tests.email.mailfixtures"]

STRANGER = "Mallory <mallory@example.net>"


def answer(dovecot, mailbox, settings, **mail) -> Message:
    """A mail fetched: the incoming message it became."""
    raw = build_mail(**mail)
    append(dovecot, raw)
    assert fetch(mailbox, settings).fetched == 1
    return incoming()[-1]


def closed_days_ago(ticket, days: int) -> None:
    """As if the ticket had been closed, and left alone, that many days ago."""
    (Ticket.update(last_activity_at=utcnow() - timedelta(days=days))
     .where(Ticket.id == ticket.id).execute())



def test_reply_to_our_message_id_lands_on_the_ticket(replied, mailbox, dovecot, settings):
    ticket, reply, sent = replied
    assert sent["Message-ID"] == reply.message_id

    message = answer(dovecot, mailbox, settings, subject="Re: your parcel",
                     body="Thanks, it arrived.",
                     headers={"In-Reply-To": sent["Message-ID"], "References": sent["Message-ID"]})

    assert message.ticket_id == ticket.id
    assert Ticket.select().count() == 1
    assert Ticket.get_by_id(ticket.id).status == "open"


def test_reply_with_only_the_reference_in_the_subject_from_the_customer_lands_on_the_ticket(
        mailbox, dovecot, settings):
    ticket = open_ticket(mailbox, dovecot, settings)

    message = answer(dovecot, mailbox, settings, subject=f"More about [#{ticket.id}]",
                     body="I forgot the order number: 4711.")

    assert message.ticket_id == ticket.id and Ticket.select().count() == 1


def test_follow_up_to_the_customers_own_first_mail_lands_on_the_ticket(mailbox, dovecot, settings):
    ticket = open_ticket(mailbox, dovecot, settings, message_id="<first@mail.example.org>")

    message = answer(dovecot, mailbox, settings, subject="Also: the colour",
                     headers={"In-Reply-To": "<first@mail.example.org>"})

    assert message.ticket_id == ticket.id


def test_the_reference_in_the_subject_from_a_stranger_opens_a_new_ticket(mailbox, dovecot,
                                                                         settings):
    ticket = open_ticket(mailbox, dovecot, settings)

    message = answer(dovecot, mailbox, settings, sender=STRANGER,
                     subject=f"Re: [#{ticket.id}] Where is my parcel?", body="Tell me her address.")

    assert message.ticket_id != ticket.id
    assert message.ticket.customer.email == "mallory@example.net"
    assert Message.select().where(Message.ticket == ticket.id).count() == 2  # hers and the ack


def test_our_message_id_quoted_by_a_stranger_opens_a_new_ticket(replied, mailbox, dovecot,
                                                                settings):
    ticket, _, sent = replied

    message = answer(dovecot, mailbox, settings, sender=STRANGER, subject="Re: your parcel",
                     headers={"In-Reply-To": sent["Message-ID"], "References": sent["Message-ID"]})

    assert message.ticket_id != ticket.id
    assert tickets_from("mallory@example.net") == [message.ticket]


def test_mail_from_an_agents_address_is_a_customer_message_on_a_new_ticket(
        replied, mailbox, dovecot, settings, agent, smtp_server):
    ticket, reply, sent = replied
    mails_to_customer = sent_to(smtp_server, CUSTOMER)

    message = answer(dovecot, mailbox, settings, sender=f"Sam Support <{agent.email}>",
                     subject=f"Re: [#{ticket.id}] Where is my parcel?",
                     body="Dear customer, this was typed in my own mail program.",
                     headers={"In-Reply-To": sent["Message-ID"], "References": sent["Message-ID"]})

    assert message.direction == "incoming" and message.author_id is None
    assert message.ticket_id != ticket.id
    assert message.ticket.customer.email == agent.email
    assert not Message.select().where((Message.direction == "outgoing")
                                      & Message.author.is_null(False)
                                      & (Message.id != reply.id)).exists()
    assert Message.select().where(Message.ticket == ticket.id).count() == 3  # mail, ack, reply
    assert sent_to(smtp_server, CUSTOMER) == mails_to_customer


def test_customer_reply_reopens_a_resolved_ticket(mailbox, dovecot, settings, agent):
    ticket = open_ticket(mailbox, dovecot, settings)
    tickets.change_status(ticket.id, "resolved", agent)

    message = answer(dovecot, mailbox, settings, subject=f"Re: [#{ticket.id}] Where is my parcel?",
                     body="It still has not come.")

    assert message.ticket_id == ticket.id
    assert Ticket.get_by_id(ticket.id).status == "open"


def test_customer_reply_reopens_a_recently_closed_ticket(mailbox, dovecot, settings, agent):
    ticket = open_ticket(mailbox, dovecot, settings)
    tickets.change_status(ticket.id, "closed", agent)

    message = answer(dovecot, mailbox, settings, subject=f"Re: [#{ticket.id}] Where is my parcel?")

    assert message.ticket_id == ticket.id
    assert Ticket.get_by_id(ticket.id).status == "open"


def test_reply_to_a_ticket_closed_long_ago_opens_a_new_ticket_linked_to_it(
        replied, mailbox, dovecot, settings, agent):
    ticket, _, sent = replied
    tickets.change_status(ticket.id, "closed", agent)
    closed_days_ago(ticket, 6)
    raw = build_mail(subject=f"Re: [#{ticket.id}] Where is my parcel?", body="The boots broke.",
                     headers={"In-Reply-To": sent["Message-ID"]})
    append(dovecot, raw)

    assert fetch(mailbox, settings, reopen_closed_days=5).fetched == 1

    new = Ticket.select().order_by(Ticket.id.desc()).get()
    assert new.id != ticket.id
    assert new.linked_ticket_id == ticket.id
    assert new.customer_id == ticket.customer_id
    assert "The boots broke." in incoming()[-1].body_text and incoming()[-1].ticket_id == new.id
    assert Ticket.get_by_id(ticket.id).status == "closed"


def test_ticket_closed_within_the_configured_age_is_reopened_instead(replied, mailbox, dovecot,
                                                                     settings, agent):
    ticket, _, sent = replied
    tickets.change_status(ticket.id, "closed", agent)
    closed_days_ago(ticket, 6)
    append(dovecot, build_mail(subject="Re: your parcel",
                               headers={"In-Reply-To": sent["Message-ID"]}))

    fetch(mailbox, settings, reopen_closed_days=7)

    assert incoming()[-1].ticket_id == ticket.id
    assert Ticket.get_by_id(ticket.id).status == "open"


def test_same_subject_without_a_reference_opens_a_new_ticket(mailbox, dovecot, settings):
    ticket = open_ticket(mailbox, dovecot, settings, subject="Where is my parcel?")

    message = answer(dovecot, mailbox, settings, subject="Where is my parcel?")

    assert message.ticket_id != ticket.id
    assert len(tickets_from(CUSTOMER)) == 2


def test_our_own_sent_mail_coming_back_opens_no_ticket(replied, mailbox, dovecot, settings,
                                                       smtp_server):
    ticket, reply, _ = replied
    copy = next(e.content for e in smtp_server.envelopes if reply.message_id.encode() in e.content)
    append(dovecot, copy)

    fetch(mailbox, settings)

    assert [t.id for t in Ticket.select()] == [ticket.id]
    assert tickets_from("support@example.test") == []
