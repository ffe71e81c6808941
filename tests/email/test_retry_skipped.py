"""A mail left on the server (too big, or it could not be stored) is listed on the mailbox
page, and an admin can fetch it again from there."""
import pytest

from app.models import SkippedMail, Ticket
from app.services import brands, mailboxes
from tests.email.conftest import SUPPORT, SUPPORT_PASSWORD
from tests.helpers import post_form

BIG = (b"From: Maria <maria@example.org>\r\nTo: support@example.test\r\nSubject: Big photos\r\n"
       b"Message-ID: <big-1@example.org>\r\n\r\n" + b"x" * 5000 + b"\r\n")


@pytest.fixture
def settings(settings):
    return settings.with_changes(max_mail_bytes=2000)


def test_admin_fetches_a_listed_mail_again(admin_client, dovecot, settings):
    brands.create_brand("acme", {"name": "Acme", "address": SUPPORT})
    mailbox = mailboxes.create_mailbox("support", {
        "brand": "acme", "imap_host": dovecot.host, "imap_port": dovecot.port,
        "imap_security": "none", "username": SUPPORT}, SUPPORT_PASSWORD)
    dovecot.append(SUPPORT, SUPPORT_PASSWORD, BIG)
    assert mailboxes.fetch(mailbox.id, settings).skipped == 1

    page = admin_client.get("/admin/mailboxes/support").text
    assert "Big photos" in page and "over the size limit" in page
    skipped = SkippedMail.get()
    response = post_form(admin_client, "/admin/mailboxes/support/retry", {"skipped": str(skipped.id)},
                         page="/admin/mailboxes/support")

    assert response.status_code == 200 and "is stored now" in response.text
    assert Ticket.get().subject == "Big photos"
    assert not SkippedMail.select().exists()
    assert mailboxes.fetch(mailbox.id, settings).fetched == 0  # and not fetched a second time
