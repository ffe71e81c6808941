"""Status and assignee change in place on the ticket page, and other agents' queues follow live."""
import re

import pytest

from app.models import Ticket
from tests.e2e.conftest import log_in, wait_for_htmx_settled, wait_for_live_queue

pytestmark = pytest.mark.e2e
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed").expect


def test_status_and_assignee_change_in_place_and_reach_other_queues(open_tab, agent, admin,
                                                                    make_ticket, smtp_server):
    ticket = make_ticket("Wrong size delivered", name="Jonas Berg")

    # Ada watches the queue.
    watcher = open_tab()
    log_in(watcher, admin.email)
    queue = watcher.page
    row = queue.locator(f"#ticket-{ticket.id}")
    expect(row.locator(".badge")).to_have_text("new")
    expect(row.locator(".assignee")).to_have_text("—")
    wait_for_live_queue(watcher)
    queue_marker = watcher.set_marker()

    # Sam works on the ticket.
    worker = open_tab()
    log_in(worker, agent.email)
    page = worker.page
    page.goto(f"/tickets/{ticket.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"#{ticket.id} Wrong size delivered")
    expect(page.get_by_role("button", name="Assign to me")).to_be_visible()
    page_marker = worker.set_marker()

    status = page.get_by_label("Status")
    with page.expect_response(re.compile(rf"/tickets/{ticket.id}/status$")) as answer:
        status.select_option("open")
    assert answer.value.status == 200
    expect(status).to_have_value("open")
    expect(page.locator(".history")).to_contain_text("changed the status from new to open")
    expect(row.locator(".badge")).to_have_text("open")  # in Ada's queue
    wait_for_htmx_settled(page)

    assignee = page.get_by_label("Assignee")
    with page.expect_response(re.compile(rf"/tickets/{ticket.id}/assignee$")) as answer:
        assignee.select_option(label="Sam Support")
    assert answer.value.status == 200
    expect(assignee.locator("option:checked")).to_have_text("Sam Support")
    # The page itself was swapped in place: "Assign to me" is gone now that Sam has it.
    expect(page.get_by_role("button", name="Assign to me")).to_have_count(0)
    expect(page.locator(".history")).to_contain_text("assigned it to Sam Support")
    expect(row.locator(".assignee")).to_have_text("Sam Support")  # in Ada's queue

    assert worker.marker() == page_marker, "the ticket page was reloaded, not updated in place"
    assert watcher.marker() == queue_marker, "the queue was reloaded, not updated live"
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket.id}$"))
    expect(queue.locator("#queue-rows > li")).to_have_count(1)  # moved, not duplicated

    stored = Ticket.get_by_id(ticket.id)
    assert (stored.status, stored.assignee_id) == ("open", agent.id)
    assert worker.csp_errors() == [] and watcher.csp_errors() == []


def test_a_refused_action_says_why_in_place_and_history_follows_live(open_tab, agent, make_ticket,
                                                                     smtp_server):
    ticket = make_ticket("Refund please", name="Jonas Berg")
    tab = open_tab()
    log_in(tab, agent.email)
    page = tab.page
    page.goto(f"/tickets/{ticket.id}")
    marker = tab.set_marker()

    # An empty reply: the server refuses it (400), and the page says so where the reply was.
    with page.expect_response(re.compile(rf"/tickets/{ticket.id}/reply$")) as answer:
        page.get_by_role("button", name="Send", exact=True).click()
    assert answer.value.status == 400
    expect(page.locator("#ticket .error[role=alert]")).to_have_text("The reply is empty.")
    wait_for_htmx_settled(page)

    # A reply that goes: the history shows it queued at once, and sent once the worker has
    # sent it, without a reload.
    page.get_by_label("Reply to Jonas Berg").fill("Your refund is on its way.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#ticket .error")).to_have_count(0)
    expect(page.locator(".history")).to_contain_text("queued a reply")
    expect(page.locator(".history")).to_contain_text(f"sent a reply to {ticket.customer.email}")
    smtp_server.wait_for(2)  # the confirmation and the reply
    assert tab.marker() == marker, "the page was reloaded, not updated in place"
    assert tab.csp_errors() == []


def test_two_agents_on_one_ticket_see_each_others_changes(open_tab, agent, admin, make_ticket,
                                                          smtp_server):
    ticket = make_ticket("Broken zipper")
    pages = []
    for who in (admin, agent):
        tab = open_tab()
        log_in(tab, who.email)
        tab.page.goto(f"/tickets/{ticket.id}")
        tab.page.wait_for_function(
            "() => { const el = document.querySelector('[sse-connect]');"
            " const data = el && el['htmx-internal-data'];"
            " return !!(data && data.sseEventSource && data.sseEventSource.readyState === 1); }")
        pages.append(tab)
    ada, sam = pages
    sam_marker = sam.set_marker()

    ada.page.get_by_label("Status").select_option("pending")
    expect(sam.page.get_by_label("Status")).to_have_value("pending")
    wait_for_htmx_settled(ada.page)
    ada.page.get_by_role("button", name="Assign to me").click()
    expect(sam.page.get_by_label("Assignee").locator("option:checked")).to_have_text("Ada Admin")
    expect(sam.page.get_by_role("button", name="Assign to me")).to_be_visible()  # Sam may take it
    assert sam.marker() == sam_marker, "Sam's page was reloaded, not updated in place"

    # Sam's controls, swapped in by the stream, still work.
    wait_for_htmx_settled(sam.page)
    sam.page.get_by_role("button", name="Assign to me").click()
    expect(ada.page.get_by_label("Assignee").locator("option:checked")).to_have_text("Sam Support")
    assert Ticket.get_by_id(ticket.id).assignee_id == agent.id
    assert ada.csp_errors() == [] and sam.csp_errors() == []
