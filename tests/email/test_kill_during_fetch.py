"""A fetch killed at any point loses nothing and stores nothing twice: `helpdesk mailbox fetch`
is SIGKILLed at random moments of its work, then a clean run finishes the job."""
import random
import re
import signal
import subprocess
import time
from collections import Counter

from app.models import Message, Ticket
from tests.email.conftest import SUPPORT, SUPPORT_PASSWORD
from tests.email.mailtools import (HELPDESK, acknowledgements, append, build_mail, helpdesk_env,
                                   incoming, run_helpdesk)
from tests.helpers import wait_until

pytest_plugins = ["tests.email.mailfixtures"]

MAILS = 150  # enough that a fetch is still busy when most kills land
ROUNDS = 6


def seen_message_ids(dovecot) -> dict:
    """Message-ID -> whether the mail is \\Seen on the server, over one IMAP connection."""
    with dovecot.connect(SUPPORT, SUPPORT_PASSWORD) as imap:
        imap.select_folder("INBOX", readonly=True)
        found = imap.fetch(imap.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    result = {}
    for data in found.values():
        header = next(v for k, v in data.items() if k.startswith(b"BODY[HEADER"))
        message_id = header.decode().split(":", 1)[1].strip()
        result[message_id] = b"\\Seen" in data[b"FLAGS"]
    return result


def stored_count() -> int:
    return Message.select().where(Message.direction == "incoming").count()


def test_fetch_killed_at_random_points_then_a_clean_run_loses_nothing_and_doubles_nothing(
        mailbox, dovecot, settings):
    for n in range(MAILS):
        append(dovecot, build_mail(f"Customer {n} <customer{n}@example.org>", f"Question {n}",
                                   f"Question number {n}.", message_id=f"<kill-{n}@example.org>"))
    env = helpdesk_env(settings.data_dir, settings.secret_key)
    chance = random.Random(20260302)
    killed = 0
    for _ in range(ROUNDS):
        before = stored_count()
        if before >= MAILS - 3:
            break  # a fast machine: keep some mail for the clean run
        process = subprocess.Popen([HELPDESK, "mailbox", "fetch", mailbox.name], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Once it is storing, let it run for a random moment: the kill then lands anywhere
            # in the work on one mail (downloading, storing, marking it seen, moving on).
            wait_until(lambda p=process, n=before: p.poll() is not None or stored_count() > n, 20,
                       interval=0.002, message="the fetch never started storing")
            time.sleep(chance.uniform(0, 0.15))
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait(10)
        # Seen on the server means stored here, whenever the kill came.
        stored = {m.message_id for m in incoming()}
        assert all(message_id in stored
                   for message_id, is_seen in seen_message_ids(dovecot).items() if is_seen)
    assert killed >= ROUNDS // 2, "the fetch finished before most kills: nothing was tested"
    missing = MAILS - stored_count()

    clean = run_helpdesk(env, "mailbox", "fetch", mailbox.name)

    assert clean.returncode == 0, clean.stderr
    assert f"Fetched {missing} new mails" in clean.stdout
    counts = Counter(m.message_id for m in incoming())
    assert counts == Counter({f"<kill-{n}@example.org>": 1 for n in range(MAILS)})
    assert Ticket.select().count() == MAILS
    assert sorted(a.ticket_id for a in acknowledgements()) == sorted(t.id for t in Ticket.select())
    assert all(seen_message_ids(dovecot).values())


def test_two_fetches_of_one_mailbox_at_once_store_each_mail_once(mailbox, dovecot, settings):
    for n in range(20):
        append(dovecot, build_mail(f"Customer {n} <customer{n}@example.org>", f"Question {n}",
                                   message_id=f"<twice-{n}@example.org>"))
    env = helpdesk_env(settings.data_dir, settings.secret_key)

    # Two workers (or a worker and an admin's "Check now") on the same mailbox.
    processes = [subprocess.Popen([HELPDESK, "mailbox", "fetch", mailbox.name], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in processes]

    assert [p.returncode for p in processes] == [0, 0], outputs
    fetched = [int(re.search(r"Fetched (\d+) new mails", out).group(1)) for out in outputs]
    assert sum(fetched) == 20, outputs
    counts = Counter(m.message_id for m in incoming())
    assert counts == Counter({f"<twice-{n}@example.org>": 1 for n in range(20)})
    assert len(acknowledgements()) == Ticket.select().count() == 20
    assert all(seen_message_ids(dovecot).values())
