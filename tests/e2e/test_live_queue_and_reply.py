"""A visitor writes in; the agent sees it arrive live, opens it, answers, and the mail goes out."""
import re

import pytest

from app.models import Ticket
from tests.e2e.conftest import fill_contact_form, log_in, wait_for_live_queue

pytestmark = pytest.mark.e2e
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed").expect


def test_contact_form_ticket_appears_live_and_the_reply_is_mailed(open_tab, brand, agent,
                                                                   smtp_server):
    desk = open_tab()
    log_in(desk, agent.email)
    queue = desk.page
    expect(queue.locator("#queue-rows > li")).to_have_count(0)
    expect(queue.get_by_text("No tickets here.")).to_be_visible()
    wait_for_live_queue(desk)
    marker = desk.set_marker()

    visitor = open_tab()
    form = visitor.page
    form.goto(f"/contact/{brand.slug}")
    fill_contact_form(form, name="Maria Lopez", email="maria@example.org",
                      subject="Where is my parcel?", message="I ordered a tent last week.\n\nOrder 4711.")
    form.get_by_role("button", name="Send").click()
    expect(form.get_by_role("heading", name="Thank you")).to_be_visible()
    reference = form.locator(".ticket-ref").inner_text()
    assert re.fullmatch(r"#\d+", reference), reference
    ticket_id = int(reference[1:])

    # The row arrives in the agent's open queue by itself, without the page loading again.
    row = queue.locator(f"#ticket-{ticket_id}")
    expect(row).to_be_visible()
    expect(row.locator("a.subject")).to_have_text(f"{reference} Where is my parcel?")
    expect(row.locator(".customer")).to_have_text("Maria Lopez")
    expect(row.locator(".badge")).to_have_text("new")
    expect(queue.get_by_text("No tickets here.")).to_be_hidden()
    assert desk.marker() == marker, "the queue page was reloaded instead of updated live"

    # The confirmation mail went out first; the reply must be threaded to it.
    confirmation = smtp_server.wait_for(1, timeout=20)[0]
    assert f"[#{ticket_id}]" in confirmation["Subject"]

    row.locator("a.subject").click()
    ticket_page = desk.page
    expect(ticket_page).to_have_url(re.compile(rf"/tickets/{ticket_id}$"))
    expect(ticket_page.get_by_role("heading", level=1)).to_have_text(
        f"{reference} Where is my parcel?")
    expect(ticket_page.get_by_text("Order 4711.")).to_be_visible()

    ticket_page.get_by_label("Reply to Maria Lopez").fill(
        "Your tent left our warehouse yesterday.\n\nTracking: ZX123")
    ticket_page.get_by_role("button", name="Send", exact=True).click()

    reply_item = ticket_page.locator("li.message.outgoing").filter(has_text="Tracking: ZX123")
    expect(reply_item).to_be_visible()
    expect(ticket_page.get_by_label("Reply to Maria Lopez")).to_have_value("")
    # Queued first; the page asks for the message again every 2 s until it is sent.
    expect(reply_item.locator(".badge")).to_have_text("sent", timeout=20_000)

    mails = smtp_server.wait_for(2, timeout=20)
    replies = [m for m in mails if "ZX123" in m.get_body(("plain",)).get_content()]
    assert len(replies) == 1, [m["Subject"] for m in mails]
    reply = replies[0]
    assert reply["To"].addresses[0].addr_spec == "maria@example.org"
    assert f"[#{ticket_id}]" in reply["Subject"]
    assert reply["In-Reply-To"] == confirmation["Message-ID"]
    assert confirmation["Message-ID"] in reply["References"].split()
    assert "Tracking: ZX123" in reply.get_body(("plain",)).get_content()
    assert "Tracking: ZX123" in reply.get_body(("html",)).get_content()
    assert Ticket.get_by_id(ticket_id).subject == "Where is my parcel?"

    assert desk.csp_errors() == [] and visitor.csp_errors() == []
