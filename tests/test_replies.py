"""Agents' replies go out by SMTP: stored first, sent by the worker, threaded, never lost or doubled."""
import re

from app.models import Message, Ticket
from app.services import tickets
from tests.conftest import wait_for_state
from tests.helpers import post_form, wait_until


def _form_ticket(client, brand, subject="Where is my parcel?") -> Ticket:
    response = post_form(client, f"/contact/{brand.slug}", {
        "name": "Maria Lopez", "email": "maria@example.org", "subject": subject,
        "message": "It has not arrived yet.",
    })
    assert response.status_code == 200, response.text
    reference = re.search(r'class="ticket-ref">#(\d+)<', response.text).group(1)
    return Ticket.get_by_id(int(reference))


def test_reply_is_sent_as_multipart_mail_threaded_to_the_ticket(agent_client, brand, smtp_server):
    ticket = _form_ticket(agent_client, brand)
    confirmation = smtp_server.wait_for(1)[0]

    response = post_form(agent_client, f"/tickets/{ticket.id}/reply",
                         {"text": "Your parcel left yesterday.\n\nTracking: ZX123", "then": ""},
                         page=f"/tickets/{ticket.id}", follow_redirects=False)
    assert response.status_code == 303

    mails = smtp_server.wait_for(2)
    reply = mails[1]
    assert reply["To"].addresses[0].addr_spec == "maria@example.org"
    assert reply["From"].addresses[0].addr_spec == "support@acme.example"
    assert reply["From"].addresses[0].display_name == "Acme Outdoor"
    assert f"[#{ticket.id}]" in reply["Subject"]
    assert reply["Message-ID"].startswith(f"<hd.{ticket.id}.")
    assert reply["In-Reply-To"] == confirmation["Message-ID"]
    assert confirmation["Message-ID"] in reply["References"]
    text = reply.get_body(("plain",)).get_content()
    html = reply.get_body(("html",)).get_content()
    assert "Tracking: ZX123" in text and "Acme care team" in text
    assert "Tracking: ZX123" in html
    stored = Message.get(Message.message_id == reply["Message-ID"])
    wait_for_state(stored.id, "sent")


def test_reply_shows_queued_then_sent_on_the_ticket(agent_client, brand, smtp_server, agent):
    ticket = _form_ticket(agent_client, brand)
    smtp_server.wait_for(1)
    message = tickets.reply(ticket.id, "On its way.", agent, "test-secret-key")
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "On its way." in page
    wait_for_state(message.id, "sent")
    fragment = agent_client.get(f"/tickets/{ticket.id}/messages/{message.id}").text
    assert 'class="badge sent"' in fragment


def test_send_and_resolve_sets_the_status_in_the_same_action(agent_client, brand, smtp_server):
    ticket = _form_ticket(agent_client, brand)
    post_form(agent_client, f"/tickets/{ticket.id}/reply", {"text": "Done.", "then": "resolved"},
              page=f"/tickets/{ticket.id}")
    assert Ticket.get_by_id(ticket.id).status == "resolved"
    smtp_server.wait_for(2)


def test_send_and_set_pending(agent_client, brand, smtp_server):
    ticket = _form_ticket(agent_client, brand)
    post_form(agent_client, f"/tickets/{ticket.id}/reply", {"text": "Which size?", "then": "pending"},
              page=f"/tickets/{ticket.id}")
    assert Ticket.get_by_id(ticket.id).status == "pending"


def test_empty_reply_is_refused_with_a_message(agent_client, brand, smtp_server):
    ticket = _form_ticket(agent_client, brand)
    response = post_form(agent_client, f"/tickets/{ticket.id}/reply", {"text": "   "},
                         page=f"/tickets/{ticket.id}")
    assert response.status_code == 400
    assert "The reply is empty." in response.text


def test_smtp_outage_then_recovery_sends_the_reply_exactly_once(agent_client, brand, smtp_server, agent):
    ticket = _form_ticket(agent_client, brand)
    smtp_server.wait_for(1)
    smtp_server.stop()

    message = tickets.reply(ticket.id, "Sent during an outage.", agent, "test-secret-key")
    wait_until(lambda: Message.get_by_id(message.id).attempts >= 1, 10)
    stored = Message.get_by_id(message.id)
    assert stored.state in ("queued", "sending")
    assert "refused" in stored.error
    assert "refused" in agent_client.get(f"/tickets/{ticket.id}").text

    smtp_server.start()
    wait_for_state(message.id, "sent", timeout=15)
    replies = [m for m in smtp_server.messages if "Sent during an outage." in m.get_body(("plain",)).get_content()]
    assert len(replies) == 1


def test_failed_message_shows_the_reason_and_can_be_sent_again(agent_client, brand, smtp_server, agent, settings):
    ticket = _form_ticket(agent_client, brand)
    smtp_server.wait_for(1)
    smtp_server.stop()
    message = tickets.reply(ticket.id, "Will fail first.", agent, "test-secret-key")
    failed = wait_for_state(message.id, "failed", timeout=20)
    assert failed.attempts == settings.smtp_max_attempts
    page = agent_client.get(f"/tickets/{ticket.id}").text
    assert "failed" in page and "Send again" in page

    smtp_server.start()
    response = post_form(agent_client, f"/messages/{message.id}/retry", {}, page=f"/tickets/{ticket.id}")
    assert response.status_code == 200
    wait_for_state(message.id, "sent")
    assert sum("Will fail first." in m.get_body(("plain",)).get_content() for m in smtp_server.messages) == 1


def test_a_reply_that_cannot_be_sent_brings_its_resolved_ticket_back(agent_client, brand,
                                                                    auth_smtp, agent):
    brand.smtp_port, brand.smtp_username, brand.smtp_password = auth_smtp.port, "books", "wrong"
    brand.save()
    ticket = _form_ticket(agent_client, brand)
    message = tickets.reply(ticket.id, "Solved!", agent, "test-secret-key", then_status="resolved")
    assert Ticket.get_by_id(ticket.id).status == "resolved"
    wait_for_state(message.id, "failed")
    # The customer has no answer: the ticket is active again, and its history says why.
    assert wait_until(lambda: Ticket.get_by_id(ticket.id).status == "open", 5)
    assert f"ticket-{ticket.id}" in agent_client.get("/").text
    assert "a reply could not be sent" in agent_client.get(f"/tickets/{ticket.id}").text


def test_wrong_smtp_password_fails_at_once_with_the_servers_answer(agent_client, brand, auth_smtp, agent):
    brand.smtp_port, brand.smtp_username, brand.smtp_password = auth_smtp.port, "books", "wrong"
    brand.save()
    ticket = _form_ticket(agent_client, brand)
    message = tickets.reply(ticket.id, "Hello", agent, "test-secret-key")
    failed = wait_for_state(message.id, "failed")
    assert failed.attempts == 1  # retrying cannot fix a wrong password
    assert "refused the user name or password" in failed.error and "535" in failed.error
    assert auth_smtp.messages == []
