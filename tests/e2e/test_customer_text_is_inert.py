"""Customer-written HTML is shown as text, never run, on the live queue and the ticket page;
and the pages run under their Content-Security-Policy without violating it."""
import re

import pytest

from app.models import Ticket
from tests.e2e.conftest import fill_contact_form, log_in, wait_for_live_queue

pytestmark = pytest.mark.e2e
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed").expect

SUBJECT = '<img src=x onerror="window.__pwned=1"> <b hx-get="/logout" hx-trigger="load">x</b>'
MESSAGE = ('Hello <script>window.__pwned=2</script>\n'
           '<a href="/logout" hx-post="/logout" hx-trigger="load">click</a>')


def _logout_requests(tab) -> list:
    return [(method, url) for method, url in tab.requests if "/logout" in url]


def test_customer_html_is_shown_as_text_and_never_runs(open_tab, brand, agent, smtp_server):
    desk = open_tab()
    log_in(desk, agent.email)
    queue = desk.page
    wait_for_live_queue(desk)
    marker = desk.set_marker()

    visitor = open_tab()
    visitor.page.goto(f"/contact/{brand.slug}")
    fill_contact_form(visitor.page, name='Eve <i hx-get="/logout" hx-trigger="load">E</i>',
                      email="eve@example.org", subject=SUBJECT, message=MESSAGE)
    visitor.page.get_by_role("button", name="Send").click()
    expect(visitor.page.get_by_role("heading", name="Thank you")).to_be_visible()
    ticket_id = int(visitor.page.locator(".ticket-ref").inner_text().lstrip("#"))
    assert Ticket.get_by_id(ticket_id).subject == SUBJECT

    # The live row shows the subject as the customer typed it, as text.
    row = queue.locator(f"#ticket-{ticket_id}")
    expect(row.locator("a.subject")).to_have_text(f"#{ticket_id} {SUBJECT}")
    expect(row.locator(".customer")).to_have_text('Eve <i hx-get="/logout" hx-trigger="load">E</i>')
    expect(row.locator("img, b, i, script")).to_have_count(0)
    assert queue.evaluate("typeof window.__pwned") == "undefined"
    assert desk.marker() == marker
    expect(queue.get_by_role("button", name="Log out")).to_be_visible()
    assert desk.csp_errors() == [], desk.console

    # The ticket page, loaded as a whole.
    row.locator("a.subject").click()
    page = desk.page
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}$"))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(f"#{ticket_id} {SUBJECT}")
    expect(heading.locator("img, b")).to_have_count(0)
    incoming = page.locator("li.message.incoming")
    expect(incoming.locator(".body")).to_contain_text("Hello <script>window.__pwned=2</script>")
    expect(incoming.locator(".body")).to_contain_text('<a href="/logout"')
    expect(incoming.locator("script, a, i")).to_have_count(0)
    expect(page.locator(".facts")).to_contain_text('Eve <i hx-get="/logout"')
    expect(page).to_have_title(re.compile(re.escape(SUBJECT)))
    # The page stays as it is for a moment longer than htmx needs to act on "load" triggers.
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    assert _logout_requests(desk) == []
    assert desk.csp_errors() == [], desk.console
    assert visitor.csp_errors() == [], visitor.console
