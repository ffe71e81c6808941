"""An admin builds a contact form with its live preview; a visitor without JavaScript sends it
(errors first, then a ticket); the agent sees its fields and filters the queue by them. And the
form on other sites: the plain HTML snippet posting across sites, the iframe framed only where
the brand allows."""
import re

import pytest

from app.intake import receive
from app.models import Form, Ticket
from app.services import brands as brand_service
from app.services import forms
from tests.e2e.conftest import OtherSite, log_in, wait_for_live_queue
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed").expect


@pytest.fixture
def settings(settings):
    # The minimum fill time is tested in tests/test_forms.py; a browser driven by a test fills
    # a form faster than any person.
    return settings.with_changes(form_min_fill_seconds=0)


@pytest.fixture
def other_site():
    # "localhost" is another site than the helpdesk's 127.0.0.1, not only another origin.
    site = OtherSite(host="localhost").start()
    yield site
    site.stop()


def _returns_form(brand) -> Form:
    fields = [{**forms.blank_field("choice"), "label": "Topic", "required": True,
               "options": ["Refund", "Exchange"]},
              {**forms.blank_field("order"), "label": "Order number", "pattern": "digits"}]
    return forms.save_form(None, brand.id, {"name": "Returns", "active": True}, fields)


def _submitted(form, topic: str, email: str) -> Ticket:
    submission = forms.Submission(values={"name": "Tom Becker", "email": email, "topic": topic,
                                          "order_number": "1", "message": f"About {topic}"})
    return receive(forms.incoming(form, submission, []), "test-secret-key").ticket


def test_admin_builds_a_form_a_visitor_sends_it_without_javascript_and_the_queue_filters_by_it(
        open_tab, admin, brand, smtp_server):
    desk = open_tab()
    log_in(desk, admin.email)
    editor = desk.page
    editor.get_by_role("link", name="Forms").click()
    editor.get_by_role("link", name="New form").click()
    editor.get_by_label("Form name").fill("Returns")
    editor.get_by_label("New field").select_option("Choice list")
    editor.get_by_role("button", name="Add field").click()
    expect(editor.get_by_role("status")).to_have_text(re.compile("Not saved yet"))

    # The live preview follows the typing, without the page loading again.
    marker = desk.set_marker()
    topic = editor.get_by_role("group", name=re.compile(r"^Field 1"))
    topic.get_by_label("Label", exact=True).fill("Topic")
    topic.get_by_label("Options, one per line").fill("Refund\nExchange")
    topic.get_by_label("Required").check()
    preview = editor.locator("#form-preview")
    expect(preview.get_by_label("Topic")).to_be_visible()
    expect(preview.get_by_label("Topic").locator("option")).to_have_text(["Choose…", "Refund", "Exchange"])
    expect(preview.get_by_text("(optional)")).to_have_count(0)
    assert desk.marker() == marker

    editor.get_by_label("New field").select_option("Order number")
    editor.get_by_role("button", name="Add field").click()
    order = editor.get_by_role("group", name=re.compile(r"^Field 2"))
    order.get_by_label("Label", exact=True).fill("Order number")
    order.get_by_label("Allowed").select_option("Digits only")
    order.get_by_label("Required").check()
    expect(preview.get_by_label("Order number")).to_have_attribute("pattern", "[0-9]+")
    editor.get_by_role("button", name="Save").first.click()
    expect(editor.get_by_role("status")).to_have_text("Saved.")
    form = Form.get(Form.name == "Returns")
    expect(editor.locator("#snippet-html")).to_have_value(re.compile(r'name="field-topic"'))
    assert desk.csp_errors() == []

    visitor = open_tab(javascript=False)
    page = visitor.page
    page.goto(f"/forms/{brand.slug}/{form.slug}")
    expect(page.locator(".brand-name")).to_have_text("Acme Outdoor")
    page.get_by_label("Your name").fill("Maria Lopez")
    page.get_by_label("Your email").fill("maria@example.org")
    page.get_by_label("Order number").fill("55-21")
    page.get_by_label("Message").fill("The tent has a hole.")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("alert")).to_contain_text("Please correct the marked fields.")
    expect(page.locator("#f-field-topic-error")).to_have_text("Please choose one.")
    expect(page.locator("#f-field-order_number-error")).to_contain_text("Please use digits only")
    expect(page.get_by_label("Topic")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Your name")).to_have_value("Maria Lopez")
    expect(page.get_by_label("Order number")).to_have_value("55-21")
    expect(page.get_by_label("Message")).to_have_value("The tent has a hole.")
    assert Ticket.select().count() == 0

    page.get_by_label("Topic").select_option("Exchange")
    page.get_by_label("Order number").fill("5521")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    reference = page.locator(".ticket-ref").inner_text()
    ticket_id = int(reference.lstrip("#"))
    confirmation = smtp_server.wait_for(1, timeout=20)[0]
    assert confirmation["To"].addresses[0].addr_spec == "maria@example.org"
    assert f"[{reference}]" in confirmation["Subject"]

    editor.goto(f"/tickets/{ticket_id}")
    panel = editor.locator(".form-fields")
    expect(panel.get_by_role("heading")).to_have_text("Form: Returns")
    expect(panel.locator("dt")).to_have_text(["Topic", "Order number"])
    expect(panel.locator("dd")).to_have_text(["Exchange", "5521"])
    expect(editor.locator(".messages .body").first).to_have_text("The tent has a hole.")

    refund = _submitted(form, "Refund", "tom@example.org")
    editor.goto("/")
    editor.get_by_label("Form", exact=True).get_by_role("link", name="Returns · Acme Outdoor").click()
    rows = editor.locator("#queue-rows > li")
    expect(rows).to_have_count(2)
    editor.get_by_label("Topic").get_by_role("link", name="Topic: Exchange").click()
    expect(editor).to_have_url(re.compile(r"field=topic%3AExchange"))
    expect(rows).to_have_count(1)
    expect(editor.locator(f"#ticket-{ticket_id}")).to_be_visible()
    expect(editor.locator(f"#ticket-{refund.id}")).to_have_count(0)

    # Live: a new ticket with this answer joins the filtered queue, one with another does not.
    wait_for_live_queue(desk)
    marker = desk.set_marker()
    other_refund = _submitted(form, "Refund", "ann@example.org")
    exchange = _submitted(form, "Exchange", "lee@example.org")
    expect(editor.locator(f"#ticket-{exchange.id}")).to_be_visible()
    expect(editor.locator(f"#ticket-{other_refund.id}")).to_have_count(0)
    assert desk.marker() == marker
    assert desk.csp_errors() == []


def test_the_plain_html_snippet_posts_from_another_site_and_lands_on_the_thank_you_page(
        open_tab, live_server, brand, other_site, smtp_server):
    form = _returns_form(brand)
    snippet = forms.embed_snippet(form, live_server.url)
    other_site.pages["/returns"] = (f"<!doctype html><title>Acme shop</title><h1>Returns</h1>"
                                    f"{snippet}")
    visitor = open_tab(javascript=False)
    page = visitor.page
    page.goto(other_site.url("/returns"))
    page.get_by_label("Your name").fill("Maria Lopez")
    page.get_by_label("Your email").fill("maria@example.org")
    page.get_by_label("Topic").select_option("Refund")
    page.get_by_label("Order number").fill("5521")
    page.get_by_label("Message").fill("Please refund the tent.")
    with page.expect_request(re.compile(r"/forms/acme/returns$")) as posted:
        page.get_by_role("button", name="Send").click()
    assert posted.value.headers.get("origin") == other_site.url("")
    assert "csrftoken" not in (posted.value.post_data or "")

    # Our page: everything kept, one click to confirm (the snippet cannot carry our timestamp).
    expect(page).to_have_url(f"{live_server.url}/forms/acme/returns")
    expect(page.get_by_role("alert")).to_have_text(re.compile("press Send to confirm"))
    expect(page.get_by_label("Topic")).to_have_value("Refund")
    expect(page.get_by_label("Message")).to_have_value("Please refund the tent.")
    assert Ticket.select().count() == 0
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    ticket = Ticket.get_by_id(int(page.locator(".ticket-ref").inner_text().lstrip("#")))
    assert ticket.form_id == form.id
    assert {f.key: f.value for f in ticket.form_fields} == {"topic": "Refund", "order_number": "5521"}


def _wait_refused(tab, policy: str) -> None:
    """Waits until the browser reports that a frame was blocked by this frame-ancestors policy."""
    wait_until(lambda: any("violates" in text and f'"{policy}"' in text for _, text in tab.console),
               10, message=f"the browser did not block a frame by {policy}: {tab.console}")


def test_the_iframe_variant_is_frameable_only_by_the_brands_sites(open_tab, live_server, brand,
                                                                  other_site):
    _returns_form(brand)
    allowed = other_site.url("")
    brand_service.update_brand(brand.slug, {**{k: getattr(brand, k) for k in brand_service.FIELDS},
                                            "allowed_origins": allowed})
    frames = (f'<iframe id="embed" title="Returns form" src="{live_server.url}/forms/acme/returns/embed"></iframe>'
              f'<iframe id="page" title="Returns page" src="{live_server.url}/forms/acme/returns"></iframe>')
    other_site.pages["/frames"] = f"<!doctype html><title>Shop</title>{frames}"

    shop = open_tab()
    shop.page.goto(other_site.url("/frames"))
    embedded = shop.page.frame_locator("#embed")
    expect(embedded.get_by_role("heading", name="Returns")).to_be_visible()
    expect(embedded.get_by_label("Topic")).to_be_visible()
    # The form's own page is never framed.
    _wait_refused(shop, "frame-ancestors 'none'")
    expect(shop.page.frame_locator("#page").get_by_role("heading", name="Returns")).to_have_count(0)

    # A site the brand does not list (another origin: the same port under another name).
    stranger = open_tab()
    stranger.page.goto(f"http://127.0.0.1:{other_site.port}/frames")  # another origin
    _wait_refused(stranger, f"frame-ancestors {allowed}")
    expect(stranger.page.frame_locator("#embed").get_by_role("heading", name="Returns")).to_have_count(0)

    # Sending inside the frame works and the thank-you page stays in it.
    frame = shop.page.frame_locator("#embed")
    frame.get_by_label("Your name").fill("Maria Lopez")
    frame.get_by_label("Your email").fill("maria@example.org")
    frame.get_by_label("Topic").select_option("Exchange")
    frame.get_by_label("Message").fill("A bigger size, please.")
    frame.get_by_role("button", name="Send").click()
    expect(frame.get_by_role("heading", name="Thank you")).to_be_visible()
    expect(shop.page.get_by_role("heading", name="Thank you")).to_have_count(0)
