"""The chat widget in a real browser, embedded by a page of another site (another origin):
a live chat both ways with typing, the offline message answered by email, reloads."""
import re

import pytest

from app.models import Message, Ticket
from app.services import brands
from tests.e2e.conftest import OtherSite, log_in, wait_for_live_queue

pytestmark = pytest.mark.e2e
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed").expect

# The shop's own styles try hard to reach into the widget; the widget's must not reach out.
HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Alpine Tents · Shop</title>
<style>
  button {{ background: rgb(255, 0, 0) !important; font-size: 40px; }}
  li, p, input, textarea {{ display: none; color: rgb(0, 255, 0); }}
</style></head>
<body>
  <h1>Alpine Tents</h1>
  <button type="button" id="buy">Buy</button>
  <a href="/checkout">Checkout</a>
  <script src="{helpdesk}/widget.js" data-brand="{slug}" async></script>
</body></html>"""


@pytest.fixture
def host_site(live_server, brand):
    # A shop's site whose every page carries the widget's script tag.
    site = OtherSite(any_page=HOST_PAGE.format(helpdesk=live_server.url, slug=brand.slug)).start()
    values = {name: getattr(brand, name) for name in brands.FIELDS}
    brands.update_brand(brand.slug, {**values, "allowed_origins": site.origin, "widget_color": "#1f7a4d"})
    yield site
    site.stop()


def widget(page):
    return page.locator("helpdesk-chat")


def start_chat(page, message: str):
    chat = widget(page)
    chat.get_by_role("button", name="Chat with us").click()
    chat.get_by_label("Your name").fill("Maria Lopez")
    chat.get_by_label("Your email").fill("maria@example.org")
    chat.get_by_label("How can we help?").fill(message)
    chat.get_by_role("button", name="Start chat").click()


def test_visitor_and_agent_chat_live_both_ways(open_tab, host_site, agent):
    desk = open_tab()
    log_in(desk, agent.email)  # an agent who is logged in is online
    wait_for_live_queue(desk)

    visitor = open_tab()
    shop = visitor.page
    shop.goto(host_site.origin)
    chat = widget(shop)
    start_chat(shop, "Do you ship to Norway?")
    messages = chat.locator("li")
    expect(messages).to_have_count(1)
    expect(messages.first).to_contain_text("Do you ship to Norway?")

    # The chat arrives in the agent's queue live, marked live, as a chat ticket.
    ticket = Ticket.get()
    row = desk.page.locator(f"#ticket-{ticket.id}")
    expect(row.locator(".badge.live")).to_have_text("live")
    expect(row.locator(".where")).to_contain_text("chat")
    row.locator("a.subject").click()
    agent_page = desk.page
    expect(agent_page.get_by_text("Your answer goes to the chat at once.")).to_be_visible()
    expect(agent_page.get_by_text(f"Written from {host_site.origin}/")).to_be_visible()
    wait_for_live_queue(desk)  # the ticket page's stream is open
    marker = desk.set_marker()

    # Visitor types, then writes: the agent sees both without reloading.
    box = chat.get_by_label("Write a message")
    box.fill("To Oslo")
    expect(agent_page.locator("#chat-typing")).to_have_text("Maria Lopez is typing…")
    box.fill("To Oslo, please. How long does it take?")
    box.press("Enter")
    expect(agent_page.locator("ol.messages li.incoming")).to_have_count(2)
    expect(agent_page.locator("ol.messages li.incoming").last).to_contain_text("How long does it take?")
    expect(agent_page.locator("#chat-typing")).to_have_text("")

    # The agent types, then answers from the ticket page: the visitor sees both.
    reply_box = agent_page.get_by_label("Reply to Maria Lopez")
    reply_box.fill("Yes")
    expect(chat.get_by_text("Sam Support is typing…")).to_be_visible()
    reply_box.fill("Yes: 4 to 6 working days to Oslo.")
    agent_page.get_by_role("button", name="Send", exact=True).click()
    expect(messages).to_have_count(3)
    expect(messages.last).to_contain_text("Sam Support")
    expect(messages.last).to_contain_text("Yes: 4 to 6 working days to Oslo.")
    expect(chat.get_by_text("Sam Support is typing…")).to_be_hidden()
    answer = agent_page.locator("ol.messages li.outgoing")
    expect(answer).to_have_count(1)  # the page's own reply and the stream's push are one
    expect(answer.locator(".badge")).to_have_text("in the chat")
    assert desk.marker() == marker, "the ticket page was reloaded instead of updated live"

    # A reload (or another page of the same site) keeps the conversation, and it stays live.
    shop.goto(f"{host_site.origin}/checkout")
    expect(messages).to_have_count(3)
    expect(messages.nth(1)).to_contain_text("To Oslo, please.")
    agent_page.get_by_label("Reply to Maria Lopez").fill("Anything else?")
    agent_page.get_by_role("button", name="Send", exact=True).click()
    expect(messages).to_have_count(4)
    expect(messages.last).to_contain_text("Anything else?")
    # The page stays as it is but for the answer, added once, and an empty reply box.
    expect(agent_page.locator("ol.messages li.outgoing")).to_have_count(2)
    expect(agent_page.locator("ol.messages li.outgoing").last).to_contain_text("Anything else?")
    expect(agent_page.get_by_label("Reply to Maria Lopez")).to_have_value("")

    # The visitor ends the chat; the agent's page says answers now go by email.
    chat.get_by_role("button", name="End chat").click()
    expect(chat.get_by_text(f"Thank you! We will answer by email at maria@example.org "
                            f"(reference #{ticket.id}).")).to_be_visible()
    expect(agent_page.get_by_text("The chat has ended.")).to_be_visible()
    assert not Ticket.get_by_id(ticket.id).is_live
    assert desk.csp_errors() == []


def test_widget_styles_and_the_shops_styles_stay_apart(open_tab, host_site):
    visitor = open_tab()
    shop = visitor.page
    shop.goto(host_site.origin)
    launcher = widget(shop).get_by_role("button", name="Leave us a message")
    expect(launcher).to_be_visible()
    # The brand's colour, not the shop's "button { background: red !important }".
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(31, 122, 77)"
    assert launcher.evaluate("b => getComputedStyle(b).fontSize") != "40px"
    # The shop's own button keeps the shop's style.
    assert shop.locator("#buy").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(255, 0, 0)"
    launcher.click()
    expect(widget(shop).get_by_text("Nobody is available to chat right now.")).to_be_visible()


def test_widget_shows_nothing_on_a_site_that_is_not_allowed(open_tab, host_site):
    visitor = open_tab()
    shop = visitor.page
    shop.goto(f"http://localhost:{host_site.port}/")  # another origin than the allowed one
    expect(shop.get_by_role("heading", name="Alpine Tents")).to_be_visible()
    shop.wait_for_load_state("networkidle")
    expect(widget(shop)).to_have_count(0)
    assert any("/widget/acme/status" in url for _, url in visitor.requests)


def test_offline_message_becomes_a_ticket_and_the_answer_reaches_the_visitor_by_email(
        open_tab, host_site, agent, smtp_server):
    visitor = open_tab()
    shop = visitor.page
    shop.goto(f"{host_site.origin}/tents/alpine-2")
    chat = widget(shop)
    chat.get_by_role("button", name="Leave us a message").click()
    expect(chat.get_by_text("Nobody is available to chat right now. Leave a message and we "
                            "will answer by email.")).to_be_visible()
    chat.get_by_label("Your name").fill("Maria Lopez")
    chat.get_by_label("Your email").fill("maria at example")
    chat.get_by_label("Your message").fill("Is the Alpine 2 tent waterproof?")
    chat.get_by_role("button", name="Send message").click()
    expect(chat.get_by_role("alert")).to_contain_text("This email address does not look right")
    expect(chat.get_by_label("Your message")).to_have_value("Is the Alpine 2 tent waterproof?")
    chat.get_by_label("Your email").fill("maria@example.org")
    chat.get_by_role("button", name="Send message").click()

    thanks = chat.get_by_text(re.compile(r"^Thank you! We will answer by email at "
                                         r"maria@example\.org \(reference #\d+\)\.$"))
    expect(thanks).to_be_visible()
    ticket = Ticket.get()
    expect(thanks).to_contain_text(f"#{ticket.id}")
    assert ticket.channel == "chat" and not ticket.is_live
    confirmation = smtp_server.wait_for(1, timeout=20)[0]
    assert confirmation["To"].addresses[0].addr_spec == "maria@example.org"

    # The visitor comes back later: their message is still there.
    shop.reload()
    chat.get_by_role("button", name="Leave us a message").click()
    expect(chat.locator("li")).to_contain_text(["Is the Alpine 2 tent waterproof?"])
    expect(chat.get_by_text(f"(reference #{ticket.id})")).to_be_visible()

    desk = open_tab()
    log_in(desk, agent.email)
    page = desk.page
    page.goto(f"/tickets/{ticket.id}")
    expect(page.get_by_text("Left as a message.")).to_be_visible()
    expect(page.get_by_text(f"Written from {host_site.origin}/tents/alpine-2")).to_be_visible()
    page.get_by_label("Reply to Maria Lopez").fill("Yes: 3,000 mm, fully taped seams.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("li.message.outgoing").filter(has_text="taped seams").locator(".badge")
           ).to_have_text("sent", timeout=20_000)
    mails = smtp_server.wait_for(2, timeout=20)
    reply = next(m for m in mails if "taped seams" in m.get_body(("plain",)).get_content())
    assert reply["To"].addresses[0].addr_spec == "maria@example.org"
    assert re.search(rf"\[#{ticket.id}\]", reply["Subject"])
    assert Message.select().where(Message.ticket == ticket.id).count() == 3
    assert desk.csp_errors() == []
