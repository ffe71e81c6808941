"""`helpdesk mailbox add|list|edit|test|fetch` against a real Dovecot: scripted setup, and one
clear sentence with exit status 2 for every mistake."""
import pytest

from tests.email.conftest import SUPPORT, SUPPORT_PASSWORD
from tests.email.mailtools import append, build_mail, helpdesk_env, run_helpdesk, seen


@pytest.fixture
def helpdesk(tmp_path, dovecot):
    """Runs `helpdesk` on a fresh data directory that has the brand acme."""
    env = helpdesk_env(tmp_path / "cli")

    def run(*args, stdin: str = ""):
        return run_helpdesk(env, *args, stdin=stdin)

    added = run("brand", "add", "acme", "--name", "Acme Outdoor", "--address", SUPPORT)
    assert added.returncode == 0, added.stderr
    return run


def one_sentence(result) -> str:
    lines = [line for line in result.stderr.splitlines()
             if not line.startswith(("INFO", "WARNING"))]
    assert result.returncode == 2, result
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def add_support(helpdesk, dovecot, password: str = SUPPORT_PASSWORD):
    return helpdesk("mailbox", "add", "support", "--brand", "acme", "--imap-host", "127.0.0.1",
                    "--imap-port", str(dovecot.port), "--security", "none",
                    "--username", SUPPORT, "--password-stdin", stdin=password + "\n")


def test_add_reads_the_password_from_stdin_and_list_shows_the_mailbox(helpdesk, dovecot):
    added = add_support(helpdesk, dovecot)

    assert added.returncode == 0, added.stderr
    assert (f"Created mailbox support for brand acme: {SUPPORT} on 127.0.0.1:{dovecot.port} (none)."
            in added.stdout)
    listed = helpdesk("mailbox", "list")
    assert listed.returncode == 0
    assert (f"support\tacme\t{SUPPORT}@127.0.0.1:{dovecot.port} none\tINBOX\tfetched 0\tok"
            in listed.stdout)
    assert SUPPORT_PASSWORD not in listed.stdout + listed.stderr + added.stdout


def test_test_logs_in_and_says_what_is_there(helpdesk, dovecot):
    add_support(helpdesk, dovecot)
    append(dovecot, build_mail())

    tested = helpdesk("mailbox", "test", "support")

    assert tested.returncode == 0, tested.stderr
    assert "Connected: 1 mails in INBOX (1 unread), IDLE supported." in tested.stdout


def test_test_with_a_wrong_password_says_the_login_was_refused(helpdesk, dovecot):
    add_support(helpdesk, dovecot, password="not-the-password")

    sentence = one_sentence(helpdesk("mailbox", "test", "support"))

    assert "refused the login" in sentence and SUPPORT in sentence
    assert "not-the-password" not in sentence


def test_edit_with_the_right_password_then_fetch_prints_what_it_fetched(helpdesk, dovecot):
    add_support(helpdesk, dovecot, password="not-the-password")
    uid = append(dovecot, build_mail(subject="Via the command line"))
    assert "refused the login" in one_sentence(helpdesk("mailbox", "fetch", "support"))
    assert "error since" in helpdesk("mailbox", "list").stdout

    edited = helpdesk("mailbox", "edit", "support", "--password-stdin",
                      stdin=SUPPORT_PASSWORD + "\n")
    assert edited.returncode == 0 and "Updated mailbox support." in edited.stdout
    fetched = helpdesk("mailbox", "fetch", "support")

    assert fetched.returncode == 0, fetched.stderr
    assert "Fetched 1 new mails from support" in fetched.stdout
    assert seen(dovecot, uid)
    assert "fetched 1\tok" in helpdesk("mailbox", "list").stdout
    assert "Fetched 0 new mails" in helpdesk("mailbox", "fetch", "support").stdout


def test_fetch_from_a_server_that_is_down_is_one_sentence(helpdesk, dovecot):
    add_support(helpdesk, dovecot)
    dovecot.stop()

    sentence = one_sentence(helpdesk("mailbox", "fetch", "support"))

    assert "connection was refused" in sentence


@pytest.mark.parametrize("args, words", [
    (["--brand", "nosuch"], "There is no brand nosuch."),
    (["--imap-host", "imap.example.com"], "clear text"),
], ids=["unknown brand", "no TLS to another machine"])
def test_add_mistakes_are_one_sentence(helpdesk, dovecot, args, words):
    values = {"--brand": "acme", "--imap-host": "127.0.0.1"}
    values.update(dict(zip(args[::2], args[1::2])))
    result = helpdesk("mailbox", "add", "support", *[x for kv in values.items() for x in kv],
                      "--imap-port", str(dovecot.port), "--security", "none",
                      "--username", SUPPORT, "--password-stdin", stdin="secret\n")

    assert words in one_sentence(result)


def test_unknown_mailbox_is_one_sentence(helpdesk):
    assert "There is no mailbox nosuch." in one_sentence(helpdesk("mailbox", "fetch", "nosuch"))
