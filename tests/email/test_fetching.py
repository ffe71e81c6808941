"""Fetching a mailbox from a real Dovecot: each mail becomes one message, exactly once, marked
\\Seen only once it is stored, with the original kept; big mail is left on the server and listed."""
import hashlib


from app.models import Customer, Mailbox, Message, SkippedMail, Ticket
from app.services import blobs
from tests.email.conftest import SUPPORT, SUPPORT_PASSWORD
from tests.email.mailtools import (CUSTOMER, add_mailbox, append, build_mail, fetch, incoming,
                                   seen, with_trace)

pytest_plugins = ["tests.email.mailfixtures"]


def test_new_mail_becomes_an_email_ticket_of_the_brand_within_one_fetch(mailbox, dovecot, settings):
    raw = build_mail("María López <maria@example.org>", "Café order №42 is late",
                     "Hello, my order has not arrived.")
    assert b"=?utf-8?" in raw  # the subject travels encoded
    append(dovecot, raw)

    report = fetch(mailbox, settings)

    assert report.fetched == 1
    ticket = Ticket.get()
    assert ticket.channel == "email"
    assert ticket.brand.slug == "acme"
    assert ticket.subject == "Café order №42 is late"
    assert ticket.status == "new"
    assert ticket.customer.email == "maria@example.org"
    assert ticket.customer.name == "María López"
    message = Message.get(Message.ticket == ticket, Message.direction == "incoming")
    assert "my order has not arrived" in message.body_text


def test_fetching_again_changes_nothing(mailbox, dovecot, settings):
    append(dovecot, build_mail(subject="First"))
    append(dovecot, build_mail(subject="Second"))
    assert fetch(mailbox, settings).fetched == 2
    before = (Ticket.select().count(), Message.select().count(), Customer.select().count())

    again = fetch(mailbox, settings)

    assert (again.fetched, again.duplicates, again.skipped) == (0, 0, 0)
    assert (Ticket.select().count(), Message.select().count(), Customer.select().count()) == before


def test_mail_is_marked_seen_on_the_server_once_stored(mailbox, dovecot, settings):
    uid = append(dovecot, build_mail())
    assert not seen(dovecot, uid)

    fetch(mailbox, settings)

    assert Message.select().where(Message.direction == "incoming").count() == 1
    assert seen(dovecot, uid)


def test_mail_that_could_not_be_stored_stays_unseen_and_is_listed(mailbox, dovecot, settings):
    # The disk refuses: the blob store's folder is a file, so the original cannot be kept.
    settings.data_dir.joinpath("blobs").write_text("not a folder")
    uid = append(dovecot, build_mail(subject="Lost in the disk"))

    report = fetch(mailbox, settings)

    assert report.fetched == 0 and len(report.failed) == 1
    assert not Ticket.select().exists()
    assert not seen(dovecot, uid)
    skipped = SkippedMail.get()
    assert (skipped.uid, skipped.sender, skipped.subject) == (uid, CUSTOMER, "Lost in the disk")
    assert "could not be stored" in skipped.reason


def test_mailbox_set_to_leave_mail_unseen_is_left_untouched(acme, dovecot, settings):
    box = add_mailbox(dovecot, mark_seen=False)
    first = append(dovecot, build_mail(subject="First"))

    assert fetch(box, settings).fetched == 1
    second = append(dovecot, build_mail(subject="Second"))
    assert fetch(box, settings).fetched == 1
    assert fetch(box, settings).fetched == 0

    assert [t.subject for t in Ticket.select().order_by(Ticket.id)] == ["First", "Second"]
    assert dovecot.flags_of(SUPPORT, SUPPORT_PASSWORD, first) == set()
    assert dovecot.flags_of(SUPPORT, SUPPORT_PASSWORD, second) == set()


def test_the_original_mail_is_kept_byte_for_byte(mailbox, dovecot, settings):
    raw = build_mail(subject="Keep me", body="Line one\nLine two with ümlauts\n")
    append(dovecot, raw)

    fetch(mailbox, settings)

    message = incoming()[0]
    assert blobs.read(settings.data_dir, message.raw_sha256) == raw


def test_uidvalidity_change_does_not_import_old_mail_again(mailbox, dovecot, settings):
    for n in range(3):
        append(dovecot, build_mail(subject=f"Before {n}"))
    assert fetch(mailbox, settings).fetched == 3
    _, new = dovecot.change_uidvalidity(SUPPORT, SUPPORT_PASSWORD)

    report = fetch(mailbox, settings)

    assert (report.fetched, report.duplicates) == (0, 3)
    assert Ticket.select().count() == 3 and len(incoming()) == 3
    assert Mailbox.get_by_id(mailbox.id).uidvalidity == new
    assert all(seen(dovecot, uid) for uid in dovecot.uids(SUPPORT, SUPPORT_PASSWORD))

    append(dovecot, build_mail(subject="After the change"))
    assert fetch(mailbox, settings).fetched == 1
    assert Ticket.select().count() == 4
    assert Ticket.select().order_by(Ticket.id.desc()).get().subject == "After the change"


def test_same_mail_delivered_to_two_of_our_addresses_becomes_one_ticket(acme, dovecot, settings):
    dovecot.add_user("orders@example.test", "orders-secret")
    support = add_mailbox(dovecot)
    orders = add_mailbox(dovecot, "orders", "orders@example.test", "orders-secret")
    raw = build_mail(subject="Order 7 and a question", to=SUPPORT, cc="orders@example.test")
    append(dovecot, with_trace(raw, "Delivered-To: support@example.test",
                               "Received: from mx1.example.org by imap.example.test; "
                               "Mon, 02 Mar 2026 10:00:01 +0000"))
    append(dovecot, with_trace(raw, "Delivered-To: orders@example.test",
                               "Received: from mx2.example.org by imap.example.test; "
                               "Mon, 02 Mar 2026 10:00:03 +0000"),
           "orders@example.test", "orders-secret")

    first = fetch(support, settings)
    second = fetch(orders, settings)

    assert (first.fetched, second.fetched, second.duplicates) == (1, 0, 1)
    assert Ticket.select().count() == 1
    assert len(incoming()) == 1
    assert Message.select().where(Message.direction == "outgoing").count() == 1  # one ack


def test_a_reused_message_id_with_different_content_keeps_both_mails(mailbox, dovecot, settings):
    append(dovecot, build_mail(subject="Invoice", body="Please send the invoice.",
                               message_id="<lazy-client@example.org>"))
    append(dovecot, build_mail(subject="Return", body="I want to return the boots.",
                               message_id="<lazy-client@example.org>"))

    assert fetch(mailbox, settings).fetched == 2

    texts = [m.body_text for m in incoming("<lazy-client@example.org>")]
    assert len(texts) == 2
    assert "invoice" in texts[0] and "return the boots" in texts[1]


def test_mail_without_message_id_is_deduplicated_by_its_content(mailbox, dovecot, settings):
    raw = build_mail(subject="No id here", body="My client sends no Message-ID.", message_id=None)
    append(dovecot, with_trace(raw, "Received: from mx1.example.org; 2 Mar 2026 10:00:01 +0000"))
    append(dovecot, with_trace(raw, "Received: from mx2.example.org; 2 Mar 2026 10:05:00 +0000"))
    append(dovecot, build_mail(subject="No id here", body="A different mail.", message_id=None))

    report = fetch(mailbox, settings)

    assert (report.fetched, report.duplicates) == (2, 1)
    assert sorted(m.body_text.strip() for m in incoming()) == [
        "A different mail.", "My client sends no Message-ID."]


def test_oversize_mail_is_listed_left_unseen_and_the_next_mail_still_fetched(mailbox, dovecot,
                                                                            settings):
    small = settings.with_changes(max_mail_bytes=4000)
    append(dovecot, build_mail(subject="Before the big one"))
    big_raw = build_mail("Big Sender <big@example.org>", "Holiday photos", "x" * 10_000)
    big = append(dovecot, big_raw)
    append(dovecot, build_mail(subject="After the big one"))

    report = fetch(mailbox, small)

    assert (report.fetched, report.skipped) == (2, 1)
    assert [t.subject for t in Ticket.select().order_by(Ticket.id)] == [
        "Before the big one", "After the big one"]
    skipped = SkippedMail.get()
    assert (skipped.uid, skipped.sender) == (big, "big@example.org")
    assert skipped.subject == "Holiday photos"
    assert skipped.size > 10_000 and "size limit" in skipped.reason
    assert not seen(dovecot, big)  # left for a person to handle in a mail program
    assert not blobs.path_of(settings.data_dir, hashlib.sha256(big_raw).hexdigest()).exists()

    again = fetch(mailbox, small)
    assert (again.fetched, again.skipped) == (0, 0)
    assert SkippedMail.select().count() == 1 and Ticket.select().count() == 2


def test_oversize_mail_stays_listed_once_after_uidvalidity_changes(mailbox, dovecot, settings):
    small = settings.with_changes(max_mail_bytes=4000)
    append(dovecot, build_mail("Big Sender <big@example.org>", "Holiday photos", "x" * 10_000))
    fetch(mailbox, small)
    dovecot.change_uidvalidity(SUPPORT, SUPPORT_PASSWORD)

    fetch(mailbox, small)

    assert [s.subject for s in SkippedMail.select()] == ["Holiday photos"]
