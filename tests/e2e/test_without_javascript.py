"""The contact form and the queue are plain HTML: both work with JavaScript switched off."""
import re

import pytest

from app.models import Ticket
from app.services import tickets
from tests.e2e.conftest import fill_contact_form, log_in

pytestmark = pytest.mark.e2e
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed").expect


def test_contact_form_without_javascript_shows_field_errors_then_accepts(open_tab, brand,
                                                                         smtp_server):
    visitor = open_tab(javascript=False)
    page = visitor.page
    page.goto(f"/contact/{brand.slug}")
    fill_contact_form(page, name="Maria Lopez", email="maria at example", subject="Broken zipper",
                      message="")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("alert")).to_have_text("Please correct the marked fields.")
    email_error = page.locator("#email-error")
    expect(email_error).to_be_visible()
    expect(email_error).to_contain_text("This email address does not look right")
    expect(page.locator("#message-error")).to_have_text("Please write your message.")
    expect(page.locator("#name-error")).to_have_count(0)
    expect(page.get_by_label("Your email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Message")).to_have_attribute("aria-invalid", "true")
    # Everything typed is still there.
    expect(page.get_by_label("Your name")).to_have_value("Maria Lopez")
    expect(page.get_by_label("Your email")).to_have_value("maria at example")
    expect(page.get_by_label("Subject")).to_have_value("Broken zipper")
    assert Ticket.select().count() == 0

    page.get_by_label("Your email").fill("maria@example.org")
    page.get_by_label("Message").fill("The zipper of my jacket broke after two days.")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    reference = page.locator(".ticket-ref").inner_text()
    assert re.fullmatch(r"#\d+", reference), reference
    expect(page.get_by_text("We sent a confirmation to maria@example.org")).to_be_visible()
    ticket = Ticket.get_by_id(int(reference[1:]))
    assert ticket.subject == "Broken zipper"
    assert ticket.customer.email == "maria@example.org"
    assert Ticket.select().count() == 1


def test_queue_without_javascript_lists_tickets_and_follows_filter_links(open_tab, agent,
                                                                         make_ticket,
                                                                         smtp_server):
    waiting = make_ticket("Where is my parcel?")
    done = make_ticket("Wrong size delivered")
    tickets.change_status(done.id, "resolved", agent)

    desk = open_tab(javascript=False)
    log_in(desk, agent.email)
    page = desk.page
    rows = page.locator("#queue-rows > li")
    expect(rows).to_have_count(1)
    expect(page.locator(f"#ticket-{waiting.id}")).to_contain_text("Where is my parcel?")
    expect(page.locator(f"#ticket-{done.id}")).to_have_count(0)
    expect(page.get_by_text("No tickets here.")).to_be_hidden()

    status = page.get_by_label("Status")
    status.get_by_role("link", name=re.compile(r"^All")).click()
    expect(page).to_have_url(re.compile(r"/\?status=all$"))
    expect(rows).to_have_count(2)
    expect(page.locator(f"#ticket-{done.id} .badge")).to_have_text("resolved")
    expect(status.get_by_role("link", name=re.compile(r"^All"))).to_have_attribute(
        "aria-current", "page")

    status.get_by_role("link", name=re.compile(r"^Closed")).click()
    expect(page).to_have_url(re.compile(r"/\?status=closed$"))
    expect(rows).to_have_count(0)
    expect(page.get_by_text("No tickets here.")).to_be_visible()

    # A row's link opens the ticket as a plain page.
    status.get_by_role("link", name=re.compile(r"^Active")).click()
    page.locator(f"#ticket-{waiting.id} a.subject").click()
    expect(page).to_have_url(re.compile(rf"/tickets/{waiting.id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"#{waiting.id} Where is my parcel?")
