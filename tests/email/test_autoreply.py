"""Automatic acknowledgements of new tickets (RFC 3834): one per new mail from a person, sent by
the worker over real SMTP; none to machines, lists, bounces, ourselves, a sender answered a
short while ago, or another helpdesk's own automatic mail, so two helpdesks never loop."""
import email
import email.policy

import pytest

from app.models import Brand, Ticket
from tests.conftest import wait_for_state
from tests.email.mailtools import (CUSTOMER, acknowledgements, append, build_mail, fetch, incoming,
                                   sent_to, tickets_from)

pytest_plugins = ["tests.email.mailfixtures"]

CONTROL = "Colin Control <colin@example.org>"



def assert_only_the_control_is_acknowledged(mailbox, dovecot, settings, smtp_server,
                                            earlier: tuple = (), **changes):
    """A normal mail from someone else, fetched after the one under test: its acknowledgement
    arrives, and besides the earlier mails (their recipients) it is the only mail the SMTP
    server got, though the worker was running all along."""
    append(dovecot, build_mail(CONTROL, "An ordinary question"))
    fetch(mailbox, settings, **changes)
    smtp_server.wait_for(len(earlier) + 1)
    wait_for_state(acknowledgements()[-1].id, "sent")
    assert [m["To"].addresses[0].addr_spec for m in smtp_server.messages] == [
        *earlier, "colin@example.org"]


def test_new_mail_gets_exactly_one_acknowledgement_with_reference_and_response_time(
        mailbox, dovecot, settings, smtp_server, worker):
    Brand.update(response_time="within 4 hours").execute()
    append(dovecot, build_mail(subject="Where is my parcel?"))

    fetch(mailbox, settings)

    ticket = Ticket.get()
    ack = smtp_server.wait_for(1)[0]
    wait_for_state(acknowledgements(ticket)[0].id, "sent")
    assert len(smtp_server.messages) == 1 and len(acknowledgements()) == 1
    assert ack["To"].addresses[0].addr_spec == CUSTOMER
    assert ack["From"].addresses[0].addr_spec == "support@example.test"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert f"[#{ticket.id}]" in ack["Subject"]
    text = ack.get_body(("plain",)).get_content()
    assert f"#{ticket.id}" in text and "within 4 hours" in text
    assert ack["In-Reply-To"] == incoming()[0].message_id  # threads in the customer's mail program


AUTOMATIC = {
    "Auto-Submitted: auto-replied": {"headers": {"Auto-Submitted": "auto-replied"}},
    "Auto-Submitted: auto-generated": {"headers": {"Auto-Submitted": "auto-generated"}},
    "Precedence: bulk": {"headers": {"Precedence": "bulk"}},
    "Precedence: junk": {"headers": {"Precedence": "junk"}},
    "Precedence: list": {"headers": {"Precedence": "list"}},
    "List-Id": {"headers": {"List-Id": "Outdoor news <news.example.org>"}},
    "From MAILER-DAEMON": {"sender": "Mail Delivery System <MAILER-DAEMON@mx.example.org>"},
    "Return-Path <>": {"headers": {"Return-Path": "<>"}},
    "X-Autoreply": {"headers": {"X-Autoreply": "yes"}},
    "X-Autorespond": {"headers": {"X-Autorespond": "Out of office"}},
    "X-Auto-Response-Suppress": {"headers": {"X-Auto-Response-Suppress": "All"}},
    "from our own address": {"sender": "Acme Outdoor <support@example.test>"},
}


@pytest.mark.parametrize("case", AUTOMATIC.values(), ids=AUTOMATIC.keys())
def test_automatic_list_and_own_mail_gets_no_acknowledgement(case, mailbox, dovecot, settings,
                                                             smtp_server, worker):
    append(dovecot, build_mail(**{"subject": "Something automatic", **case}))

    fetch(mailbox, settings)

    ticket = Ticket.get(Ticket.subject == "Something automatic")  # the mail is kept all the same
    assert acknowledgements(ticket) == []
    assert_only_the_control_is_acknowledged(mailbox, dovecot, settings, smtp_server)


def test_auto_submitted_no_is_a_person_and_is_acknowledged(mailbox, dovecot, settings, smtp_server,
                                                           worker):
    append(dovecot, build_mail(headers={"Auto-Submitted": "no"}))

    fetch(mailbox, settings)

    assert smtp_server.wait_for(1)[0]["To"].addresses[0].addr_spec == CUSTOMER


def test_second_new_mail_within_the_quiet_hours_gets_no_second_acknowledgement(
        mailbox, dovecot, settings, smtp_server, worker):
    append(dovecot, build_mail(subject="First question"))
    fetch(mailbox, settings)
    smtp_server.wait_for(1)
    append(dovecot, build_mail(subject="Second question, unrelated"))

    fetch(mailbox, settings, ack_quiet_hours=4)

    assert len(tickets_from(CUSTOMER)) == 2
    assert len(acknowledgements()) == 1
    assert_only_the_control_is_acknowledged(mailbox, dovecot, settings, smtp_server, (CUSTOMER,))


def test_after_the_quiet_hours_a_new_mail_is_acknowledged_again(mailbox, dovecot, settings,
                                                                smtp_server, worker):
    append(dovecot, build_mail(subject="First question"))
    fetch(mailbox, settings)
    append(dovecot, build_mail(subject="Second question"))

    fetch(mailbox, settings, ack_quiet_hours=0)

    smtp_server.wait_for(2)
    assert len(sent_to(smtp_server, CUSTOMER)) == 2


def test_brand_with_acknowledgements_off_sends_none(mailbox, dovecot, settings, worker):
    Brand.update(ack_enabled=False).execute()
    append(dovecot, build_mail())

    fetch(mailbox, settings)

    assert Ticket.select().count() == 1 and acknowledgements() == []


def test_the_brands_own_acknowledgement_text_is_used(mailbox, dovecot, settings, smtp_server,
                                                     worker):
    Brand.update(ack_template="Hi {{ name }}! Ticket {{ reference }} about “{{ subject }}” is "
                              "with us; expect an answer {{ response_time }}.",
                 response_time="by tomorrow noon").execute()
    append(dovecot, build_mail("Maria Lopez <maria@example.org>", "Broken zip"))

    fetch(mailbox, settings)

    ticket = Ticket.get()
    text = smtp_server.wait_for(1)[0].get_body(("plain",)).get_content()
    assert (f"Hi Maria Lopez! Ticket #{ticket.id} about “Broken zip” is with us; expect an answer "
            "by tomorrow noon.") in text


def test_another_helpdesks_acknowledgement_of_ours_is_not_acknowledged(
        mailbox, dovecot, settings, smtp_server, worker):
    # Two helpdesks: ours acknowledges a mail; the other side's automatic answer arrives from
    # its own address. Played here by our acknowledgement itself, as the SMTP server got it,
    # sent back to us from the other helpdesk's address.
    append(dovecot, build_mail())
    fetch(mailbox, settings)
    ours = smtp_server.wait_for(1)[0]
    echo = email.message_from_bytes(smtp_server.envelopes[0].content, policy=email.policy.default)
    for name, value in (("From", "Other Desk <desk@other-helpdesk.example.test>"),
                        ("To", "support@example.test"),
                        ("Message-ID", "<echo-1@other-helpdesk.example.test>")):
        del echo[name]
        echo[name] = value
    assert echo["Auto-Submitted"] == ours["Auto-Submitted"] == "auto-replied"
    append(dovecot, echo.as_bytes(policy=email.policy.SMTP))

    fetch(mailbox, settings, ack_quiet_hours=0)

    desk = tickets_from("desk@other-helpdesk.example.test")
    assert len(desk) == 1  # kept, on a ticket of its own (the other helpdesk is not our customer)
    assert acknowledgements(desk[0]) == []
    assert_only_the_control_is_acknowledged(mailbox, dovecot, settings, smtp_server, (CUSTOMER,),
                                            ack_quiet_hours=0)


def test_customers_out_of_office_reply_to_our_answer_gets_no_acknowledgement(
        replied, mailbox, dovecot, settings, smtp_server):
    ticket, _, sent = replied
    mails_before = len(smtp_server.messages)
    append(dovecot, build_mail(subject=f"Automatic reply: {sent['Subject']}",
                               body="I am away until Monday.",
                               headers={"Auto-Submitted": "auto-replied",
                                        "X-Auto-Response-Suppress": "All"}))

    fetch(mailbox, settings, ack_quiet_hours=0)

    away = incoming()[-1]
    assert away.body_text.startswith("I am away") and away.ticket_id == ticket.id
    assert len(acknowledgements()) == 1  # the one for the first mail
    assert_only_the_control_is_acknowledged(mailbox, dovecot, settings, smtp_server,
                                            (CUSTOMER,) * mails_before)


def test_out_of_office_reply_joins_a_resolved_ticket_without_reopening_it(
        replied, mailbox, dovecot, settings, smtp_server, agent):
    from app.models import Ticket
    from app.services import tickets

    ticket, _, sent = replied
    tickets.change_status(ticket.id, "resolved", agent)
    append(dovecot, build_mail(subject=f"Automatic reply: {sent['Subject']}",
                               body="I am away until Monday.",
                               headers={"Auto-Submitted": "auto-replied"}))

    fetch(mailbox, settings, ack_quiet_hours=0)

    assert incoming()[-1].ticket_id == ticket.id
    assert Ticket.get_by_id(ticket.id).status == "resolved"
