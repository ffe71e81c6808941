"""Ticket rules: statuses, reopening by the customer, auto-close, assignment, history."""
from datetime import timedelta

import pytest

from app.intake import Incoming, receive
from app.models import Ticket, TicketTally, utcnow
from app.services import tickets
from tests.helpers import post_form
from tests.test_queue import make_ticket


def _customer_writes_again(ticket: Ticket, ref: str):
    return receive(Incoming(channel="form", brand=ticket.brand, sender_email=ticket.customer.email,
                            sender_name="", subject="again", text="Any news?", channel_ref=ref,
                            ticket_id=ticket.id), "test-secret-key")


def test_new_ticket_starts_new_unassigned_and_waiting(brand):
    ticket = make_ticket(brand)
    assert ticket.status == "new" and ticket.assignee is None and ticket.waiting_since is not None


def test_agent_cannot_set_an_unknown_status_or_back_to_new(brand, agent):
    ticket = make_ticket(brand)
    for status in ("new", "deleted", ""):
        with pytest.raises(tickets.TicketError):
            tickets.change_status(ticket.id, status, agent)
    assert Ticket.get_by_id(ticket.id).status == "new"


@pytest.mark.parametrize("status", ["pending", "resolved", "closed"])
def test_customer_message_reopens_a_waiting_or_finished_ticket(brand, agent, status):
    ticket = make_ticket(brand)
    tickets.change_status(ticket.id, status, agent)
    _customer_writes_again(ticket, f"again:{status}")
    reopened = Ticket.get_by_id(ticket.id)
    assert reopened.status == "open" and reopened.resolved_at is None


@pytest.mark.parametrize("status", ["spam", "open"])
def test_customer_message_leaves_spam_and_open_as_they_are(brand, agent, status):
    ticket = make_ticket(brand)
    tickets.change_status(ticket.id, status, agent)
    _customer_writes_again(ticket, f"again:{status}")
    assert Ticket.get_by_id(ticket.id).status == status


def test_same_channel_item_received_twice_is_stored_once(brand):
    incoming = Incoming(channel="form", brand=brand, sender_email="a@example.org", sender_name="A",
                        subject="Once", text="Only once", channel_ref="form:abc")
    first = receive(incoming, "k")
    second = receive(incoming, "k")
    assert second.duplicate and second.ticket.id == first.ticket.id
    assert Ticket.select().count() == 1


def test_reply_ends_the_wait_and_moves_a_new_ticket_to_open(brand, agent, smtp_server):
    ticket = make_ticket(brand)
    tickets.reply(ticket.id, "Hello", agent, "k")
    answered = Ticket.get_by_id(ticket.id)
    assert answered.status == "open" and answered.waiting_since is None


def test_resolved_tickets_close_after_the_configured_days(brand, agent):
    old = make_ticket(brand)
    recent = make_ticket(brand)
    for ticket in (old, recent):
        tickets.change_status(ticket.id, "resolved", agent)
    Ticket.update(resolved_at=utcnow() - timedelta(days=8)).where(Ticket.id == old.id).execute()
    assert tickets.auto_close(days=7) == 1
    assert Ticket.get_by_id(old.id).status == "closed"
    assert Ticket.get_by_id(recent.id).status == "resolved"


def test_tallies_follow_every_change(brand, agent, admin):
    ticket = make_ticket(brand)
    tickets.assign(ticket.id, agent.id, admin)
    tickets.change_status(ticket.id, "pending", agent)
    tickets.assign(ticket.id, None, agent)
    rows = {(r.status, r.assignee_id): r.count for r in TicketTally.select() if r.count}
    assert rows == {("pending", 0): 1}


def test_status_and_assignee_change_in_place_and_show_in_history(agent_client, brand, agent, admin):
    ticket = make_ticket(brand)
    page = f"/tickets/{ticket.id}"
    post_form(agent_client, f"{page}/assignee", {"assignee": "me"}, page=page)
    post_form(agent_client, f"{page}/status", {"status": "pending"}, page=page)
    post_form(agent_client, f"{page}/assignee", {"assignee": str(admin.id)}, page=page)
    stored = Ticket.get_by_id(ticket.id)
    assert stored.status == "pending" and stored.assignee_id == admin.id
    history = agent_client.get(page).text.split('class="history"')[1]
    assert "created the ticket by form" in history
    assert "assigned it to Sam Support" in history
    assert "changed the status from new to pending" in history
    assert "assigned it to Ada Admin" in history
    assert history.count("Sam Support") >= 2  # who did it


def test_assigning_to_a_deactivated_agent_is_refused(agent_client, brand, admin):
    from app.services import agents

    ticket = make_ticket(brand)
    gone = agents.create_agent("gone@example.com", "Gone", "password123")
    agents.update_agent(gone.id, name="Gone", email=gone.email, role="agent", active=False, by=admin)
    page = f"/tickets/{ticket.id}"
    response = post_form(agent_client, f"{page}/assignee", {"assignee": str(gone.id)}, page=page)
    assert response.status_code == 400 and "deactivated" in response.text


def test_a_deactivated_assignee_stays_shown_and_kept_until_someone_reassigns(agent_client, brand,
                                                                           agent, admin):
    from app.services import agents

    ticket = make_ticket(brand)
    gone = agents.create_agent("gone@example.com", "Gone", "password123")
    tickets.assign(ticket.id, gone.id, admin)
    agents.update_agent(gone.id, name="Gone", email=gone.email, role="agent", active=False, by=admin)
    page = f"/tickets/{ticket.id}"
    assert f'<option value="{gone.id}" selected>Gone (deactivated)</option>' in (
        agent_client.get(page).text)
    # The assignee form sent as it stands (without JavaScript, "Assign") changes nothing.
    response = post_form(agent_client, f"{page}/assignee", {"assignee": str(gone.id)}, page=page)
    assert response.status_code == 200 and Ticket.get_by_id(ticket.id).assignee_id == gone.id
    post_form(agent_client, f"{page}/assignee", {"assignee": "me"}, page=page)
    assert Ticket.get_by_id(ticket.id).assignee_id == agent.id
    assert "(deactivated)" not in agent_client.get(page).text


def test_internal_note_is_stored_but_not_mailed(agent_client, brand, smtp_server):
    ticket = make_ticket(brand)
    page = f"/tickets/{ticket.id}"
    post_form(agent_client, f"{page}/reply", {"text": "Customer is a VIP", "kind": "note"}, page=page)
    assert "Customer is a VIP" in agent_client.get(page).text
    assert not any("VIP" in m.as_string() for m in smtp_server.messages)


def test_get_requests_change_nothing(agent_client, brand):
    ticket = make_ticket(brand)
    for path in (f"/tickets/{ticket.id}/status?status=closed", f"/tickets/{ticket.id}/reply?text=x"):
        assert agent_client.get(path).status_code == 405
    assert Ticket.get_by_id(ticket.id).status == "new"


def test_unknown_ticket_is_a_plain_404(agent_client):
    response = agent_client.get("/tickets/999999")
    assert response.status_code == 404 and "There is no ticket #999999." in response.text
    assert "Back to the queue" in response.text
    # An id longer than any the database holds is no ticket either, not a server error.
    assert agent_client.get("/tickets/99999999999999999999").status_code == 404


def test_numbers_in_links_that_are_not_plain_digits_are_ignored(agent_client, brand):
    ticket = make_ticket(brand)
    # "²" is a digit to str.isdigit() but not to int().
    assert agent_client.get(f"/tickets/{ticket.id}?images=%C2%B2").status_code == 200
    assert agent_client.get("/?form=%C2%B2").status_code == 200
    queue = agent_client.get("/?before=2026-01-01T00:00:00,99999999999999999999999")
    assert queue.status_code == 200 and f"ticket-{ticket.id}" in queue.text  # the first page


def test_an_error_htmx_asks_for_comes_as_the_partial_it_swaps_in(agent_client, brand):
    ticket = make_ticket(brand)
    missing = agent_client.get("/tickets/999999", headers={"HX-Request": "true"})
    assert missing.status_code == 404 and "There is no ticket #999999." in missing.text
    assert "<html" not in missing.text
    expired = agent_client.post(f"/tickets/{ticket.id}/status", data={"status": "open"},
                                headers={"HX-Request": "true"})  # without its CSRF token
    assert expired.status_code == 403 and "This form has expired" in expired.text
    assert "<html" not in expired.text
    assert "<html" in agent_client.get("/tickets/999999").text  # the whole page otherwise
