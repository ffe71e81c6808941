"""Parsing a backlog of mail in another process while the mails before it are stored. Parsing
is about half of the work on a mail; storing needs the database, which takes one writer at a
time. Mail that comes a few at a time (IDLE brings one) is parsed in the fetching thread:
starting a process costs more than it saves."""
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from app.mail.parse import ParsedMail, parse

log = logging.getLogger(__name__)
MIN_GROUP = 20  # mails downloaded together that make it worth starting the other process


def parse_for_intake(raw: bytes) -> ParsedMail:
    return parse(raw, split_quotes=False)  # the ticket page shows the quote folded


class ParseAhead:
    """parse_for_intake(raw) for each mail, started early for a backlog; used as a context."""

    def __init__(self):
        self.pool = None
        self.pending: dict = {}
        self.usable = (os.cpu_count() or 1) > 1

    def __enter__(self) -> "ParseAhead":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def start(self, raws: dict) -> None:
        """Begin parsing these mails (key -> raw bytes) in the other process."""
        if self.pool is None and self.usable and len(raws) >= MIN_GROUP:
            # spawn, not fork: the server process has threads, which fork does not copy.
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        if self.pool is None:
            return
        for key, raw in raws.items():
            self.pending[key] = self.pool.submit(parse_for_intake, raw)

    def result(self, key, raw: bytes) -> ParsedMail:
        future = self.pending.pop(key, None)
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool:
                # The other process died (killed, out of memory): parse here from now on.
                log.warning("the mail parsing process stopped; parsing in this one")
                self.pool, self.pending, self.usable = None, {}, False
        return parse_for_intake(raw)
