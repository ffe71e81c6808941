"""Fixtures: a fresh helpdesk per test on a temp data directory, a real SMTP server, agents."""
import email
import email.policy
import threading
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.services import agents, brands
from tests.helpers import free_port, login, wait_until

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PASSWORD = "correct horse battery"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives.

    It can be stopped and started again on the same port to play an outage."""

    smtputf8 = True  # offers SMTPUTF8 (addresses outside ASCII), as aiosmtpd's Controller does

    def __init__(self):
        self.port = free_port()
        self.messages: list = []
        self.envelopes: list = []
        self.controller = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.envelopes.append(envelope)
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def start(self):
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     enable_SMTPUTF8=self.smtputf8)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list:
        wait_until(lambda: len(self.messages) >= count, timeout,
                   message=f"expected {count} mails, got {len(self.messages)}")
        return list(self.messages)


class AuthSmtpSink(SmtpSink):
    """An SMTP server that wants the user "books" with the password "right"."""

    def start(self):
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login in (b"books", "books") and auth_data.password in (b"right", "right")
            return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535 itself

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     authenticator=authenticator, auth_require_tls=False)
        self.controller.start()


@pytest.fixture
def auth_smtp():
    sink = AuthSmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_server():
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "var", secret_key="test-secret-key",
                    base_url="http://127.0.0.1", smtp_retry_delay=0.3, smtp_timeout=5,
                    smtp_max_attempts=4, worker_threads=2)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture
def brand(app, smtp_server):
    return brands.create_brand("acme", {
        "name": "Acme Outdoor", "address": "support@acme.example", "signature": "Acme care team",
        "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "smtp_security": "none",
    })


@pytest.fixture
def admin(app):
    return agents.create_agent("admin@example.com", "Ada Admin", PASSWORD, "admin")


@pytest.fixture
def agent(app):
    return agents.create_agent("sam@example.com", "Sam Support", PASSWORD, "agent")


@pytest.fixture
def admin_client(client, admin):
    response = login(client, admin.email, PASSWORD)
    assert response.status_code == 303
    return client


@pytest.fixture
def agent_client(client, agent):
    response = login(client, agent.email, PASSWORD)
    assert response.status_code == 303
    return client


class LiveServer:
    """The app served by uvicorn in a thread, as `helpdesk serve` runs it."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self):
        self.thread.start()
        wait_until(lambda: self.server.started, 10, message="uvicorn did not start")

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server(app):
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


def shared_path(*parts) -> Path:
    """A file under ../shared, or skip: a user's clone has no ../shared; CI always has it."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: shared test data is only beside the project in CI")
    return path


def wait_for_state(message_id: int, state: str, timeout: float = 10.0):
    from app.models import Message

    def reached():
        message = Message.get_by_id(message_id)
        return message if message.state == state else None

    return wait_until(reached, timeout, message=f"message {message_id} never became {state}")

