"""The app stops when asked, even when mail work commits at that moment: an IMAP watcher or a
worker that has just stored or sent a mail wakes the live-update broadcaster (events.notify)
from its thread, and the app's shutdown must not then wait for it forever.

Found by the IDLE tests: about one run in ten, leaving the app right after the worker had sent an
acknowledgement hung its lifespan shutdown until pytest's timeout."""
import asyncio
import threading

import pytest

from app import events
from app.events import Broadcaster


async def stops_within(seconds: float, sleeps: int) -> bool:
    """Start a broadcaster as the app does, let a commit elsewhere wake it (then let the event
    loop turn `sleeps` times), and stop it as the app's shutdown does."""
    broadcaster = Broadcaster()
    await broadcaster.start()
    await asyncio.sleep(0)  # it waits for a wake-up now
    events.notify()  # what a worker thread does right after its commit
    for _ in range(sleeps):
        await asyncio.sleep(0)
    stopping = asyncio.create_task(broadcaster.stop())
    done, _ = await asyncio.wait({stopping}, timeout=seconds)
    return bool(done)


def in_own_loop(coroutine) -> bool:
    """Run it on a new event loop in a thread of its own, as the app's server runs (the test's
    thread may have a loop running already, e.g. the browser tests' Playwright)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = asyncio.run(coroutine)
        except Exception as exc:  # handed to the test's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "value" not in outcome:
        raise RuntimeError("the event loop did not finish") from outcome.get("error")
    return outcome["value"]


@pytest.mark.parametrize("sleeps", [0, 2], ids=["at once", "two turns later"])
def test_app_stops_though_a_commit_woke_the_broadcaster_just_before(app, sleeps):
    assert in_own_loop(stops_within(2, sleeps)), "the broadcaster never stopped"


def test_app_stops_when_nothing_happens_at_shutdown(app):
    assert in_own_loop(stops_within(2, sleeps=5))
