"""The counters beside the queue's filters follow new tickets without a reload."""
import pytest

from tests.e2e.conftest import log_in, wait_for_live_queue

pytestmark = pytest.mark.e2e
expect = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed").expect


def test_counters_follow_new_tickets_live(open_tab, agent, make_ticket):
    make_ticket("First question")
    tab = open_tab()
    log_in(tab, agent.email)
    active = tab.page.locator("#queue-filters a", has_text="Active").locator(".count")
    form = tab.page.locator("#queue-filters a", has_text="Form").locator(".count")
    expect(active).to_have_text("1")
    wait_for_live_queue(tab)
    marker = tab.set_marker()

    make_ticket("Second question")
    make_ticket("Third question")

    expect(active).to_have_text("3")
    expect(form).to_have_text("3")
    assert tab.marker() == marker
    assert tab.csp_errors() == []
