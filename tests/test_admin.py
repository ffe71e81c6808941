"""Admin pages: agents and brands, and the test email that explains SMTP failures in words."""
from app.models import Agent, Brand, Message
from tests.conftest import SmtpSink
from tests.helpers import free_port, login, post_form

BRAND_FORM = {"slug": "books", "name": "Bright Books", "address": "hello@books.example",
              "signature": "The Books team", "smtp_host": "127.0.0.1", "smtp_port": "25",
              "smtp_security": "none", "smtp_username": "", "smtp_password": ""}


def test_admin_creates_edits_and_deactivates_an_agent(admin_client):
    response = post_form(admin_client, "/admin/agents", {"email": "new@example.com", "name": "New Person",
                                                         "role": "agent", "password": "password123"},
                         page="/admin/agents/new", follow_redirects=False)
    assert response.status_code == 303
    agent = Agent.get(Agent.email == "new@example.com")
    assert "New Person" in admin_client.get("/admin/agents").text
    post_form(admin_client, f"/admin/agents/{agent.id}", {"email": "new@example.com", "name": "Renamed",
                                                         "role": "agent", "password": ""})
    agent = Agent.get_by_id(agent.id)
    assert agent.name == "Renamed" and agent.active is False  # the box was left unticked
    other = admin_client.__class__(admin_client.app, base_url="http://127.0.0.1")
    assert login(other, "new@example.com", "password123").status_code == 400


def test_duplicate_agent_address_is_refused_with_input_kept(admin_client, agent):
    response = post_form(admin_client, "/admin/agents", {"email": agent.email, "name": "Twin",
                                                         "role": "agent", "password": "password123"},
                         page="/admin/agents/new")
    assert response.status_code == 400 and "already exists" in response.text
    assert 'value="Twin"' in response.text


def test_last_admin_cannot_lose_the_admin_role(admin_client, admin):
    response = post_form(admin_client, f"/admin/agents/{admin.id}",
                         {"email": admin.email, "name": admin.name, "role": "agent", "active": "on"})
    assert response.status_code == 400
    assert Agent.get_by_id(admin.id).role == "admin"


def test_admin_creates_a_brand_and_the_password_is_never_shown_again(admin_client):
    response = post_form(admin_client, "/admin/brands", {**BRAND_FORM, "smtp_password": "s3cret-pw"},
                         page="/admin/brands/new", follow_redirects=False)
    assert response.status_code == 303
    brand = Brand.get(Brand.slug == "books")
    assert brand.smtp_password == "s3cret-pw" and brand.is_default
    page = admin_client.get("/admin/brands/books").text
    assert "s3cret-pw" not in page and "stored; leave empty to keep it" in page
    post_form(admin_client, "/admin/brands/books", {**BRAND_FORM, "name": "Books & Co"})
    brand = Brand.get(Brand.slug == "books")
    assert brand.name == "Books & Co" and brand.smtp_password == "s3cret-pw"


def test_invalid_brand_settings_name_the_field(admin_client):
    response = post_form(admin_client, "/admin/brands", {**BRAND_FORM, "smtp_port": "99999"},
                         page="/admin/brands/new")
    assert response.status_code == 400 and "port is a number" in response.text
    assert 'value="Bright Books"' in response.text
    response = post_form(admin_client, "/admin/brands", {**BRAND_FORM, "smtp_port": "²"},
                         page="/admin/brands/new")  # a digit to str.isdigit(), not to int()
    assert response.status_code == 400 and "port is a number" in response.text


def test_a_brand_cannot_take_the_short_name_of_the_new_brand_page(admin_client):
    response = post_form(admin_client, "/admin/brands", {**BRAND_FORM, "slug": "new"},
                         page="/admin/brands/new")
    assert response.status_code == 400 and "new is taken" in response.text
    assert not Brand.select().where(Brand.slug == "new").exists()


def _test_email(admin_client, **brand_changes):
    post_form(admin_client, "/admin/brands", {**BRAND_FORM, **brand_changes}, page="/admin/brands/new")
    return post_form(admin_client, "/admin/brands/books/test-email", {"to": "me@example.org"},
                     page="/admin/brands/books")


def test_test_email_arrives_through_a_working_server(admin_client, smtp_server):
    response = _test_email(admin_client, smtp_port=str(smtp_server.port))
    assert response.status_code == 200 and "was accepted" in response.text
    assert smtp_server.wait_for(1)[0]["Subject"] == "Test email from Bright Books"


def test_test_email_says_when_the_server_cannot_be_reached(admin_client):
    response = _test_email(admin_client, smtp_port=str(free_port()))
    assert response.status_code == 502 and "the connection was refused" in response.text


def test_test_email_says_when_the_password_is_wrong(admin_client, auth_smtp):
    response = _test_email(admin_client, smtp_port=str(auth_smtp.port), smtp_username="books",
                           smtp_password="wrong")
    assert response.status_code == 502
    assert "refused the user name or password" in response.text and "535" in response.text


def test_test_email_logs_in_with_the_right_password(admin_client, auth_smtp):
    response = _test_email(admin_client, smtp_port=str(auth_smtp.port), smtp_username="books",
                           smtp_password="right")
    assert response.status_code == 200
    auth_smtp.wait_for(1)


def test_test_email_says_when_tls_fails(admin_client, smtp_server):
    response = _test_email(admin_client, smtp_port=str(smtp_server.port), smtp_security="ssl")
    assert response.status_code == 502 and "secure connection (TLS)" in response.text


def test_test_email_says_when_starttls_is_not_offered(admin_client, smtp_server):
    response = _test_email(admin_client, smtp_port=str(smtp_server.port), smtp_security="starttls")
    assert response.status_code == 502
    assert "does not support this: STARTTLS extension not supported by server. Check the security" in (
        response.text)


def test_test_email_to_an_address_the_server_cannot_take_says_why(admin_client):
    server = SmtpSink()
    server.smtputf8 = False  # as many servers: an address outside ASCII needs it
    server.start()
    try:
        post_form(admin_client, "/admin/brands", {**BRAND_FORM, "smtp_port": str(server.port)},
                  page="/admin/brands/new")
        response = post_form(admin_client, "/admin/brands/books/test-email",
                             {"to": "zoë@example.org"}, page="/admin/brands/books")
    finally:
        server.stop()
    assert response.status_code == 502 and "letters outside ASCII" in response.text
    assert "security setting" not in response.text


def test_test_email_to_a_mistyped_address_is_the_admin_s_to_correct(admin_client, smtp_server):
    post_form(admin_client, "/admin/brands", {**BRAND_FORM, "smtp_port": str(smtp_server.port)},
              page="/admin/brands/new")
    response = post_form(admin_client, "/admin/brands/books/test-email", {"to": "not-an-address"},
                         page="/admin/brands/books")
    assert response.status_code == 400 and "The test address is not valid" in response.text
    assert smtp_server.messages == []


def test_admin_edits_the_acknowledgement_and_it_is_what_customers_get(admin_client, smtp_server, client):
    post_form(admin_client, "/admin/brands", {**BRAND_FORM, "smtp_port": str(smtp_server.port),
                                              "ack_enabled": "on"}, page="/admin/brands/new")
    response = post_form(admin_client, "/admin/brands/books", {
        **BRAND_FORM, "smtp_port": str(smtp_server.port), "ack_enabled": "on",
        "response_time": "within two hours",
        "ack_template": "Dear {{ name }}, ticket {{ reference }} is noted; we answer {{ response_time }}."},
        page="/admin/brands/books", follow_redirects=False)
    assert response.status_code == 303
    post_form(client, "/contact/books", {"name": "Maria", "email": "maria@example.org",
                                         "subject": "Hi", "message": "Hello"})
    mail = smtp_server.wait_for(1)[0]
    text = mail.get_body(("plain",)).get_content()
    assert "Dear Maria, ticket #1 is noted; we answer within two hours." in text


def test_broken_acknowledgement_template_is_refused_with_input_kept(admin_client):
    post_form(admin_client, "/admin/brands", BRAND_FORM, page="/admin/brands/new")
    response = post_form(admin_client, "/admin/brands/books", {**BRAND_FORM, "ack_template": "Hi {{ name"},
                         page="/admin/brands/books")
    assert response.status_code == 400 and "acknowledgement template has an error" in response.text
    assert "Hi {{ name" in response.text


def test_unticking_the_acknowledgement_stops_it(admin_client, smtp_server, client):
    post_form(admin_client, "/admin/brands", {**BRAND_FORM, "smtp_port": str(smtp_server.port)},
              page="/admin/brands/new")
    assert Brand.get(Brand.slug == "books").ack_enabled is False  # the box was not ticked
    post_form(client, "/contact/books", {"name": "Maria", "email": "maria@example.org",
                                         "subject": "Hi", "message": "Hello"})
    assert Message.select().where(Message.is_auto == True).count() == 0  # noqa: E712


def test_port_zero_is_refused_not_read_as_the_default(app):
    import pytest

    from app.services import brands

    with pytest.raises(brands.BrandError, match="port is a number"):
        brands.create_brand("books", {"name": "Bright Books", "address": "hello@books.example",
                                      "smtp_host": "127.0.0.1", "smtp_port": 0})
    assert brands.create_brand("books", {"name": "Bright Books", "address": "hello@books.example",
                                         "smtp_host": "127.0.0.1"}).smtp_port == 587
