"""IMAP IDLE watchers: one thread per mailbox waits for the server to announce new mail and
fetches it at once, so mail reaches the queue in seconds instead of at the next poll."""
import logging
import threading
import time

from app.mail import imap
from app.models import Mailbox
from app.services import mailboxes

log = logging.getLogger(__name__)
# IDLE is renewed, and the mailbox checked, this often. Short on purpose: a new-mail notice
# that comes in the same packet as the server's "+ idling" stays in imaplib's read buffer,
# where idle_check (which waits on the socket) does not see it until more data comes.
IDLE_SECONDS = 25
RETRY_SECONDS = (1, 2, 5, 10, 30, 60)


class MailboxWatcher(threading.Thread):
    def __init__(self, mailbox_id: int, settings, stop: threading.Event):
        super().__init__(name=f"idle-{mailbox_id}", daemon=True)
        self.mailbox_id, self.settings, self.stop_event = mailbox_id, settings, stop

    def run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            try:
                self.watch()
                failures = 0
            except Exception as exc:  # a dropped connection: wait a little and watch again
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.info("IDLE on mailbox %s stopped (%s); again in %ss", self.mailbox_id, exc, delay)
                self.stop_event.wait(delay)

    def watch(self) -> None:
        mailbox = Mailbox.get_by_id(self.mailbox_id)
        client = imap.connect(mailbox, self.settings.imap_timeout)
        try:
            if not client.has_capability("IDLE"):
                log.info("mailbox %s: the server has no IDLE; polling only", mailbox.name)
                self.stop_event.wait(3600)
                return
            mailboxes.fetch(self.mailbox_id, self.settings)  # what came while nobody watched
            while not self.stop_event.is_set():
                client.idle()
                started = time.monotonic()
                try:
                    while not self.stop_event.is_set() and time.monotonic() - started < IDLE_SECONDS:
                        asked = time.monotonic()
                        responses = client.idle_check(timeout=1)
                        if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                            break
                        if not responses and time.monotonic() - asked < 0.5:
                            # idle_check returns at once with nothing when the server has gone
                            # (it swallows the EOF): leave, and idle_done() raises to reconnect.
                            break
                finally:
                    client.idle_done()
                if not self.stop_event.is_set():
                    mailboxes.fetch(self.mailbox_id, self.settings)
        finally:
            imap.logout(client)


class Watchers:
    """Keeps one watcher running for each mailbox that is not paused."""

    def __init__(self, settings, check_seconds: float = 15):
        self.settings, self.check_seconds = settings, check_seconds
        self.running: dict = {}  # mailbox id -> (watcher, its stop event)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._supervise, name="idle-watchers", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        for _, stop in self.running.values():
            stop.set()

    def _supervise(self) -> None:
        while not self.stopped.is_set():
            try:
                wanted = set(mailboxes.due_mailboxes())
            except Exception:  # the database may be briefly unavailable; try again soon
                log.exception("cannot list mailboxes for IDLE watchers")
                wanted = set(self.running)
            for mailbox_id in set(self.running) - wanted:
                self.running.pop(mailbox_id)[1].set()
            for mailbox_id in wanted - set(self.running):
                stop = threading.Event()
                watcher = MailboxWatcher(mailbox_id, self.settings, stop)
                self.running[mailbox_id] = (watcher, stop)
                watcher.start()
            self.stopped.wait(self.check_seconds)
