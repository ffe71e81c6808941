"""Admin pages for mailboxes: set up by form, errors per field, connection test in words."""
from app.models import Mailbox, SkippedMail
from tests.helpers import free_port, post_form

MAILBOX_FORM = {"name": "support-acme", "brand": "acme", "imap_host": "127.0.0.1",
                "imap_port": "993", "imap_security": "none", "username": "support@acme.example",
                "password": "", "folder": "INBOX",
                "addresses": "support@acme.example, help@acme.example", "mark_seen": "on"}


def _create(admin_client, **changes):
    return post_form(admin_client, "/admin/mailboxes", {**MAILBOX_FORM, **changes},
                     page="/admin/mailboxes/new", follow_redirects=False)


def test_admin_creates_a_mailbox_and_the_password_is_never_shown_again(admin_client, brand):
    response = _create(admin_client, password="imap-s3cret")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/mailboxes/support-acme"
    mailbox = Mailbox.get(Mailbox.name == "support-acme")
    assert mailbox.password == "imap-s3cret" and mailbox.brand_id == brand.id
    assert mailbox.mark_seen and not mailbox.paused
    assert mailbox.addresses == "support@acme.example, help@acme.example"
    page = admin_client.get("/admin/mailboxes/support-acme").text
    assert "imap-s3cret" not in page and "stored; leave empty to keep it" in page
    listing = admin_client.get("/admin/mailboxes").text
    assert "support@acme.example@127.0.0.1:993" in listing and "not checked yet" in listing
    assert "imap-s3cret" not in listing


def test_saving_with_an_empty_password_keeps_it_and_unticked_boxes_are_off(admin_client, brand):
    _create(admin_client, password="imap-s3cret")
    response = post_form(admin_client, "/admin/mailboxes/support-acme",
                         {k: v for k, v in MAILBOX_FORM.items() if k not in ("name", "mark_seen")}
                         | {"folder": "Support", "paused": "on"}, follow_redirects=False)
    assert response.status_code == 303
    mailbox = Mailbox.get(Mailbox.name == "support-acme")
    assert mailbox.password == "imap-s3cret" and mailbox.folder == "Support"
    assert mailbox.mark_seen is False and mailbox.paused is True
    assert "paused" in admin_client.get("/admin/mailboxes").text


def test_a_wrong_port_names_the_field_and_keeps_the_input(admin_client, brand):
    response = _create(admin_client, imap_port="99999", password="imap-s3cret")
    assert response.status_code == 400
    assert "The IMAP port is a number from 1 to 65535." in response.text
    assert 'name="imap_port" inputmode="numeric" value="99999" aria-invalid="true"' in response.text
    assert 'value="support-acme"' in response.text and 'value="127.0.0.1"' in response.text
    assert "imap-s3cret" not in response.text
    assert not Mailbox.select().exists()


def test_test_connection_to_a_closed_port_says_it_was_refused(admin_client, brand):
    _create(admin_client, imap_port=str(free_port()), password="pw")
    response = post_form(admin_client, "/admin/mailboxes/support-acme/test", {},
                         page="/admin/mailboxes/support-acme")
    assert response.status_code == 502 and "the connection was refused" in response.text


def test_check_now_on_a_closed_port_shows_the_error_and_records_it(admin_client, brand):
    _create(admin_client, imap_port=str(free_port()), password="pw")
    response = post_form(admin_client, "/admin/mailboxes/support-acme/fetch", {},
                         page="/admin/mailboxes/support-acme")
    assert response.status_code == 502 and "the connection was refused" in response.text
    assert "since" in admin_client.get("/admin/mailboxes").text
    assert Mailbox.get(Mailbox.name == "support-acme").last_error


def test_mail_left_on_the_server_is_listed_on_the_mailbox_page(admin_client, brand):
    _create(admin_client, password="pw")
    mailbox = Mailbox.get(Mailbox.name == "support-acme")
    SkippedMail.create(mailbox=mailbox, uidvalidity=1, uid=7, size=30_000_000,
                       sender="big@example.org", subject="Holiday <b>videos</b>",
                       reason="over the size limit (30,000,000 bytes)")
    page = admin_client.get("/admin/mailboxes/support-acme").text
    assert "big@example.org" in page and "over the size limit (30,000,000 bytes)" in page
    assert "Holiday &lt;b&gt;videos&lt;/b&gt;" in page


def test_agents_who_are_not_admins_get_403(agent_client, brand):
    assert agent_client.get("/admin/mailboxes").status_code == 403
    assert agent_client.get("/admin/mailboxes/new").status_code == 403
    response = post_form(agent_client, "/admin/mailboxes", MAILBOX_FORM, page="/")
    assert response.status_code == 403 and not Mailbox.select().exists()
    assert "Mailboxes" not in agent_client.get("/").text


def test_unknown_mailbox_is_404(admin_client):
    assert admin_client.get("/admin/mailboxes/nope").status_code == 404
