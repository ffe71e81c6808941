"""Browser fixtures for the end-to-end tests: Debian's chromium driven by Playwright (sync API).

The app is served by the `live_server` fixture of tests/conftest.py (uvicorn in a thread on
127.0.0.1); every page a test opens goes there and nowhere else. Without /usr/bin/chromium (or
without the playwright package) the tests skip with the reason; `playwright install` is never
needed or used.
"""
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.intake import receive
from app.services import contact
from tests.conftest import PASSWORD
from tests.helpers import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-quic"]
TIMEOUT_MS = 10_000  # how long a step may take before it counts as failed

# Records what the browser itself reports as a Content-Security-Policy violation. Init scripts
# are injected by the browser, not by the page, so the page's own CSP does not stop this one.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


def _playwright_api():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package "
                    "(apt-get install -y chromium) to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright)")
    return sync_playwright


@pytest.fixture(scope="session")
def browser():
    sync_playwright = _playwright_api()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _expect_timeout(browser):
    """Every expect() waits up to TIMEOUT_MS (after the browser fixture has skipped or not)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Tab:
    """One browser context with one page, and what its console and network said."""

    context: object
    page: object
    console: list = field(default_factory=list)  # (type, text)
    requests: list = field(default_factory=list)  # (method, url)

    def csp_errors(self) -> list:
        from_console = [text for kind, text in self.console
                        if kind == "error" and "Content Security Policy" in text]
        try:
            from_event = self.page.evaluate("window.__cspViolations || []")
        except Exception:  # a page without JavaScript cannot be asked
            from_event = []
        return from_console + from_event

    def set_marker(self) -> str:
        """Marks the loaded document; the mark survives only as long as no page load happens."""
        marker = f"kept-{id(self)}"
        self.page.evaluate("(m) => { window.__marker = m; }", marker)
        return marker

    def marker(self):
        return self.page.evaluate("window.__marker")


@pytest.fixture
def open_tab(browser, live_server):
    """open_tab(javascript=True) -> a new browser context (its own cookies) with one page.

    Depends on live_server so that every context is closed before the server stops."""
    tabs = []

    def open_(javascript: bool = True) -> Tab:
        context = browser.new_context(base_url=live_server.url, java_script_enabled=javascript)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.add_init_script(CSP_RECORDER)
        page = context.new_page()
        tab = Tab(context=context, page=page)
        page.on("console", lambda msg: tab.console.append((msg.type, msg.text)))
        page.on("request", lambda req: tab.requests.append((req.method, req.url)))
        tabs.append(tab)
        return tab

    yield open_
    for tab in tabs:
        tab.context.close()


def log_in(tab: Tab, email: str, password: str = PASSWORD) -> None:
    """Logs in through the login page, as a person would, and lands on the queue."""
    from playwright.sync_api import expect

    page = tab.page
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def wait_for_live_queue(tab: Tab) -> None:
    """Waits until the queue page's event stream is open (htmx's sse extension connected)."""
    tab.page.wait_for_function(
        "() => { const el = document.querySelector('[sse-connect]');"
        " const data = el && el['htmx-internal-data'];"
        " return !!(data && data.sseEventSource && data.sseEventSource.readyState === 1); }",
        timeout=TIMEOUT_MS)


def wait_for_htmx_settled(page) -> None:
    """htmx sets up what it swapped in (its hx-trigger listeners) only when the swap settles,
    20 ms later: a person never acts sooner, a test can."""
    page.wait_for_function("() => !document.querySelector('.htmx-added, .htmx-settling')",
                           timeout=TIMEOUT_MS)


def fill_contact_form(page, name="", email="", subject="", message="") -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Your email").fill(email)
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Message").fill(message)


@pytest.fixture
def make_ticket(app, brand):
    """make_ticket(subject) -> a form ticket created the way the contact form creates one."""
    counter = iter(range(1, 1000))

    def make(subject: str, name: str = "Maria Lopez", message: str = "It has not arrived yet."):
        n = next(counter)
        submission = contact.ContactSubmission(name=name, email=f"customer{n}@example.org",
                                               subject=subject, message=message)
        return receive(contact.incoming(brand, submission), app.state.settings.secret_key).ticket

    return make


class OtherSite:
    """Another website (a brand's shop) on its own port, so another origin than the helpdesk:
    serves the pages it is given, and `any_page` (when set) at every other path."""

    def __init__(self, host: str = "127.0.0.1", any_page: str | None = None):
        self.port = free_port()
        self.origin = f"http://{host}:{self.port}"
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                page = pages.get(self.path, any_page)
                body = (page if page is not None else "not found").encode()
                self.send_response(200 if page is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.origin + path

    def start(self) -> "OtherSite":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
