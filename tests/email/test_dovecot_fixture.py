"""The Dovecot fixture itself: a real IMAP server that stores, returns and numbers mail as the
email channel will rely on."""
import socket
import time

import imapclient
import pytest
from imapclient.exceptions import LoginError

from tests.email.conftest import SUPPORT, SUPPORT_PASSWORD, require_dovecot
from tests.email.dovecot import Dovecot, group_members

RAW = (b"From: Customer <customer@example.org>\r\n"
       b"To: support@example.test\r\n"
       b"Subject: =?utf-8?q?Caf=C3=A9?= order 42\r\n"
       b"Message-ID: <order-42@example.org>\r\n"
       b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: 8bit\r\n"
       b"\r\n"
       b"Where is my order? \xc3\xa9\xc3\xa8\r\n"
       b"  trailing spaces and a last line without CRLF")


def message(n: int) -> bytes:
    return (f"From: c{n}@example.org\r\nSubject: message {n}\r\n"
            f"Message-ID: <m{n}@example.org>\r\n\r\nbody {n}\r\n").encode()


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on port, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def test_append_then_fetch_returns_the_same_bytes_and_leaves_it_unseen(dovecot):
    uidvalidity, uid = dovecot.append(SUPPORT, SUPPORT_PASSWORD, RAW)

    assert dovecot.uids(SUPPORT, SUPPORT_PASSWORD) == [uid]
    with dovecot.connect(SUPPORT, SUPPORT_PASSWORD) as imap:
        selected = imap.select_folder("INBOX")
        assert selected[b"UIDVALIDITY"] == uidvalidity
        fetched = imap.fetch([uid], ["BODY.PEEK[]", "RFC822.SIZE"])
    assert fetched[uid][b"BODY[]"] == RAW
    assert fetched[uid][b"RFC822.SIZE"] == len(RAW)
    assert "\\Seen" not in dovecot.flags_of(SUPPORT, SUPPORT_PASSWORD, uid)
    assert imapclient.SEEN not in dovecot.flags_of(SUPPORT, SUPPORT_PASSWORD, uid)

    # flags_of does see \Seen once a plain BODY[] fetch sets it (so the check above means it)
    with dovecot.connect(SUPPORT, SUPPORT_PASSWORD) as imap:
        imap.select_folder("INBOX")
        imap.fetch([uid], ["BODY[]"])
    assert dovecot.flags_of(SUPPORT, SUPPORT_PASSWORD, uid) == {"\\Seen"}


def test_append_keeps_flags_and_numbers_uids_up(dovecot):
    first = dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(1), flags=[imapclient.SEEN])
    second = dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(2), flags=["\\Flagged"])

    assert first[0] == second[0]
    assert second[1] > first[1]
    assert dovecot.uids(SUPPORT, SUPPORT_PASSWORD) == [first[1], second[1]]
    assert dovecot.flags_of(SUPPORT, SUPPORT_PASSWORD, first[1]) == {"\\Seen"}
    assert dovecot.flags_of(SUPPORT, SUPPORT_PASSWORD, second[1]) == {"\\Flagged"}


def test_folders_are_separate(dovecot):
    dovecot.create_folder(SUPPORT, SUPPORT_PASSWORD, "Archive")
    _, uid = dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(1), folder="Archive")

    assert dovecot.uids(SUPPORT, SUPPORT_PASSWORD, "Archive") == [uid]
    assert dovecot.uids(SUPPORT, SUPPORT_PASSWORD) == []
    assert dovecot.uidvalidity(SUPPORT, SUPPORT_PASSWORD, "Archive") != \
        dovecot.uidvalidity(SUPPORT, SUPPORT_PASSWORD, "INBOX")


def test_a_user_added_while_running_logs_in_and_has_a_separate_mailbox(dovecot):
    dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(1))
    with pytest.raises(LoginError):
        dovecot.connect("sales@example.test", "other-secret")

    dovecot.add_user("sales@example.test", "other-secret")  # no reload: read at each login
    _, uid = dovecot.append("sales@example.test", "other-secret", message(2))

    assert dovecot.uids("sales@example.test", "other-secret") == [uid]
    assert len(dovecot.uids(SUPPORT, SUPPORT_PASSWORD)) == 1
    with dovecot.connect("sales@example.test", "other-secret") as imap:
        imap.select_folder("INBOX", readonly=True)
        body = imap.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    assert body == message(2)
    with pytest.raises(LoginError):
        dovecot.connect("sales@example.test", SUPPORT_PASSWORD)


def test_a_wrong_password_is_refused_quickly(dovecot):
    started = time.monotonic()
    for _ in range(2):  # about 0.5 s each; Dovecot's default delays would make it 2.5 s + 4.5 s
        with pytest.raises(LoginError):
            dovecot.connect(SUPPORT, "wrong")
    assert time.monotonic() - started < 3


def test_change_uidvalidity_changes_it_and_keeps_the_mail(dovecot):
    dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(1))
    dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(2))
    with dovecot.connect(SUPPORT, SUPPORT_PASSWORD) as imap:
        before = imap.select_folder("INBOX")[b"UIDVALIDITY"]

    old, new = dovecot.change_uidvalidity(SUPPORT, SUPPORT_PASSWORD)

    with dovecot.connect(SUPPORT, SUPPORT_PASSWORD) as imap:
        after = imap.select_folder("INBOX")
        status = imap.folder_status("INBOX", [b"UIDVALIDITY"])
        uids = imap.search("ALL")
        bodies = imap.fetch(uids, ["BODY.PEEK[]"])
    assert (old, new) == (before, after[b"UIDVALIDITY"])
    assert after[b"UIDVALIDITY"] != before
    assert status[b"UIDVALIDITY"] == after[b"UIDVALIDITY"]
    assert after[b"EXISTS"] == 2
    assert sorted(data[b"BODY[]"] for data in bodies.values()) == [message(1), message(2)]
    _, uid = dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(3))
    assert uid == 3


def test_change_uidvalidity_of_another_folder_and_a_selected_session(dovecot):
    dovecot.create_folder(SUPPORT, SUPPORT_PASSWORD, "Support")
    uidvalidity, _ = dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(1), folder="Support")
    held = dovecot.connect(SUPPORT, SUPPORT_PASSWORD)
    held.select_folder("Support")

    old, new = dovecot.change_uidvalidity(SUPPORT, SUPPORT_PASSWORD, "Support")

    assert old == uidvalidity and new != old
    assert dovecot.uidvalidity(SUPPORT, SUPPORT_PASSWORD, "Support") == new
    assert len(dovecot.uids(SUPPORT, SUPPORT_PASSWORD, "Support")) == 1
    # sessions are dropped (the server restarts), so none keeps a view of the old UIDs
    with pytest.raises((imapclient.IMAPClient.AbortError, OSError)):
        held.noop()


def test_the_server_advertises_and_delivers_idle(dovecot):
    with dovecot.connect(SUPPORT, SUPPORT_PASSWORD) as imap:
        capabilities = imap.capabilities()
        for capability in (b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE"):
            assert capability in capabilities
        imap.select_folder("INBOX")
        imap.idle()
        dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(1))
        responses = imap.idle_check(timeout=10)  # Dovecot batches IDLE news: about 0.5 s
        imap.idle_done()
    assert (1, b"EXISTS") in responses


def test_it_listens_on_loopback_only(dovecot):
    assert dovecot.host == "127.0.0.1"
    assert listening_addresses(dovecot.port) == {"0100007F"}  # 127.0.0.1, little-endian hex


def test_restart_keeps_mail_and_port_and_drops_connections(dovecot):
    _, uid = dovecot.append(SUPPORT, SUPPORT_PASSWORD, message(1))
    port = dovecot.port
    held = dovecot.connect(SUPPORT, SUPPORT_PASSWORD)
    held.select_folder("INBOX")

    dovecot.restart()

    assert dovecot.port == port
    with pytest.raises((imapclient.IMAPClient.AbortError, OSError)):
        held.noop()
    assert dovecot.uids(SUPPORT, SUPPORT_PASSWORD) == [uid]


def test_stop_ends_every_process_closes_the_port_and_removes_the_files(tmp_path):
    require_dovecot()
    server = Dovecot()
    server.add_user(SUPPORT, SUPPORT_PASSWORD)
    server.start(log_path=tmp_path / "dovecot.log")
    server.append(SUPPORT, SUPPORT_PASSWORD, message(1))
    held = server.connect(SUPPORT, SUPPORT_PASSWORD)  # a client still connected at the end
    held.select_folder("INBOX")
    directory, port, pid = server.dir, server.port, server.pid

    started = time.monotonic()
    server.stop()

    assert time.monotonic() - started < 2
    assert not directory.exists()
    assert group_members(pid) == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert "starting up for imap" in (tmp_path / "dovecot.log").read_text()
    server.stop()  # twice is fine


def test_the_fixture_skips_with_the_reason_without_dovecot():
    with pytest.raises(pytest.skip.Exception, match="apt-get install dovecot-imapd"):
        require_dovecot("/nonexistent/sbin/dovecot")

