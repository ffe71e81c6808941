"""The `helpdesk` command: scripted setup, and one clear sentence for every mistake."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HELPDESK = str(Path(sys.executable).parent / "helpdesk")


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "HELPDESK_DATA_DIR": str(tmp_path / "data")}
    env.pop("HELPDESK_DATABASE_URL", None)

    def run(*args, stdin: str = "", extra_env=None):
        return subprocess.run([HELPDESK, *args], input=stdin, capture_output=True, text=True,
                              env={**env, **(extra_env or {})}, timeout=60)
    return run


def _one_sentence(result):
    lines = [line for line in result.stderr.splitlines() if not line.startswith("INFO")]
    assert result.returncode == 2, result
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_create_agent_reads_the_password_from_stdin(run):
    result = run("create-agent", "ada@example.com", "--name", "Ada", "--admin", "--password-stdin",
                 stdin="long enough password\n")
    assert result.returncode == 0 and "Created admin Ada <ada@example.com>" in result.stdout
    again = run("create-agent", "ada@example.com", "--name", "Ada", "--password-stdin", stdin="long enough password\n")
    assert "already exists" in _one_sentence(again)


def test_create_agent_without_a_terminal_or_stdin_flag_explains(run):
    assert "--password-stdin" in _one_sentence(run("create-agent", "a@example.com", "--name", "A"))


def test_short_password_is_one_clear_sentence(run):
    result = run("create-agent", "a@example.com", "--name", "A", "--password-stdin", stdin="short\n")
    assert "at least 8 characters" in _one_sentence(result)


def test_brand_add_list_and_edit(run):
    added = run("brand", "add", "acme", "--name", "Acme Outdoor", "--address", "support@acme.example",
                "--smtp-host", "smtp.acme.example", "--smtp-port", "465", "--smtp-security", "ssl",
                "--smtp-username", "support", "--smtp-password-stdin", stdin="pw-from-stdin\n")
    assert added.returncode == 0, added.stderr
    listed = run("brand", "list").stdout
    assert "acme\tAcme Outdoor (default)\tsupport@acme.example\tsmtp.acme.example:465 ssl" in listed
    assert "pw-from-stdin" not in listed
    edited = run("brand", "edit", "acme", "--name", "Acme", "--smtp-port", "587", "--smtp-security", "starttls")
    assert edited.returncode == 0, edited.stderr
    assert "acme\tAcme (default)\tsupport@acme.example\tsmtp.acme.example:587 starttls" in run("brand", "list").stdout


def test_brand_mistakes_are_one_sentence(run):
    assert "not valid" in _one_sentence(run("brand", "add", "acme", "--name", "A", "--address", "nope"))
    assert "slug" in _one_sentence(run("brand", "add", "Bad Slug!", "--name", "A", "--address", "a@example.com"))
    assert "There is no brand" in _one_sentence(run("brand", "edit", "ghost", "--name", "X"))


def test_impossible_ports_and_counts_are_refused_before_anything_starts(run):
    for args, words in ((("serve", "--port", "99999"), "99999 is not a port"),
                        (("worker", "--workers", "-3"), "-3 is not a number of 1 or more"),
                        (("brand", "add", "acme", "--name", "A", "--address", "a@example.com",
                          "--smtp-port", "0"), "0 is not a port")):
        result = run(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert words in result.stderr.splitlines()[-1]


def test_serve_on_a_port_that_is_taken_says_so(run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert _one_sentence(result) == f"helpdesk: Cannot listen on 127.0.0.1:{port}: Address already in use."
    assert "Huey" not in result.stderr  # nothing started


def test_demo_loads_once_and_prints_how_to_log_in(run):
    first = run("demo")
    assert first.returncode == 0 and "ada@example.com / demo-password" in first.stdout
    assert "already has data" in _one_sentence(run("demo"))
    skipped = run("demo", "--if-empty")
    assert skipped.returncode == 0 and "no demo data loaded" in skipped.stdout


def test_malformed_setting_is_one_sentence(run):
    result = run("brand", "list", extra_env={"HELPDESK_SESSION_HOURS": "twelve"})
    assert "HELPDESK_SESSION_HOURS must be a whole number" in _one_sentence(result)
