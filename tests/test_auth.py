"""Agents log in and out; guessing is slowed then refused; deactivated agents are shut out."""
from app.models import Agent
from app.services import agents
from tests.conftest import PASSWORD
from tests.helpers import csrf_token, login, post_form


def test_fresh_instance_asks_for_the_first_admin_once(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/login", follow_redirects=False).headers["location"] == "/setup"
    response = post_form(client, "/setup", {"name": "Ada", "email": "ada@example.com",
                                            "password": "long enough pw"}, follow_redirects=False)
    assert response.status_code == 303
    assert Agent.get(Agent.email == "ada@example.com").role == "admin"
    assert client.get("/").status_code == 200  # logged in right away

    other = client.__class__(client.app, base_url="http://127.0.0.1")
    assert other.get("/setup", follow_redirects=False).headers["location"] == "/login"
    post_form(other, "/setup", {"name": "Eve", "email": "eve@example.com", "password": "long enough pw"},
              page="/login")
    assert not Agent.select().where(Agent.email == "eve@example.com").exists()


def test_setup_with_a_short_password_keeps_what_was_typed(client):
    response = post_form(client, "/setup", {"name": "Ada", "email": "ada@example.com", "password": "short"})
    assert response.status_code == 400
    assert "at least 8 characters" in response.text
    assert 'value="ada@example.com"' in response.text


def test_login_and_logout(client, agent):
    assert login(client, agent.email, PASSWORD).headers["location"] == "/"
    assert "Sam Support" in client.get("/").text
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrftoken": token}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_wrong_password_is_refused_with_a_message(client, agent):
    response = login(client, agent.email, "not the password")
    assert response.status_code == 400
    assert "The email or password is wrong" in response.text
    assert 'value="sam@example.com"' in response.text


def test_repeated_failures_lock_the_account_for_a_while(client, agent, settings):
    for _ in range(settings.login_max_failures):
        assert login(client, agent.email, "guess").status_code == 400
    response = login(client, agent.email, PASSWORD)  # even the right password, for now
    assert response.status_code == 429
    assert "Too many failed logins" in response.text and "minutes" in response.text


def test_failures_from_one_address_across_accounts_are_refused(client, settings, app):
    for n in range(settings.login_max_failures * 4):
        login(client, f"nobody{n}@example.com", "guess")
    agents.create_agent("late@example.com", "Late", PASSWORD)
    assert login(client, "late@example.com", PASSWORD).status_code == 429


def test_deactivated_agent_cannot_log_in_and_loses_their_session(client, admin, agent):
    other = client.__class__(client.app, base_url="http://127.0.0.1")
    assert login(other, agent.email, PASSWORD).status_code == 303
    agents.update_agent(agent.id, name=agent.name, email=agent.email, role="agent", active=False, by=admin)
    assert other.get("/", follow_redirects=False).status_code == 303  # the open session ends
    assert login(other, agent.email, PASSWORD).status_code == 400
    assert Agent.get_by_id(agent.id).name == "Sam Support"  # history keeps them


def test_a_bookmarked_queue_opens_as_bookmarked_after_logging_in(client, agent):
    bookmark = "/?status=all&channel=chat&brand=books"
    to_login = client.get(bookmark, follow_redirects=False).headers["location"]
    login_page = client.get(to_login).text
    assert 'name="next" value="/?status=all&amp;channel=chat&amp;brand=books"' in login_page
    response = client.post("/login", data={"csrftoken": csrf_token(client, to_login),
                                           "email": agent.email, "password": PASSWORD,
                                           "next": bookmark}, follow_redirects=False)
    assert response.headers["location"] == bookmark


def test_logging_in_never_leads_to_another_site(client, agent):
    for elsewhere in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        response = client.post("/login", data={"csrftoken": csrf_token(client), "email": agent.email,
                                               "password": PASSWORD, "next": elsewhere},
                               follow_redirects=False)
        assert response.headers["location"] == "/", elsewhere
        client.cookies.clear()


def test_post_without_csrf_token_is_refused(agent_client, brand):
    response = agent_client.post("/tickets/1/status", data={"status": "open"})
    assert response.status_code == 403
    assert "expired or was sent from another site" in response.text


def test_htmx_request_with_csrf_header_is_accepted(agent_client, brand):
    from tests.test_queue import make_ticket

    ticket = make_ticket(brand)
    token = csrf_token(agent_client, "/")
    response = agent_client.post(f"/tickets/{ticket.id}/status", data={"status": "pending"},
                                 headers={"x-csrftoken": token, "hx-request": "true"})
    assert response.status_code == 200
    assert 'id="ticket"' in response.text and "<html" not in response.text


def test_login_form_itself_needs_the_token(client, agent):
    client.get("/login")
    response = client.post("/login", data={"email": agent.email, "password": PASSWORD})
    assert response.status_code == 403


def test_pages_send_security_headers_and_a_safe_session_cookie(client, agent):
    response = login(client, agent.email, PASSWORD)
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert script_src.strip() == "script-src 'self'" and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"


def test_cookies_are_secure_behind_https(settings):
    from starlette.testclient import TestClient

    from app.main import create_app

    app = create_app(settings.with_changes(base_url="https://help.example.com"))
    agents.create_agent("sam@example.com", "Sam", PASSWORD)
    with TestClient(app, base_url="https://help.example.com") as client:
        response = login(client, "sam@example.com", PASSWORD)
        assert "secure" in response.headers["set-cookie"].lower()


def test_event_stream_needs_a_login(client):
    assert client.get("/events/queue").status_code == 401


def test_agents_cannot_reach_admin_pages(agent_client):
    assert agent_client.get("/admin/agents").status_code == 403
    assert agent_client.get("/admin/brands").status_code == 403
