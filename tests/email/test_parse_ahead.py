"""A backlog is parsed in another process while earlier mails are stored; what it hands back
is what parsing here gives, and a parsing process that dies costs nothing but time."""
import os
import signal

from app.mail.parse import parse
from app.mail.parse_ahead import MIN_GROUP, ParseAhead
from tests.email.mailtools import build_mail


def _backlog(count: int) -> dict:
    return {uid: build_mail(f"Customer {uid} <c{uid}@example.org>", f"Question {uid}",
                            f"Where is order {uid}?", message_id=f"<ahead-{uid}@example.org>")
            for uid in range(1, count + 1)}


def test_a_backlog_parsed_ahead_reads_as_parsed_here():
    raws = _backlog(MIN_GROUP + 5)
    with ParseAhead() as ahead:
        ahead.start(raws)
        assert ahead.pool is not None, "a backlog this size is parsed in another process"
        results = {uid: ahead.result(uid, raw) for uid, raw in raws.items()}
    for uid, raw in raws.items():
        here = parse(raw, split_quotes=False)
        assert (results[uid].subject, results[uid].from_address, results[uid].text) == \
               (here.subject, here.from_address, here.text)


def test_a_killed_parsing_process_leaves_the_mail_to_be_parsed_here():
    raws = _backlog(MIN_GROUP)
    with ParseAhead() as ahead:
        ahead.start(raws)
        for pid in list(ahead.pool._processes):  # still starting: nothing is parsed there
            os.kill(pid, signal.SIGKILL)
        results = {uid: ahead.result(uid, raw) for uid, raw in raws.items()}
        assert ahead.pool is None, "the dead process is not used again"
    assert [mail.subject for mail in results.values()] == [f"Question {uid}" for uid in raws]


def test_a_few_mails_are_parsed_here_without_a_process():
    raws = _backlog(3)
    with ParseAhead() as ahead:
        ahead.start(raws)
        assert ahead.pool is None
        assert ahead.result(2, raws[2]).subject == "Question 2"
