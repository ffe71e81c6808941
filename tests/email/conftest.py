"""Fixtures for the email-channel tests: a real Dovecot IMAP server per test (see dovecot.py).

The fixtures of tests/conftest.py (settings, app, client, smtp_server, brand, ...) are visible
here as well. Without /usr/sbin/dovecot the tests that use `dovecot` skip with the reason.
"""
import os

import pytest

from tests.email.dovecot import DOVECOT, NOT_INSTALLED, Dovecot

SUPPORT = "support@example.test"  # the user every `dovecot` server starts with
SUPPORT_PASSWORD = "secret"


def require_dovecot(binary: str = DOVECOT) -> None:
    """Skip the test, with the reason, where this machine can't run the Dovecot fixture."""
    if not Dovecot.installed(binary):
        pytest.skip(NOT_INSTALLED)
    if os.geteuid() != 0:
        pytest.skip("the Dovecot fixture runs Dovecot as root (its mail processes switch to "
                    "the `mail` user): run these tests as root, e.g. in the CI container")


@pytest.fixture
def dovecot(tmp_path):
    """A running Dovecot on 127.0.0.1 (`dovecot.host`, `dovecot.port`) with the user
    SUPPORT / SUPPORT_PASSWORD; stopped after the test, failed or not. Its log is kept in
    the test's tmp_path as dovecot.log."""
    require_dovecot()
    server = Dovecot()
    server.add_user(SUPPORT, SUPPORT_PASSWORD)
    server.start(log_path=tmp_path / "dovecot.log")
    try:
        yield server
    finally:
        server.stop()
